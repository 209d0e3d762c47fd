/**
 * A model named by its folder, as Hugging Face lays models out (and as Weightlens writes sharded and
 * compressed-tensors outputs): the file inside that the commands read.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';

/**
 * `userPath` itself when it is not a folder (a missing path is the reader's error to give); for a
 * folder, joined to `userPath` so messages keep the user's spelling: its *.safetensors.index.json,
 * else its model.safetensors, else its one .safetensors file, else (where `gguf`) its one .gguf.
 */
export async function resolveModelPath(userPath: string, opts: { gguf: boolean }): Promise<string> {
  const st = await fsp.stat(userPath).catch(() => undefined);
  if (!st?.isDirectory()) return userPath;
  const names = (await fsp.readdir(userPath)).sort();
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
  const files = names.filter((n) => n.endsWith('.safetensors'));
  const ggufs = opts.gguf ? names.filter((n) => n.endsWith('.gguf')) : [];
  let pick: string | undefined;
  if (indexes.length === 1) pick = indexes[0];
  else if (!indexes.length) {
    if (files.includes('model.safetensors')) pick = 'model.safetensors';
    else if (files.length === 1) pick = files[0];
    else if (!files.length && ggufs.length === 1) pick = ggufs[0];
  }
  if (pick) return path.join(userPath, pick);
  const kinds = opts.gguf ? 'a *.safetensors.index.json, a .safetensors or a .gguf' : 'a *.safetensors.index.json or a .safetensors';
  const found = [
    indexes.length > 1 ? `${indexes.length} index files` : '',
    files.length > 1 ? `${files.length} .safetensors files` : '',
    ggufs.length > 1 ? `${ggufs.length} .gguf files` : '',
  ].filter(Boolean);
  throw new WeightlensError(
    found.length ? `is a folder with ${found.join(' and ')}: name the one to read` : `is a folder without a model: expected ${kinds} in it`,
    userPath,
  );
}
