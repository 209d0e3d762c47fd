/**
 * Outputs are written under a temporary name beside their final place and renamed only when
 * complete, so a failed, cancelled or killed run never leaves a partial file under the final name.
 *
 * - The files of one run (output and report) are committed together (`commitAll`): a previous
 *   output is moved aside, the new one renamed in; if any rename fails, everything is put back.
 * - Temporary paths are tracked so a SIGINT/SIGTERM handler can remove them before exiting; final
 *   paths being written are tracked so two runs in one process never write the same output.
 * - Folders created for the output are removed again when the run fails.
 * - Every run sweeps the output folder for what dead processes of this machine left: temporaries
 *   are removed, a previous output moved aside is put back if nothing replaced it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';

const liveTemps = new Set<string>();
const activeFinals = new Set<string>();

/**
 * Names carry the host (a short hash) and the pid, so a sweep only judges processes it can see:
 * on a folder shared over the network, another machine's live run is left alone.
 */
const HOST = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 6);
const NAME_RE = /^\.(.+)\.weightlens-(tmp|old)-(\d+)-(?:([0-9a-f]{6})-)?[0-9a-z]+$/;

function siblingName(finalPath: string, kind: 'tmp' | 'old'): string {
  const rand = Math.random().toString(36).slice(2, 8) || '0';
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.weightlens-${kind}-${process.pid}-${HOST}-${rand}`);
}

export function tempNameFor(finalPath: string): string {
  return siblingName(finalPath, 'tmp');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
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

/**
 * What killed runs (SIGKILL, power loss) left in `dir`: their temporaries are removed; a previous
 * output they had moved aside goes back under its name when that name is free, else it is removed
 * (the new output replaced it). Never touches a final name or a live process's files.
 */
export async function sweepDeadRuns(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = NAME_RE.exec(name);
    if (!m) continue;
    const [, finalName, kind, pidText, host] = m;
    const pid = Number(pidText);
    if ((host !== undefined && host !== HOST) || pid === process.pid || isAlive(pid)) continue;
    const p = path.join(dir, name);
    const finalPath = path.join(dir, finalName);
    if (kind === 'old' && !(await exists(finalPath))) await fsp.rename(p, finalPath).catch(() => undefined);
    else await fsp.rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

export interface AtomicOutputOptions {
  readonly isDir: boolean;
  /** Replace an existing output at commit time. */
  readonly force?: boolean;
  /** Asked again at commit before an existing path is replaced (it may have changed meanwhile). */
  readonly mayReplace?: (finalPath: string) => Promise<boolean>;
  /** Named in the "already exists" error and its flag: --out or --report. */
  readonly role?: 'output' | 'report';
}

export class AtomicOutput {
  private done = false;

  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly isDir: boolean,
    private readonly options: AtomicOutputOptions,
    /** The first folder this output created on the way to its parent, removed on abort. */
    private readonly createdDir: string | undefined,
  ) {}

  /** Reserve `finalPath`; refuses an existing output unless `force`, and a path another run is writing. */
  static async create(finalPath: string, options: AtomicOutputOptions): Promise<AtomicOutput> {
    const abs = path.resolve(finalPath);
    if (activeFinals.has(abs)) throw new WeightlensError('another quantization is already writing this output', finalPath);
    // Reserve before the first await, so two runs started together cannot both pass the checks.
    activeFinals.add(abs);
    let createdDir: string | undefined;
    try {
      const role = options.role ?? 'output';
      if (!options.force && (await exists(abs)))
        throw new WeightlensError(
          `${role} already exists (choose another --${role === 'output' ? 'out' : 'report'}, or --force to replace it)`,
          finalPath,
        );
      createdDir = await fsp.mkdir(path.dirname(abs), { recursive: true });
      await sweepDeadRuns(path.dirname(abs));
      const out = new AtomicOutput(abs, tempNameFor(abs), options.isDir, options, createdDir);
      liveTemps.add(out.tempPath);
      if (options.isDir) await fsp.mkdir(out.tempPath);
      return out;
    } catch (e) {
      activeFinals.delete(abs);
      if (createdDir) await removeCreatedDirs(path.dirname(abs), createdDir);
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
    await AtomicOutput.commitAll([this]);
  }

  /**
   * Rename every output into place, or none: on a failure the new files are removed and any
   * previous outputs moved back under their names. Temporaries are gone either way.
   */
  static async commitAll(outputs: readonly AtomicOutput[]): Promise<void> {
    const todo = outputs.filter((o) => !o.done);
    const asides: { final: string; aside: string }[] = [];
    const placed: AtomicOutput[] = [];
    try {
      for (const o of todo) {
        if (await exists(o.finalPath)) {
          if (!o.options.force) throw new WeightlensError('output appeared while the run was writing it; not replaced', o.finalPath);
          if (o.options.mayReplace && !(await o.options.mayReplace(o.finalPath))) {
            throw new WeightlensError('changed while the run was writing; not replaced', o.finalPath);
          }
          // Not a live temporary: a signal handler must never delete a user's previous output.
          const aside = siblingName(o.finalPath, 'old');
          await fsp.rename(o.finalPath, aside);
          asides.push({ final: o.finalPath, aside });
        }
        await fsp.rename(o.tempPath, o.finalPath);
        placed.push(o);
      }
    } catch (e) {
      for (const o of placed.reverse()) await fsp.rm(o.finalPath, { recursive: true, force: true }).catch(() => undefined);
      for (const a of asides.reverse()) await fsp.rename(a.aside, a.final).catch(() => undefined);
      for (const o of todo) await o.abort().catch(() => undefined);
      throw e;
    }
    for (const a of asides) await fsp.rm(a.aside, { recursive: true, force: true }).catch(() => undefined);
    for (const o of todo) o.finish();
  }

  async abort(): Promise<void> {
    if (this.done) return;
    await fsp.rm(this.tempPath, { recursive: true, force: true });
    if (this.createdDir) await removeCreatedDirs(path.dirname(this.finalPath), this.createdDir);
    this.finish();
  }

  private finish(): void {
    this.done = true;
    liveTemps.delete(this.tempPath);
    activeFinals.delete(this.finalPath);
  }
}

/** Remove the empty folders from `deepest` up to `first` (what one mkdir -p created). */
async function removeCreatedDirs(deepest: string, first: string): Promise<void> {
  for (let d = deepest; d.length >= first.length; d = path.dirname(d)) {
    try {
      await fsp.rmdir(d);
    } catch {
      return; // not empty (another output, another run): leave it and its parents
    }
    if (d === first) return;
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

/** Write a small file (a plan, a report on its own) atomically. */
export async function writeFileAtomic(finalPath: string, data: string | Uint8Array, force = false): Promise<void> {
  const out = await AtomicOutput.create(finalPath, { isDir: false, force });
  try {
    await fsp.writeFile(out.tempPath, data);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
