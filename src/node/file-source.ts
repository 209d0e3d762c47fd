/** ByteSource over a file handle: random-access reads, nothing loaded that was not asked for. */
import type { promises as fsp } from 'node:fs';
import type { ByteSource } from '../core/bytesource';
import { openRegularFile } from './input-file';

export class FileByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    private readonly bytes: number,
  ) {}

  static async open(path: string, name = path): Promise<FileByteSource> {
    const handle = await openRegularFile(path, name);
    try {
      const st = await handle.stat();
      return new FileByteSource(name, handle, st.size);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async size(): Promise<number> {
    return this.bytes;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into && into.byteLength >= length ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, offset + done);
      if (bytesRead === 0)
        throw new Error(
          `${this.name}: file ended at ${offset + done} while reading ${length} bytes at ${offset} (was it changed during the run?)`,
        );
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
