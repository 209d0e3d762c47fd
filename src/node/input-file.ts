/**
 * Inputs the user names (a model, a shard, a plan, a CSV) are checked before anything reads them:
 * a FIFO, a socket or a device would block open() or read() forever — and a process blocked in the
 * thread pool does not even answer Ctrl-C — so only regular files get opened, and every way a path
 * can fail gets its own one-line message.
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import { WeightlensError } from '../core/errors';
import { formatBytes } from '../shared/format';

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const STAT_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file (a part of the path is not a folder)',
  ELOOP: 'is a symbolic link loop',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENAMETOOLONG: 'the path is too long',
};

/**
 * The stat of a regular file at `p` (symlinks followed), or a one-line WeightlensError naming
 * `display`. A folder gets `folderHint` when given (what to pass instead).
 */
export async function statRegularFile(p: string, display: string, folderHint = 'give a file'): Promise<Stats> {
  let st: Stats;
  try {
    st = await fsp.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new WeightlensError(STAT_ERRORS[code] ?? `cannot be read (${code || (e as Error).message})`, display);
  }
  if (st.isDirectory()) throw new WeightlensError(`is a folder: ${folderHint}`, display);
  if (!st.isFile()) throw new WeightlensError(`is ${kindOf(st)}, not a regular file; refusing to read it`, display);
  return st;
}

/**
 * Open a regular file for reading without ever blocking: O_NONBLOCK makes open() return at once
 * even if the path was swapped for a FIFO after statRegularFile, and the handle's own stat is
 * checked again (no effect on regular files, whose reads never block on it).
 */
export async function openRegularFile(p: string, display: string): Promise<fsp.FileHandle> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(p, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new WeightlensError(STAT_ERRORS[code] ?? `cannot be opened (${code || (e as Error).message})`, display);
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw new WeightlensError(
      st.isDirectory() ? 'is a folder: give a file' : `is ${kindOf(st)}, not a regular file; refusing to read it`,
      display,
    );
  }
  return handle;
}

/**
 * The largest text input read whole. Real ones are far smaller (a sharded index or a tokenizer.json:
 * tens of MB at most); a checkpoint named by mistake (`--plan model.safetensors`, `--text` on a
 * weights file) would otherwise be read into memory up to V8's string limit (~512 MB) and fail
 * with an error that names nothing.
 */
export const MAX_TEXT_BYTES = 256e6;

/** A small text input (plan, CSV, classifier): checked, opened without blocking, read whole. */
export async function readTextFile(p: string, display = p): Promise<string> {
  const st = await statRegularFile(p, display);
  if (st.size > MAX_TEXT_BYTES)
    throw new WeightlensError(
      `is ${formatBytes(st.size)}, too large for a text input (at most ${formatBytes(MAX_TEXT_BYTES)}): is it the file you meant?`,
      display,
    );
  const handle = await openRegularFile(p, display);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
