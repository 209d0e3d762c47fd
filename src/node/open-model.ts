/**
 * Open what a user points at — a .safetensors file or a *.safetensors.index.json — as a Model,
 * reading headers only. Keeps the file handles open for the data reads that follow, and records
 * each file's size and mtime so a run can tell whether its input changed under it.
 */
import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';
import { isIndexPath, loadSharded, loadSingleFile, type Model } from '../core/model';
import { FileByteSource } from './file-source';
import { readTextFile, statRegularFile } from './input-file';

export interface OpenModel {
  readonly model: Model;
  /** The folder holding the model's files. */
  readonly dir: string;
  /** Absolute paths of every input file (index included). */
  readonly inputPaths: readonly string[];
  source(file: string): FileByteSource;
  /** Throws when an input file changed or vanished since it was opened. */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

function fingerprint(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ino}`;
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch {
    return undefined;
  }
}

export async function openModel(userPath: string): Promise<OpenModel> {
  const abs = path.resolve(userPath);
  const st = await statRegularFile(abs, userPath, 'give a .safetensors file or a model.safetensors.index.json');
  const dir = path.dirname(abs);
  const sources = new Map<string, FileByteSource>();
  const prints = new Map<string, string>([[abs, fingerprint(st)]]);
  const closeAll = async () => {
    await Promise.all([...sources.values()].map((s) => s.close().catch(() => undefined)));
  };
  try {
    let model: Model;
    if (isIndexPath(abs)) {
      const text = await readTextFile(abs, userPath);
      model = await loadSharded(userPath, text, async (shard) => {
        const p = path.join(dir, shard);
        const display = path.join(path.dirname(userPath), shard);
        // A missing shard is the index's error (loadSharded names it); anything else is the shard's.
        if (
          !(await fsp.lstat(p).then(
            () => true,
            () => false,
          ))
        )
          return undefined;
        const sst = await statRegularFile(p, display, 'a shard must be a .safetensors file');
        const src = await FileByteSource.open(p, display);
        sources.set(shard, src);
        prints.set(p, fingerprint(sst));
        return src;
      });
    } else {
      const src = await FileByteSource.open(abs, userPath);
      const name = path.basename(abs);
      sources.set(name, src);
      model = await loadSingleFile(userPath, name, src);
    }
    return {
      model,
      dir,
      inputPaths: [...prints.keys()],
      source(file) {
        const s = sources.get(file);
        if (!s) throw new Error(`internal: no open source for ${file}`);
        return s;
      },
      async checkUnchanged() {
        for (const [p, print] of prints) {
          const now = await statOrUndefined(p);
          if (!now) throw new WeightlensError('input file vanished during the run; no output was written', p);
          if (fingerprint(now) !== print) throw new WeightlensError('input file changed during the run; no output was written', p);
        }
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
