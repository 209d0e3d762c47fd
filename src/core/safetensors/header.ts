/**
 * Safetensors header parsing and validation.
 *
 * Layout: 8 bytes little-endian u64 N, N bytes of UTF-8 JSON, then the data section. The JSON maps
 * tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data
 * section) plus an optional "__metadata__" of string -> string. Every check here produces a
 * one-line WeightlensError naming the file and, where there is one, the tensor.
 */
import type { ByteSource } from '../bytesource';
import { byteLengthOf, dtypeBits, isDType, type DType } from '../dtypes';
import { WeightlensError } from '../errors';
import { topLevelKeys } from './json-keys';

/** Headers larger than this are refused before anything is allocated for them. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly numel: number;
  /** Offsets relative to the start of the data section. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Name used in messages (the path the caller gave). */
  readonly file: string;
  readonly fileSize: number;
  /** Absolute offset of the data section: 8 + header length. */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in data order (ascending offsets). */
  readonly tensors: readonly TensorInfo[];
}

export function tensorByteLength(t: TensorInfo): number {
  return t.end - t.begin;
}

export async function readHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  const fileSize = await src.size();
  if (fileSize < 8) throw new WeightlensError(`file is too small to be safetensors (${fileSize} bytes)`, file);
  const lenBytes = await src.read(0, 8);
  const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new WeightlensError(`header length ${n} exceeds the ${MAX_HEADER_BYTES / 1e6} MB limit`, file);
  }
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) {
    throw new WeightlensError(`header length ${headerLength} is beyond the end of the file (${fileSize} bytes)`, file);
  }
  const text = decodeUtf8(await src.read(8, headerLength), file);
  return parseHeaderJson(file, text, fileSize, 8 + headerLength);
}

function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new WeightlensError('header is not valid UTF-8', file);
  }
}

export function parseHeaderJson(file: string, text: string, fileSize: number, dataStart: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightlensError(`header is not valid JSON (${(e as Error).message})`, file);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new WeightlensError('header is not a JSON object', file);
  }
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) throw new WeightlensError('duplicate tensor name in header', file, key);
    seen.add(key);
  }

  const entries = json as Record<string, unknown>;
  const metadata = parseMetadata(file, entries.__metadata__);
  const dataLength = fileSize - dataStart;
  const tensors: TensorInfo[] = [];
  for (const name of Object.keys(entries)) {
    if (name === '__metadata__') continue;
    tensors.push(parseTensor(file, name, entries[name], dataLength));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkContiguous(file, tensors, dataLength);
  return { file, fileSize, dataStart, metadata, tensors };
}

function parseMetadata(file: string, raw: unknown): Record<string, string> {
  if (raw === undefined) return Object.create(null);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new WeightlensError('__metadata__ is not an object', file);
  }
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new WeightlensError(`__metadata__ value of "${k}" is not a string`, file);
    out[k] = v;
  }
  return out;
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseTensor(file: string, name: string, raw: unknown, dataLength: number): TensorInfo {
  const fail = (msg: string): never => {
    throw new WeightlensError(msg, file, name);
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('entry is not an object');
  const entry = raw as Record<string, unknown>;
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDType(dtype)) fail(`unknown dtype ${JSON.stringify(dtype)}`);
  const dt = dtype as DType;
  if (!Array.isArray(shape)) fail('shape is not an array');
  const dims = shape as unknown[];
  let numel = 1;
  for (const d of dims) {
    if (!isIndex(d)) fail(`shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
    numel *= d as number;
  }
  if (!Number.isSafeInteger(numel)) fail(`shape ${JSON.stringify(shape)} has too many elements`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    fail('data_offsets is not a pair of non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) fail(`data_offsets [${begin}, ${end}] are out of bounds (data section is ${dataLength} bytes)`);
  const expected = byteLengthOf(dt, numel);
  if (expected !== end - begin) {
    fail(
      `byte length ${end - begin} does not equal shape ${JSON.stringify(shape)} x ${dtypeBits(dt) / 8} bytes (${Number.isNaN(expected) ? 'not a whole number of bytes' : expected})`,
    );
  }
  return { name, dtype: dt, shape: dims as number[], numel, begin, end };
}

function checkContiguous(file: string, tensors: readonly TensorInfo[], dataLength: number): void {
  let expected = 0;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin < expected) {
      throw new WeightlensError(`data_offsets [${t.begin}, ${t.end}] overlap tensor "${prev!.name}"`, file, t.name);
    }
    if (t.begin > expected) {
      throw new WeightlensError(`data_offsets [${t.begin}, ${t.end}] leave a hole of ${t.begin - expected} bytes before it`, file, t.name);
    }
    expected = t.end;
    prev = t;
  }
  if (expected !== dataLength) {
    throw new WeightlensError(`data section has ${dataLength - expected} bytes after the last tensor that no tensor covers`, file);
  }
}
