/**
 * Outputs are written under a temporary name beside their final place and renamed only when
 * complete, so a failed, cancelled or killed run never leaves a partial file under the final name.
 * Temporary paths are tracked so a SIGINT/SIGTERM handler can remove them before exiting, and
 * final paths being written are tracked so two runs in one process never write the same output.
 */
import { promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';

const liveTemps = new Set<string>();
const activeFinals = new Set<string>();

export function tempNameFor(finalPath: string): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.weightlens-tmp-${process.pid}-${rand}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A killed process (SIGKILL, power loss) cannot remove its temporary output; the next run for the
 * same output removes those whose process is gone. Never touches the final name.
 */
async function removeStaleTemps(finalPath: string): Promise<void> {
  const dir = path.dirname(finalPath);
  const prefix = `.${path.basename(finalPath)}.weightlens-tmp-`;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) {
      await fsp.rm(path.join(dir, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export class AtomicOutput {
  private done = false;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly isDir: boolean,
    private readonly force: boolean,
  ) {}

  /** Reserve `finalPath`; refuses an existing output unless `force`, and a path another run is writing. */
  static async create(finalPath: string, isDir: boolean, force = false): Promise<AtomicOutput> {
    const abs = path.resolve(finalPath);
    if (activeFinals.has(abs)) throw new WeightlensError('another quantization is already writing this output', finalPath);
    // Reserve before the first await, so two runs started together cannot both pass the checks.
    activeFinals.add(abs);
    try {
      if (!force && (await exists(abs))) throw new WeightlensError('output already exists (choose another --out, or --force to replace it)', finalPath);
      await fsp.mkdir(path.dirname(abs), { recursive: true });
      await removeStaleTemps(abs);
      const out = new AtomicOutput(abs, tempNameFor(abs), isDir, force);
      liveTemps.add(out.tempPath);
      if (isDir) await fsp.mkdir(out.tempPath);
      return out;
    } catch (e) {
      activeFinals.delete(abs);
      throw e;
    }
  }

  /** Where to write: the temporary file, or a file inside the temporary folder. */
  pathFor(relative?: string): string {
    if (!this.isDir) return this.tempPath;
    if (relative === undefined) return this.tempPath;
    const p = path.join(this.tempPath, relative);
    if (!p.startsWith(this.tempPath + path.sep)) throw new Error(`internal: ${relative} escapes the output folder`);
    return p;
  }

  async commit(): Promise<void> {
    if (this.done) return;
    if (this.force && (await exists(this.finalPath))) {
      const old = tempNameFor(this.finalPath);
      liveTemps.add(old);
      await fsp.rename(this.finalPath, old);
      await fsp.rename(this.tempPath, this.finalPath);
      await fsp.rm(old, { recursive: true, force: true });
      liveTemps.delete(old);
    } else {
      if (await exists(this.finalPath)) throw new WeightlensError('output appeared while the run was writing it; not replaced', this.finalPath);
      await fsp.rename(this.tempPath, this.finalPath);
    }
    this.finish();
  }

  async abort(): Promise<void> {
    if (this.done) return;
    await fsp.rm(this.tempPath, { recursive: true, force: true });
    this.finish();
  }

  private finish(): void {
    this.done = true;
    liveTemps.delete(this.tempPath);
    activeFinals.delete(this.finalPath);
  }
}

/** Synchronously remove every temporary output (for signal handlers, where nothing async runs). */
export function removeLiveTempsSync(): void {
  for (const t of liveTemps) {
    try {
      rmSync(t, { recursive: true, force: true });
    } catch {
      // best effort: the process is exiting
    }
  }
  liveTemps.clear();
}

/** Write a small file (report, config, index) atomically. */
export async function writeFileAtomic(finalPath: string, data: string | Uint8Array, force = false): Promise<void> {
  const out = await AtomicOutput.create(finalPath, false, force);
  try {
    await fsp.writeFile(out.tempPath, data);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
