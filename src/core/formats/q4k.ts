/**
 * GGUF Q4_K (`block_q4_K` in ggml-common.h, `quantize_row_q4_K_ref` / `dequantize_row_q4_K` in
 * ggml-quants.c): super-blocks of 256 weights, each 8 sub-blocks of 32 with a 6-bit scale and a
 * 6-bit min under the super-block's f16 `d` and `dmin`:
 *
 *   value = d * sc_j * q - dmin * m_j,   q in 0..15,   sc_j, m_j in 0..63   (144 bytes per 256 weights)
 *
 * Each sub-block's (scale, offset) is chosen by the run's method on groups of 32 with offsets never
 * above 0 (what `-dmin * m` can hold) — DARE-Q's search, HQQ or min-max RTN — then the eight scales and
 * eight mins are put on the 6-bit grids of their super-block (as llama.cpp does: d = max / 63,
 * nearest level), and the codes are recomputed against the values the runtime will compute
 * (f32 d1 = d * sc, m1 = dmin * m, value = d1 * q - m1). The statistics are those of these values.
 */
import { f32ToF16Bits, roundToDtype } from '../dtypes';
import { quantizeMatrix } from '../quant/matrix';
import { makeScratch, residualEntropy, type Floats } from '../quant/search';
import type { QuantSettings } from '../quant/settings';
import { emptyStats, type StatsAccumulator } from '../quant/stats';

export const QK_K = 256;
const BLOCK_BYTES = 144;

const fr = Math.fround;
const f16 = (x: number) => roundToDtype('F16', x);

/** The 12 scale bytes of a super-block from its eight 6-bit scales and mins (get_scale_min_k4's inverse). */
function packScales(ls: ArrayLike<number>, lm: ArrayLike<number>, out: Uint8Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[at + j] = ls[j];
      out[at + j + 4] = lm[j];
    } else {
      out[at + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      out[at + j - 4] |= (ls[j] >> 4) << 6;
      out[at + j] |= (lm[j] >> 4) << 6;
    }
  }
}

/** A sub-block's squared error at the runtime's step d1 and min m1 (codes 0..15 nearest). */
function subBlockError(values: Floats, off: number, d1: number, m1: number): number {
  let e2 = 0;
  for (let i = 0; i < 32; i++) {
    const x = values[off + i];
    let q = d1 > 0 ? Math.round((x + m1) / d1) : 0;
    q = q < 0 ? 0 : q > 15 ? 15 : q;
    const e = x - fr(fr(d1 * q) - m1);
    e2 += e * e;
  }
  return e2;
}

export interface Q4KResult {
  /** rows * cols / 256 blocks of 144 bytes. */
  bytes: Uint8Array;
  stats: StatsAccumulator;
}

/** Rows of `cols` (a multiple of 256) weights as Q4_K blocks. */
export function quantizeQ4K(
  values: Floats,
  rows: number,
  cols: number,
  settings: QuantSettings,
  where: { file?: string; tensor: string; rowBase?: number },
): Q4KResult {
  if (cols % QK_K !== 0) throw new Error(`internal: Q4_K rows of ${cols}`);
  // Each sub-block's choice (float64 scales, offsets <= 0), on a copy: quantizeMatrix writes values.
  const s: QuantSettings = { ...settings, bits: 4, groupSize: 32, symmetric: false, signAware: false };
  const chosen = quantizeMatrix(Float64Array.from(values), rows, cols, {
    settings: s,
    dtype: 'F64',
    zeroKind: 'nonpositive',
    file: where.file,
    tensor: where.tensor,
    rowBase: where.rowBase,
  });
  const blocks = (rows * cols) / QK_K;
  const bytes = new Uint8Array(blocks * BLOCK_BYTES);
  const dv = new DataView(bytes.buffer);
  const stats = emptyStats(4);
  const scratch = makeScratch(32, s.bins);
  const ls = new Int32Array(8);
  const lm = new Int32Array(8);
  const codes = new Uint8Array(QK_K);
  for (let b = 0; b < blocks; b++) {
    const g0 = b * 8;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      maxScale = Math.max(maxScale, chosen.scales[g0 + j]);
      maxMin = Math.max(maxMin, -chosen.zeros![g0 + j]);
    }
    // The super-block's f16 steps, and each sub-block's nearest 6-bit level under them.
    const d = f16(maxScale / 63);
    const dmin = f16(maxMin / 63);
    for (let j = 0; j < 8; j++) {
      ls[j] = d > 0 ? Math.min(63, Math.round(chosen.scales[g0 + j] / d)) : 0;
      lm[j] = dmin > 0 ? Math.min(63, Math.round(-chosen.zeros![g0 + j] / dmin)) : 0;
    }
    // Rounding each level on its own ignores how the scale and min interact: try the neighbouring
    // levels too and keep the pair with the least squared error (codes recomputed for each).
    for (let j = 0; j < 8; j++) {
      const off = b * QK_K + 32 * j;
      let bestErr = subBlockError(values, off, fr(d * ls[j]), fr(dmin * lm[j]));
      let bs = ls[j];
      let bm = lm[j];
      for (let a = ls[j] - 1; a <= ls[j] + 1; a++) {
        for (let c = lm[j] - 1; c <= lm[j] + 1; c++) {
          if (a < 0 || a > 63 || c < 0 || c > 63 || (a === ls[j] && c === lm[j])) continue;
          const e = subBlockError(values, off, fr(d * a), fr(dmin * c));
          if (e < bestErr) {
            bestErr = e;
            bs = a;
            bm = c;
          }
        }
      }
      ls[j] = bs;
      lm[j] = bm;
    }
    const at = b * BLOCK_BYTES;
    dv.setUint16(at, f32ToF16Bits(d), true);
    dv.setUint16(at + 2, f32ToF16Bits(dmin), true);
    packScales(ls, lm, bytes, at + 4);
    // Codes against the runtime's values: d1 * q - m1 in f32.
    const base = b * QK_K;
    for (let j = 0; j < 8; j++) {
      const d1 = fr(d * ls[j]);
      const m1 = fr(dmin * lm[j]);
      const off = base + 32 * j;
      let e2 = 0;
      let min = Infinity;
      let max = -Infinity;
      let absmax = 0;
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < 32; i++) {
        const x = values[off + i];
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        let q = d1 > 0 ? Math.round((x + m1) / d1) : 0;
        if (q < 0 || q > 15) {
          q = q < 0 ? 0 : 15;
          stats.clipped++;
        }
        codes[32 * j + i] = q;
        const deq = fr(fr(d1 * q) - m1);
        const e = x - deq;
        scratch.resid[i] = e;
        if (e < min) min = e;
        if (e > max) max = e;
        e2 += e * e;
        stats.sumW += x;
        stats.sumW2 += x * x;
        stats.sumD += deq;
        stats.sumD2 += deq * deq;
        absmax = Math.max(absmax, Math.abs(x));
        stats.absmaxD = Math.max(stats.absmaxD, Math.abs(deq));
        stats.codeHist[q]++;
      }
      stats.count += 32;
      stats.sumE2 += e2;
      stats.absmaxW = Math.max(stats.absmaxW, absmax);
      stats.entropyWeighted += 32 * residualEntropy(scratch.resid, 32, min, max, s.bins, 'probability', scratch);
      if (absmax > 0) {
        // The stored sub-block step against the min-max step of round to nearest.
        const rtn = (hi - Math.min(lo, 0)) / 15;
        const ratio = rtn > 0 ? d1 / rtn : 1;
        stats.ratioGroups++;
        stats.ratioSum += ratio;
        stats.ratioMin = Math.min(stats.ratioMin, ratio);
        stats.ratioMax = Math.max(stats.ratioMax, ratio);
      }
    }
    // qs: for each 64 weights, byte l holds weight l (low nibble) and weight l + 32 (high nibble).
    for (let k = 0; k < 4; k++) {
      for (let l = 0; l < 32; l++) bytes[at + 16 + 32 * k + l] = codes[64 * k + l] | (codes[64 * k + l + 32] << 4);
    }
  }
  return { bytes, stats };
}
