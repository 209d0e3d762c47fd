/**
 * Sharded checkpoints: `model.safetensors.index.json` maps every tensor name to the shard file
 * that holds it. Shard names come from an untrusted file, so they must stay inside the model's
 * folder: absolute paths, backslashes and `..` segments are refused.
 */
import { WeightlensError } from '../errors';

export interface ShardIndex {
  readonly metadata: Readonly<Record<string, unknown>>;
  /** tensor name -> shard file name (relative to the index's folder), in the index's order. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Distinct shard names, in order of first appearance. */
  readonly shards: readonly string[];
}

export function isSafeRelativeName(name: string): boolean {
  if (name.length === 0 || name.startsWith('/') || name.includes('\\') || /^[A-Za-z]:/.test(name)) return false;
  return name.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

export function parseShardIndex(file: string, text: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightlensError(`index is not valid JSON (${(e as Error).message})`, file);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new WeightlensError('index is not a JSON object', file);
  const { weight_map: map, metadata } = json as Record<string, unknown>;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new WeightlensError('index has no "weight_map" object', file);
  }
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw new WeightlensError('weight_map entry is not a file name', file, name);
    if (!isSafeRelativeName(shard)) {
      throw new WeightlensError(`shard name ${JSON.stringify(shard)} leaves the model's folder`, file, name);
    }
    weightMap.set(name, shard);
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (shards.length === 0) throw new WeightlensError('index names no tensors', file);
  const meta = metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata) ? (metadata as Record<string, unknown>) : {};
  return { metadata: meta, weightMap, shards };
}
