/** Builds safetensors bytes in memory for tests, including deliberately broken ones. */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeFloats, int64Bytes, type DType, type QuantizableFloat } from '../../src/core/dtypes';
import { layoutFile } from '../../src/core/safetensors/layout';
import { fillNormals, mulberry32 } from '../../src/core/random';

export interface TestTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** Float values (encoded to dtype) or raw bytes. */
  values?: ArrayLike<number>;
  raw?: Uint8Array;
}

export function tensorBytes(t: TestTensor): Uint8Array {
  if (t.raw) return t.raw;
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const vals = t.values ?? new Float64Array(numel);
  if (['F64', 'F32', 'F16', 'BF16'].includes(t.dtype)) return encodeFloats(t.dtype as QuantizableFloat, vals);
  if (t.dtype === 'I64') return int64Bytes(Array.from(vals));
  if (t.dtype === 'I32') return new Uint8Array(Int32Array.from(vals).buffer);
  if (t.dtype === 'I8' || t.dtype === 'U8' || t.dtype === 'BOOL') return Uint8Array.from(vals);
  throw new Error(`test helper: no encoder for ${t.dtype}`);
}

export function buildSafetensors(tensors: TestTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const layout = layoutFile(tensors, metadata);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.headerBytes, 0);
  let pos = layout.headerBytes.length;
  for (const t of tensors) {
    const b = tensorBytes(t);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** A file with a hand-written header (for validation tests): 8-byte length + text + data. */
export function rawSafetensors(headerText: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

export async function tempDir(prefix = 'wl-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Deterministic pseudo-random normals. */
export function normals(n: number, seed = 1, std = 0.02): Float64Array {
  const out = new Float64Array(n);
  fillNormals(out, mulberry32(seed), std);
  return out;
}

/** Values as the given float dtype holds them (what a reader of the file sees). */
export function asStored(dtype: 'F32' | 'F16' | 'BF16', values: ArrayLike<number>): Float32Array {
  const bytes = encodeFloats(dtype, values);
  const out = new Float32Array(values.length);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'F32') out[i] = dv.getFloat32(i * 4, true);
    else if (dtype === 'BF16') out[i] = new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
    else out[i] = halfToFloat(dv.getUint16(i * 2, true));
  }
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
