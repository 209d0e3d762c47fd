/**
 * The core never touches the file system: it reads through this interface. Node implements it on
 * a file handle (src/node/file-source.ts), the webview on transferred ArrayBuffers, tests on memory.
 */
export interface ByteSource {
  /** A name for error messages (usually the file's path). */
  readonly name: string;
  /** Total size in bytes. */
  size(): Promise<number>;
  /**
   * Exactly `length` bytes from `offset`; rejects when the source is shorter. With `into` (at least
   * `length` bytes) a source may read into it and return a view of it: a pass over a large tensor
   * then reuses one buffer instead of allocating one per block.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
}

export class MemoryByteSource implements ByteSource {
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {}

  async size(): Promise<number> {
    return this.bytes.byteLength;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.bytes.byteLength) {
      throw new RangeError(`${this.name}: read of ${length} bytes at ${offset} is past the end (${this.bytes.byteLength})`);
    }
    return this.bytes.subarray(offset, offset + length);
  }
}
