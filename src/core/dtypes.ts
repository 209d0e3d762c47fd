/**
 * Safetensors dtypes: sizes, and exact conversions between the float formats and float32.
 *
 * Decoding is exact for every float format (each value of F16, BF16, F8_E4M3 and F8_E5M2 is a
 * float32 value; F64 decodes to float64 so nothing is lost). Encoding float32 to F16 and BF16
 * rounds to nearest, ties to even, as PyTorch does.
 */

export type DType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'U16'
  | 'I16'
  | 'U32'
  | 'I32'
  | 'U64'
  | 'I64'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'F8_E8M0'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2'
  | 'F16'
  | 'BF16'
  | 'F32'
  | 'F64'
  | 'C64';

/** Bits per element of every dtype the safetensors format defines. */
const BITS: Record<DType, number> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  U16: 16,
  I16: 16,
  U32: 32,
  I32: 32,
  U64: 64,
  I64: 64,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  F16: 16,
  BF16: 16,
  F32: 32,
  F64: 64,
  C64: 64,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(BITS, s);
}

export function dtypeBits(d: DType): number {
  return BITS[d];
}

/** Floats this tool can decode (to run statistics on them). */
export type DecodableFloat = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2';
const DECODABLE = new Set<DType>(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);
export function isDecodableFloat(d: DType): d is DecodableFloat {
  return DECODABLE.has(d);
}

/** Floats that can be quantized and written back in the same dtype (fake-quant output). */
export type QuantizableFloat = 'F64' | 'F32' | 'F16' | 'BF16';
const QUANTIZABLE = new Set<DType>(['F64', 'F32', 'F16', 'BF16']);
export function isQuantizableFloat(d: DType): d is QuantizableFloat {
  return QUANTIZABLE.has(d);
}

/** Bytes of `numel` elements, or NaN when sub-byte elements do not fill whole bytes. */
export function byteLengthOf(d: DType, numel: number): number {
  const bits = numel * BITS[d];
  return bits % 8 === 0 ? bits / 8 : NaN;
}

// ---------------------------------------------------------------------------------------------
// Lookup tables, built once: every F16 and FP8 bit pattern's float32 value.

/** Every F16 bit pattern's value (exact in float32). */
export const f16Table: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    let v: number;
    if (exp === 0) v = man * 2 ** -24;
    else if (exp === 31) v = man === 0 ? Infinity : NaN;
    else v = (1 + man / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  return t;
})();

/** F8_E4M3 is the "FN" variant (as in PyTorch's float8_e4m3fn): no infinities, S.1111.111 is NaN. */
const e4m3Table: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >> 3) & 0xf;
    const man = b & 0x7;
    let v: number;
    if (exp === 15 && man === 7) v = NaN;
    else if (exp === 0) v = (man / 8) * 2 ** -6;
    else v = (1 + man / 8) * 2 ** (exp - 7);
    t[b] = sign * v;
  }
  return t;
})();

/** F8_E5M2 follows IEEE 754 (infinities and NaNs), as PyTorch's float8_e5m2. */
const e5m2Table: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = f16Table[b << 8];
  return t;
})();

// ---------------------------------------------------------------------------------------------
// Decoding. Safetensors data is little-endian; these read byte by byte where the platform could
// be big-endian or the buffer unaligned, and use typed-array views on the fast, aligned path.

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function aligned(bytes: Uint8Array, size: number): boolean {
  return LITTLE_ENDIAN && bytes.byteOffset % size === 0;
}

/**
 * Decode a float tensor's bytes to float32 (float64 for F64). `into`, where given and long enough,
 * receives the float32 values (a prefix view of it is returned): a worker decodes every chunk into
 * one buffer instead of touching fresh pages for each (on the 2-core VM those page faults cost
 * more than the decoding itself).
 */
export function decodeFloats(d: DecodableFloat, bytes: Uint8Array, into?: Float32Array): Float32Array | Float64Array {
  const width = d === 'F64' ? 8 : d === 'F32' ? 4 : d === 'F16' || d === 'BF16' ? 2 : 1;
  const n = bytes.byteLength / width;
  const out32 = (): Float32Array => (into && into.length >= n ? into.subarray(0, n) : new Float32Array(n));
  switch (d) {
    case 'F64': {
      if (aligned(bytes, 8)) return new Float64Array(bytes.buffer, bytes.byteOffset, n).slice();
      const out = new Float64Array(n);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'F32': {
      const out = out32();
      if (aligned(bytes, 4)) {
        out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
        return out;
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    case 'F16': {
      const out = out32();
      for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = f16Table[bytes[j] | (bytes[j + 1] << 8)];
      return out;
    }
    case 'BF16': {
      const out = out32();
      const bits = new Uint32Array(out.buffer, out.byteOffset, n);
      if (aligned(bytes, 2)) {
        // bf16 is the top half of a float32: one shift per value.
        const half = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) bits[i] = half[i] << 16;
        return out;
      }
      for (let i = 0, j = 0; i < n; i++, j += 2) bits[i] = ((bytes[j] | (bytes[j + 1] << 8)) << 16) >>> 0;
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const table = d === 'F8_E4M3' ? e4m3Table : e5m2Table;
      const out = out32();
      for (let i = 0; i < bytes.byteLength; i++) out[i] = table[bytes[i]];
      return out;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding float32 -> F16 / BF16, round to nearest even, on the float32 bit pattern.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits -> bfloat16 bits, RNE; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 bits -> IEEE half bits, RNE, overflow to infinity, subnormals kept. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const absU = u & 0x7fffffff;
  if (absU >= 0x7f800000) return sign | (absU > 0x7f800000 ? 0x7e00 : 0x7c00);
  const exp = (absU >>> 23) - 127;
  if (exp > 15) return sign | 0x7c00;
  if (exp >= -14) {
    // Normal half: keep 10 of 23 mantissa bits, RNE on the 13 dropped.
    const man = absU & 0x7fffff;
    let h = ((exp + 15) << 10) | (man >>> 13);
    const rest = man & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h += 1; // may carry into the exponent: correct
    return sign | h;
  }
  if (exp < -25) return sign; // below half of the smallest subnormal: rounds to zero
  // Subnormal half: value = m * 2^-24 with the implicit bit made explicit.
  const man = (absU & 0x7fffff) | 0x800000;
  // value = man * 2^(exp - 23); in units of the smallest subnormal (2^-24) that is man * 2^(exp + 1).
  const total = -exp - 1; // bits dropped from the 24-bit significand, 14..24
  let h = man >>> total;
  const rest = man & ((1 << total) - 1);
  const half = 1 << (total - 1);
  if (rest > half || (rest === half && h & 1)) h += 1;
  return sign | h;
}

/**
 * Encode float values (already float32-representable or not) to a float dtype's bytes. BF16 from
 * float32 may write `into` (same byte length, 2-byte aligned) instead of a new buffer: a worker
 * returns its input chunk's own bytes, rewritten.
 */
export function encodeFloats(d: QuantizableFloat, values: ArrayLike<number>, into?: Uint8Array): Uint8Array {
  const n = values.length;
  switch (d) {
    case 'F64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = values[i];
      return toLittleEndianBytes(out, 8);
    }
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = values[i];
      return toLittleEndianBytes(out, 4);
    }
    case 'F16':
    case 'BF16': {
      if (d === 'BF16' && values instanceof Float32Array) {
        const fits = into && into.byteLength === 2 * n && aligned(into, 2);
        return toLittleEndianBytes(
          bf16FromFloat32(values, fits ? new Uint16Array(into.buffer, into.byteOffset, n) : new Uint16Array(n)),
          2,
        );
      }
      const out = new Uint16Array(n);
      const enc = d === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < n; i++) out[i] = enc(values[i]);
      return toLittleEndianBytes(out, 2);
    }
  }
}

/** f32ToBf16Bits over a whole float32 array, on its bit patterns (the quantizer's output path). */
function bf16FromFloat32(values: Float32Array, out: Uint16Array): Uint16Array {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const u = bits[i];
    out[i] = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x40 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The largest finite value of each float dtype: anything beyond rounds to infinity. */
export const MAX_FINITE: Record<QuantizableFloat, number> = {
  F64: Number.MAX_VALUE,
  F32: 3.4028234663852886e38,
  F16: 65504,
  BF16: 3.3895313892515355e38,
};

/** Round a value to what a float dtype can hold (a scale stored as F16 must be used as F16). */
export function roundToDtype(d: QuantizableFloat, x: number): number {
  switch (d) {
    case 'F64':
      return x;
    case 'F32':
      return Math.fround(x);
    case 'F16':
      return f16Table[f32ToF16Bits(x)];
    case 'BF16':
      f32[0] = x;
      u32[0] = f32ToBf16Bits(x) << 16;
      return f32[0];
  }
}

function toLittleEndianBytes(arr: Float64Array | Float32Array | Uint16Array | Int32Array, size: number): Uint8Array {
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  return bytes;
}

/** Little-endian bytes of integers (int32 packed codes; the array is used in place). */
export function int32Bytes(values: Int32Array): Uint8Array {
  return toLittleEndianBytes(values, 4);
}

export function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
  return out;
}
