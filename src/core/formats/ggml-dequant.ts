/**
 * ggml's block formats back to float32, ported from `dequantize_row_*` in llama.cpp's
 * `ggml/src/ggml-quants.c` (block layouts in `ggml-common.h`). Every product and sum is rounded to
 * float32 in the order the C code evaluates it, so the values are ggml's bit for bit (the `gguf` test
 * calls ggml's own functions through koffi and compares).
 */
import { f16Table } from '../dtypes';
import { GGML_BLOCK, GgmlType, ggmlTypeName } from './gguf';

const fr = Math.fround;
const QK_K = 256;

export function canDequantize(type: number): boolean {
  return type in DEQUANT;
}

/** `count` weights of `type` from `bytes` (whole blocks), as float32. */
export function dequantize(type: number, bytes: Uint8Array, count: number): Float32Array {
  const f = DEQUANT[type];
  if (!f) throw new Error(`no dequantizer for ${ggmlTypeName(type)}`);
  const b = GGML_BLOCK[type as GgmlType]!;
  if (count % b.weights !== 0 || bytes.byteLength < (count / b.weights) * b.bytes)
    throw new Error(`internal: ${count} weights of ${ggmlTypeName(type)} in ${bytes.byteLength} bytes`);
  const y = new Float32Array(count);
  f(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes, y, count / b.weights);
  return y;
}

type Dequant = (dv: DataView, u8: Uint8Array, y: Float32Array, blocks: number) => void;
const h = (dv: DataView, at: number) => f16Table[dv.getUint16(at, true)];

/** get_scale_min_k4: 6-bit scale and min j of a Q4_K/Q5_K block's 12 scale bytes at `q`. */
function scaleMinK4(j: number, u8: Uint8Array, q: number): [number, number] {
  if (j < 4) return [u8[q + j] & 63, u8[q + j + 4] & 63];
  return [(u8[q + j + 4] & 0xf) | ((u8[q + j - 4] >> 6) << 4), (u8[q + j + 4] >> 4) | ((u8[q + j] >> 6) << 4)];
}

/** Q4_K/Q5_K: the float scales and mins (d1, m1, d2, m2) of sub-blocks is and is + 1. */
function subScalesK(u8: Uint8Array, scalesAt: number, is: number, d: number, min: number): [number, number, number, number] {
  const [s1, m1] = scaleMinK4(is, u8, scalesAt);
  const [s2, m2] = scaleMinK4(is + 1, u8, scalesAt);
  return [fr(d * s1), fr(min * m1), fr(d * s2), fr(min * m2)];
}

const DEQUANT: Record<number, Dequant> = {
  [GgmlType.F32]: (dv, _u, y, n) => {
    for (let i = 0; i < n; i++) y[i] = dv.getFloat32(4 * i, true);
  },
  [GgmlType.F16]: (dv, _u, y, n) => {
    for (let i = 0; i < n; i++) y[i] = h(dv, 2 * i);
  },
  [GgmlType.BF16]: (dv, _u, y, n) => {
    const u32 = new Uint32Array(y.buffer, y.byteOffset, n);
    for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
  },
  [GgmlType.Q8_0]: (dv, _u, y, n) => {
    for (let i = 0; i < n; i++) {
      const d = h(dv, i * 34);
      for (let j = 0; j < 32; j++) y[i * 32 + j] = fr(dv.getInt8(i * 34 + 2 + j) * d);
    }
  },
  [GgmlType.Q4_0]: (dv, u8, y, n) => {
    for (let i = 0; i < n; i++) {
      const d = h(dv, i * 18);
      for (let j = 0; j < 16; j++) {
        const q = u8[i * 18 + 2 + j];
        y[i * 32 + j] = fr(((q & 0x0f) - 8) * d);
        y[i * 32 + j + 16] = fr(((q >> 4) - 8) * d);
      }
    }
  },
  [GgmlType.Q4_1]: (dv, u8, y, n) => {
    for (let i = 0; i < n; i++) {
      const d = h(dv, i * 20);
      const m = h(dv, i * 20 + 2);
      for (let j = 0; j < 16; j++) {
        const q = u8[i * 20 + 4 + j];
        y[i * 32 + j] = fr(fr((q & 0x0f) * d) + m);
        y[i * 32 + j + 16] = fr(fr((q >> 4) * d) + m);
      }
    }
  },
  [GgmlType.Q5_0]: (dv, u8, y, n) => {
    for (let i = 0; i < n; i++) {
      const d = h(dv, i * 22);
      const qh = dv.getUint32(i * 22 + 2, true);
      for (let j = 0; j < 16; j++) {
        const q = u8[i * 22 + 6 + j];
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        y[i * 32 + j] = fr((((q & 0x0f) | h0) - 16) * d);
        y[i * 32 + j + 16] = fr((((q >> 4) | h1) - 16) * d);
      }
    }
  },
  [GgmlType.Q5_1]: (dv, u8, y, n) => {
    for (let i = 0; i < n; i++) {
      const d = h(dv, i * 24);
      const m = h(dv, i * 24 + 2);
      const qh = dv.getUint32(i * 24 + 4, true);
      for (let j = 0; j < 16; j++) {
        const q = u8[i * 24 + 8 + j];
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        y[i * 32 + j] = fr(fr(((q & 0x0f) | h0) * d) + m);
        y[i * 32 + j + 16] = fr(fr(((q >> 4) | h1) * d) + m);
      }
    }
  },
  // block_q2_K: scales[16], qs[64], d, dmin (84 bytes).
  [GgmlType.Q2_K]: (dv, u8, y, n) => {
    let o = 0;
    for (let i = 0; i < n; i++) {
      const b = i * 84;
      const d = h(dv, b + 80);
      const min = h(dv, b + 82);
      let q = b + 16;
      let is = 0;
      for (let nn = 0; nn < QK_K; nn += 128) {
        let shift = 0;
        for (let j = 0; j < 4; j++) {
          for (const half of [0, 16]) {
            const sc = u8[b + is++];
            const dl = fr(d * (sc & 0xf));
            const ml = fr(min * (sc >> 4));
            for (let l = 0; l < 16; l++) y[o++] = fr(fr(dl * ((u8[q + l + half] >> shift) & 3)) - ml);
          }
          shift += 2;
        }
        q += 32;
      }
    }
  },
  // block_q3_K: hmask[32], qs[64], scales[12], d (110 bytes).
  [GgmlType.Q3_K]: (dv, u8, y, n) => {
    let o = 0;
    const scales = new Int8Array(16);
    for (let i = 0; i < n; i++) {
      const b = i * 110;
      const dAll = h(dv, b + 108);
      const a0 = dv.getUint32(b + 96, true);
      const a1 = dv.getUint32(b + 100, true);
      const tmp = dv.getUint32(b + 104, true);
      const k1 = 0x03030303;
      const k2 = 0x0f0f0f0f;
      const aux = [
        (a0 & k2) | (((tmp >>> 0) & k1) << 4),
        (a1 & k2) | (((tmp >>> 2) & k1) << 4),
        ((a0 >>> 4) & k2) | (((tmp >>> 4) & k1) << 4),
        ((a1 >>> 4) & k2) | (((tmp >>> 6) & k1) << 4),
      ];
      for (let w = 0; w < 4; w++) for (let k = 0; k < 4; k++) scales[w * 4 + k] = (aux[w] >>> (8 * k)) & 0xff;
      let q = b + 32;
      const hm = b;
      let m = 1;
      let is = 0;
      for (let nn = 0; nn < QK_K; nn += 128) {
        let shift = 0;
        for (let j = 0; j < 4; j++) {
          for (const half of [0, 16]) {
            const dl = fr(dAll * (scales[is++] - 32));
            for (let l = 0; l < 16; l++) y[o++] = fr(dl * (((u8[q + l + half] >> shift) & 3) - (u8[hm + l + half] & m ? 0 : 4)));
          }
          shift += 2;
          m <<= 1;
        }
        q += 32;
      }
    }
  },
  // block_q4_K: d, dmin, scales[12], qs[128] (144 bytes).
  [GgmlType.Q4_K]: (dv, u8, y, n) => {
    let o = 0;
    for (let i = 0; i < n; i++) {
      const b = i * 144;
      const d = h(dv, b);
      const min = h(dv, b + 2);
      let q = b + 16;
      for (let is = 0; is < 8; is += 2) {
        const [d1, mm1, d2, mm2] = subScalesK(u8, b + 4, is, d, min);
        for (let l = 0; l < 32; l++) y[o++] = fr(fr(d1 * (u8[q + l] & 0xf)) - mm1);
        for (let l = 0; l < 32; l++) y[o++] = fr(fr(d2 * (u8[q + l] >> 4)) - mm2);
        q += 32;
      }
    }
  },
  // block_q5_K: d, dmin, scales[12], qh[32], qs[128] (176 bytes).
  [GgmlType.Q5_K]: (dv, u8, y, n) => {
    let o = 0;
    for (let i = 0; i < n; i++) {
      const b = i * 176;
      const d = h(dv, b);
      const min = h(dv, b + 2);
      const qh = b + 16;
      let ql = b + 48;
      let u1 = 1;
      let u2 = 2;
      for (let is = 0; is < 8; is += 2) {
        const [d1, mm1, d2, mm2] = subScalesK(u8, b + 4, is, d, min);
        for (let l = 0; l < 32; l++) y[o++] = fr(fr(d1 * ((u8[ql + l] & 0xf) + (u8[qh + l] & u1 ? 16 : 0))) - mm1);
        for (let l = 0; l < 32; l++) y[o++] = fr(fr(d2 * ((u8[ql + l] >> 4) + (u8[qh + l] & u2 ? 16 : 0))) - mm2);
        ql += 32;
        u1 <<= 2;
        u2 <<= 2;
      }
    }
  },
  // block_q6_K: ql[128], qh[64], scales[16] (int8), d (210 bytes).
  [GgmlType.Q6_K]: (dv, u8, y, n) => {
    for (let i = 0; i < n; i++) {
      const b = i * 210;
      const d = h(dv, b + 208);
      let ql = b;
      let qh = b + 128;
      let sc = b + 192;
      let o = i * QK_K;
      for (let nn = 0; nn < QK_K; nn += 128) {
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const q1 = ((u8[ql + l] & 0xf) | (((u8[qh + l] >> 0) & 3) << 4)) - 32;
          const q2 = ((u8[ql + l + 32] & 0xf) | (((u8[qh + l] >> 2) & 3) << 4)) - 32;
          const q3 = ((u8[ql + l] >> 4) | (((u8[qh + l] >> 4) & 3) << 4)) - 32;
          const q4 = ((u8[ql + l + 32] >> 4) | (((u8[qh + l] >> 6) & 3) << 4)) - 32;
          y[o + l] = fr(fr(d * dv.getInt8(sc + is)) * q1);
          y[o + l + 32] = fr(fr(d * dv.getInt8(sc + is + 2)) * q2);
          y[o + l + 64] = fr(fr(d * dv.getInt8(sc + is + 4)) * q3);
          y[o + l + 96] = fr(fr(d * dv.getInt8(sc + is + 6)) * q4);
        }
        o += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    }
  },
};
