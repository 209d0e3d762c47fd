/**
 * A model is one safetensors file or a set of shards tied by an index JSON. This module reads
 * their headers (never their data) through ByteSources the caller opens, and cross-checks the
 * index against the shards.
 */
import type { ByteSource } from './bytesource';
import { WeightlensError } from './errors';
import { readHeader, type SafetensorsHeader, type TensorInfo } from './safetensors/header';
import { parseShardIndex, type ShardIndex } from './safetensors/index-json';

export interface ModelTensor extends TensorInfo {
  /** The file holding it, relative to the model's folder. */
  readonly file: string;
  /** Absolute byte offset of its data in that file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface ModelFile {
  readonly name: string;
  readonly header: SafetensorsHeader;
}

export interface Model {
  /** What the user gave: a .safetensors file or an index JSON. */
  readonly path: string;
  readonly files: readonly ModelFile[];
  /** All tensors, file by file in data order. */
  readonly tensors: readonly ModelTensor[];
  /** `__metadata__` of the first file. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly index?: ShardIndex;
}

export function isIndexPath(path: string): boolean {
  return path.endsWith('.index.json');
}

function tensorsOf(file: ModelFile): ModelTensor[] {
  return file.header.tensors.map((t) => ({
    ...t,
    file: file.name,
    offset: file.header.dataStart + t.begin,
    byteLength: t.end - t.begin,
  }));
}

export async function loadSingleFile(path: string, name: string, src: ByteSource): Promise<Model> {
  const header = await readHeader(src);
  const file = { name, header };
  return { path, files: [file], tensors: tensorsOf(file), metadata: header.metadata };
}

/**
 * @param open opens a shard by its relative name, or returns undefined when it does not exist.
 */
export async function loadSharded(
  path: string,
  indexText: string,
  open: (shard: string) => Promise<ByteSource | undefined>,
): Promise<Model> {
  const index = parseShardIndex(path, indexText);
  const files: ModelFile[] = [];
  for (const shard of index.shards) {
    const src = await open(shard);
    if (!src) throw new WeightlensError(`index names shard "${shard}", which does not exist`, path);
    files.push({ name: shard, header: await readHeader(src) });
  }
  const tensors: ModelTensor[] = [];
  const where = new Map<string, string>();
  for (const f of files) {
    for (const t of tensorsOf(f)) {
      const other = where.get(t.name);
      if (other !== undefined) throw new WeightlensError(`tensor is in both "${other}" and "${f.name}"`, path, t.name);
      where.set(t.name, f.name);
      tensors.push(t);
    }
  }
  for (const [name, shard] of index.weightMap) {
    const actual = where.get(name);
    if (actual === undefined) throw new WeightlensError(`index names tensor in shard "${shard}", which does not hold it`, path, name);
    if (actual !== shard) throw new WeightlensError(`index puts tensor in "${shard}" but it is in "${actual}"`, path, name);
  }
  return { path, files, tensors, metadata: files[0].header.metadata, index };
}

/** Bytes of one tensor, by random access. */
export function readTensor(src: ByteSource, t: ModelTensor): Promise<Uint8Array> {
  return src.read(t.offset, t.byteLength);
}

/**
 * Bytes of rows [start, start + count) of a tensor (rows = its first axis), by random access: how
 * large tensors are streamed without ever being read whole.
 */
export function readRows(src: ByteSource, t: ModelTensor, start: number, count: number, into?: Uint8Array): Promise<Uint8Array> {
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= rows)) {
    throw new RangeError(`rows [${start}, ${start + count}) are outside tensor ${t.name} with ${rows} rows`);
  }
  const rowBytes = rows === 0 ? 0 : t.byteLength / rows;
  return src.read(t.offset + start * rowBytes, count * rowBytes, into);
}
