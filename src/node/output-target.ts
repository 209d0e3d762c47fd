/**
 * Where a run may write. Paths are compared by what they are, not how they are spelled: a symlink,
 * a `..`, a hard link or a bind mount can make two different strings name the input. Every path a
 * run writes (the output file or folder, the report) goes through `resolveTarget`, which
 *   - refuses a target that is an input, or a folder that holds one (real paths, and device/inode
 *     where the target exists);
 *   - writes inside an existing folder that is not a Weightlens output, as `cp` does, so that no
 *     `--force` ever replaces a folder of other files;
 *   - refuses FIFOs, sockets and devices.
 */
import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';
import { loadSingleFile } from '../core/model';
import { FileByteSource } from './file-source';
import { SIDECAR_RE } from './output-paths';

export interface InputIdentity {
  readonly real: string;
  readonly dev: number;
  readonly ino: number;
}

async function statOrUndefined(p: string, follow = true): Promise<Stats | undefined> {
  try {
    return follow ? await fsp.stat(p) : await fsp.lstat(p);
  } catch {
    return undefined;
  }
}

export async function inputIdentities(paths: readonly string[]): Promise<InputIdentity[]> {
  return Promise.all(
    paths.map(async (p) => {
      const st = await fsp.stat(p);
      return { real: await fsp.realpath(p), dev: st.dev, ino: st.ino };
    }),
  );
}

/**
 * The real path `p` has once written: the real path of its deepest existing ancestor, then the
 * rest as spelled (the folders a run creates cannot be links). A final symlink is not followed:
 * a rename replaces the link itself, not what it points to.
 */
export async function landingPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  const parent = path.dirname(abs);
  if (parent === abs) return abs;
  try {
    return path.join(await fsp.realpath(parent), path.basename(abs));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    return path.join(await landingPath(parent), path.basename(abs));
  }
}

const isInside = (child: string, folder: string) =>
  child === folder || child.startsWith(folder.endsWith(path.sep) ? folder : folder + path.sep);

/**
 * A folder a Weightlens run wrote (a compressed-tensors or sharded output), which `--force` may
 * replace: only files, each a safetensors shard, an index or a model sidecar, and at least one
 * safetensors file whose header metadata names Weightlens. Anything else is someone's folder.
 */
export async function isWeightlensOutputFolder(dir: string): Promise<boolean> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  let ours = false;
  for (const e of entries) {
    if (!e.isFile()) return false;
    const weights = e.name.endsWith('.safetensors');
    if (!weights && !e.name.endsWith('.safetensors.index.json') && !SIDECAR_RE.test(e.name)) return false;
    if (weights && !ours) ours = await writtenByWeightlens(path.join(dir, e.name));
  }
  return ours;
}

async function writtenByWeightlens(file: string): Promise<boolean> {
  let src: FileByteSource | undefined;
  try {
    src = await FileByteSource.open(file);
    const model = await loadSingleFile(file, path.basename(file), src);
    return model.files[0].header.metadata['weightlens.version'] !== undefined;
  } catch {
    return false;
  } finally {
    await src?.close().catch(() => undefined);
  }
}

export interface TargetOptions {
  /** 'output' or 'report': named in errors. */
  readonly role: 'output' | 'report';
  /** The name to write under when the path is an existing folder to write inside. */
  readonly defaultName: string;
  readonly inputs: readonly InputIdentity[];
  /** Paths this run writes already (the output, when checking the report): never the same or nested. */
  readonly taken?: readonly string[];
}

/** A checked target: where to write, and where that lands once every link is resolved. */
export interface Target {
  readonly path: string;
  readonly landing: string;
}

/**
 * Check a path the run will write and say where the file goes (see the module comment). Throws a
 * one-line WeightlensError naming the path.
 */
export async function resolveTarget(userPath: string, o: TargetOptions): Promise<Target> {
  let target = path.resolve(userPath);
  const st = await statOrUndefined(target);
  if (st?.isDirectory() && !(o.role === 'output' && (await isWeightlensOutputFolder(target)))) {
    target = path.join(target, o.defaultName);
    const inner = await statOrUndefined(target);
    if (inner?.isDirectory() && !(o.role === 'output' && (await isWeightlensOutputFolder(target)))) {
      throw new WeightlensError(
        `is a folder that is not a Weightlens output; refusing to replace it (choose another --${o.role === 'output' ? 'out' : 'report'})`,
        target,
      );
    }
  }
  const lst = await statOrUndefined(target, false);
  const here = await statOrUndefined(target);
  if (lst && here && !here.isFile() && !here.isDirectory()) {
    throw new WeightlensError(`is not a regular file or folder; refusing to write the ${o.role} there`, target);
  }
  const landing = await landingPath(target);
  // Where a final symlink points counts too: the user means that file or folder.
  const names = here ? [landing, await fsp.realpath(target)] : [landing];
  for (const input of o.inputs) {
    const sameFile = names.includes(input.real) || (here !== undefined && here.dev === input.dev && here.ino === input.ino);
    if (sameFile)
      throw new WeightlensError(
        `${o.role} would overwrite the input ${input.real}; choose another --${o.role === 'output' ? 'out' : 'report'}`,
        userPath,
      );
    if (names.some((n) => isInside(input.real, n)))
      throw new WeightlensError(
        `${o.role} would replace the folder holding the input ${input.real}; choose another --${o.role === 'output' ? 'out' : 'report'}`,
        userPath,
      );
  }
  for (const other of o.taken ?? []) {
    if (isInside(landing, other) || isInside(other, landing))
      throw new WeightlensError(`${o.role} would overwrite the run's own output ${other}; choose another --report`, userPath);
  }
  return { path: target, landing };
}
