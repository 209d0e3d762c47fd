/**
 * GGUF, llama.cpp's file format (version 3, little-endian): a header of typed key/value metadata and
 * tensor infos, then the tensor data, each tensor at an offset aligned to `general.alignment`
 * (default 32). Written here from the spec in llama.cpp's `gguf-py/gguf/constants.py` and
 * `ggml/include/gguf.h`; block layouts from `ggml/src/ggml-quants.c` (`quantize_row_q4_0_ref`,
 * `quantize_row_q8_0_ref`, `dequantize_row_*`) and `ggml/src/ggml-common.h` (`block_q4_0`, ...).
 *
 * Dimensions are ggml's `ne`: the innermost (contiguous) first, i.e. a safetensors shape reversed.
 */
import { WeightlensError } from '../errors';
import { f32ToF16Bits } from '../dtypes';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the type tag of a metadata value. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml_type: the tensor data types this tool writes or reads (values from ggml.h). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

/** Weights per block and bytes per block of each type (ggml's type traits). */
export const GGML_BLOCK: Partial<Record<GgmlType, { weights: number; bytes: number }>> = {
  [GgmlType.F32]: { weights: 1, bytes: 4 },
  [GgmlType.F16]: { weights: 1, bytes: 2 },
  [GgmlType.BF16]: { weights: 1, bytes: 2 },
  [GgmlType.F64]: { weights: 1, bytes: 8 },
  [GgmlType.I8]: { weights: 1, bytes: 1 },
  [GgmlType.I16]: { weights: 1, bytes: 2 },
  [GgmlType.I32]: { weights: 1, bytes: 4 },
  [GgmlType.I64]: { weights: 1, bytes: 8 },
  [GgmlType.Q4_0]: { weights: 32, bytes: 18 },
  [GgmlType.Q4_1]: { weights: 32, bytes: 20 },
  [GgmlType.Q5_0]: { weights: 32, bytes: 22 },
  [GgmlType.Q5_1]: { weights: 32, bytes: 24 },
  [GgmlType.Q8_0]: { weights: 32, bytes: 34 },
  [GgmlType.Q8_1]: { weights: 32, bytes: 36 },
  [GgmlType.Q2_K]: { weights: 256, bytes: 84 },
  [GgmlType.Q3_K]: { weights: 256, bytes: 110 },
  [GgmlType.Q4_K]: { weights: 256, bytes: 144 },
  [GgmlType.Q5_K]: { weights: 256, bytes: 176 },
  [GgmlType.Q6_K]: { weights: 256, bytes: 210 },
  [GgmlType.Q8_K]: { weights: 256, bytes: 292 },
  [GgmlType.IQ4_NL]: { weights: 32, bytes: 18 },
  [GgmlType.IQ4_XS]: { weights: 256, bytes: 136 },
  [GgmlType.TQ1_0]: { weights: 256, bytes: 54 },
  [GgmlType.TQ2_0]: { weights: 256, bytes: 66 },
  [GgmlType.MXFP4]: { weights: 32, bytes: 17 },
};

export function ggmlTypeName(t: number): string {
  return GgmlType[t] ?? `type ${t}`;
}

/** Bytes of a tensor of `type` with dims `ne` (innermost first); rows must hold whole blocks. */
export function ggmlTensorBytes(type: GgmlType, ne: readonly number[]): number {
  const b = GGML_BLOCK[type];
  if (!b) throw new Error(`internal: no block size for ${ggmlTypeName(type)}`);
  if (ne[0] % b.weights !== 0) throw new Error(`internal: rows of ${ne[0]} are not whole ${ggmlTypeName(type)} blocks`);
  return (ne.reduce((a, x) => a * x, 1) / b.weights) * b.bytes;
}

/** llama_ftype (general.file_type): what most tensors are. */
export enum LlamaFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q4_0 = 2,
  MOSTLY_Q4_1 = 3,
  MOSTLY_Q8_0 = 7,
  MOSTLY_Q4_K_S = 14,
  MOSTLY_Q4_K_M = 15,
  MOSTLY_BF16 = 32,
}

/** tokenizer.ggml.token_type values (llama_token_type; the same numbers as SentencePiece's). */
export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export type GgufValue =
  | { type: GgufValueType.STRING; value: string }
  | {
      type:
        | GgufValueType.UINT32
        | GgufValueType.INT32
        | GgufValueType.FLOAT32
        | GgufValueType.UINT8
        | GgufValueType.INT8
        | GgufValueType.UINT16
        | GgufValueType.INT16
        | GgufValueType.FLOAT64;
      value: number;
    }
  | { type: GgufValueType.UINT64 | GgufValueType.INT64; value: bigint | number }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType; value: readonly (string | number | boolean | bigint)[] };

export const gv = {
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  strs: (value: readonly string[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value }),
  f32s: (value: readonly number[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value }),
  i32s: (value: readonly number[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value }),
};

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml ne: innermost first. */
  readonly ne: readonly number[];
  readonly type: GgmlType;
}

/** Growable little-endian byte writer for the header. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.room(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.room(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.room(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.room(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint): void {
    this.room(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint): void {
    this.room(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeScalar(b: Bytes, type: GgufValueType, v: string | number | boolean | bigint): void {
  switch (type) {
    case GgufValueType.UINT8:
      return b.u8(Number(v));
    case GgufValueType.INT8:
      return b.i8(Number(v));
    case GgufValueType.UINT16:
      return b.u16(Number(v));
    case GgufValueType.INT16:
      return b.i16(Number(v));
    case GgufValueType.UINT32:
      return b.u32(Number(v));
    case GgufValueType.INT32:
      return b.i32(Number(v));
    case GgufValueType.FLOAT32:
      return b.f32(Number(v));
    case GgufValueType.FLOAT64:
      return b.f64(Number(v));
    case GgufValueType.BOOL:
      return b.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      return b.str(String(v));
    case GgufValueType.UINT64:
      return b.u64(typeof v === 'bigint' ? v : Number(v));
    case GgufValueType.INT64:
      return b.i64(typeof v === 'bigint' ? v : Number(v));
    default:
      throw new Error(`internal: GGUF scalar of type ${type}`);
  }
}

export interface GgufLayout {
  /** Header, metadata, tensor infos and the padding up to the data section. */
  readonly header: Uint8Array;
  /** Offset of each tensor in the data section, and its byte length (padding not counted). */
  readonly offsets: readonly number[];
  readonly byteLengths: readonly number[];
  /** Header plus data section (tensors and the padding between them). */
  readonly totalBytes: number;
  readonly alignment: number;
}

/** The bytes before the data section, and where each tensor's data goes. */
export function layoutGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorInfo[]): GgufLayout {
  const alignEntry = metadata.get('general.alignment');
  const alignment = alignEntry && alignEntry.type === GgufValueType.UINT32 ? alignEntry.value : GGUF_DEFAULT_ALIGNMENT;
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(GGUF_VERSION);
  b.u64(tensors.length);
  b.u64(metadata.size);
  for (const [key, v] of metadata) {
    b.str(key);
    b.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      b.u32(v.itemType);
      b.u64(v.value.length);
      for (const item of v.value) writeScalar(b, v.itemType, item);
    } else writeScalar(b, v.type, v.value);
  }
  const offsets: number[] = [];
  const byteLengths: number[] = [];
  let off = 0;
  for (const t of tensors) {
    const bytes = ggmlTensorBytes(t.type, t.ne);
    b.str(t.name);
    b.u32(t.ne.length);
    for (const d of t.ne) b.u64(d);
    b.u32(t.type);
    b.u64(off);
    offsets.push(off);
    byteLengths.push(bytes);
    off += bytes;
    off += (alignment - (off % alignment)) % alignment;
  }
  b.pad(alignment);
  const header = b.bytes();
  return { header, offsets, byteLengths, totalBytes: header.length + off, alignment };
}

const f16Bytes = (d: number, out: DataView, at: number) => out.setUint16(at, f32ToF16Bits(d), true);

/**
 * Q8_0 blocks of rows of codes: per 32 weights an f16 scale d and 32 int8 codes; value = d * q.
 * `scales` are per group of 32, already rounded to f16 (the quantizer stores them so).
 */
export function packQ8_0(codes: Int8Array, scales: ArrayLike<number>, rows: number, cols: number): Uint8Array {
  if (cols % 32 !== 0) throw new Error(`internal: Q8_0 rows of ${cols}`);
  const blocks = (rows * cols) / 32;
  const out = new Uint8Array(blocks * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    f16Bytes(scales[b], dv, b * 34);
    for (let j = 0; j < 32; j++) dv.setInt8(b * 34 + 2 + j, codes[b * 32 + j]);
  }
  return out;
}

/**
 * Q4_0 blocks: per 32 weights an f16 scale d and 16 bytes, weight j in the low nibble of byte j and
 * weight j+16 in the high nibble, each stored as q + 8 in 0..15; value = d * (nibble - 8). Codes
 * come in as q in [-8, 7].
 */
export function packQ4_0(codes: Int8Array, scales: ArrayLike<number>, rows: number, cols: number): Uint8Array {
  if (cols % 32 !== 0) throw new Error(`internal: Q4_0 rows of ${cols}`);
  const blocks = (rows * cols) / 32;
  const out = new Uint8Array(blocks * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    f16Bytes(scales[b], dv, b * 18);
    packNibbles(codes, b * 32, out, b * 18 + 2);
  }
  return out;
}

/** A block's 32 codes (q in [-8, 7]) as 16 bytes: weight j in the low nibble of byte j, j + 16 in the high one, each q + 8. */
function packNibbles(codes: Int8Array, c: number, out: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) out[at + j] = ((codes[c + j] + 8) & 0x0f) | (((codes[c + j + 16] + 8) & 0x0f) << 4);
}

/**
 * Q4_1 blocks (`block_q4_1`: f16 d, f16 m, then the nibbles as in Q4_0): value = d * nibble + m.
 * Codes come in as q in [-8, 7] (nibble q + 8), `mins` are the offsets m (value of nibble 0), both
 * scales and mins already rounded to f16.
 */
export function packQ4_1(codes: Int8Array, scales: ArrayLike<number>, mins: ArrayLike<number>, rows: number, cols: number): Uint8Array {
  if (cols % 32 !== 0) throw new Error(`internal: Q4_1 rows of ${cols}`);
  const blocks = (rows * cols) / 32;
  const out = new Uint8Array(blocks * 20);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    f16Bytes(scales[b], dv, b * 20);
    f16Bytes(mins[b], dv, b * 20 + 2);
    packNibbles(codes, b * 32, out, b * 20 + 4);
  }
  return out;
}

/** A header parsing error, one line naming the file. */
export function ggufError(file: string, msg: string): WeightlensError {
  return new WeightlensError(`GGUF: ${msg}`, file);
}
