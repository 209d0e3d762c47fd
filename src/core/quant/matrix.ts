/**
 * Quantize a block of rows of a weight matrix (rows = output channels), group by group:
 * choose the scale (RTN: absmax / qmax; DARE-Q: the search), round it to the dtype the scale is
 * stored in (so fake-quant values equal what a runtime computes from the packed checkpoint), then
 * compute codes, dequantized values (in place) and the error statistics.
 */
import { MAX_FINITE, roundToDtype, type QuantizableFloat } from '../dtypes';
import { nonFiniteError } from '../finite';
import {
  gridCodes,
  offsetOf,
  hqqGrid,
  refineGrid,
  rtnGrid,
  searchAffine,
  valueOf,
  type AffineGrid,
  type GridCodes,
  type ZeroKind,
} from './affine';
import {
  absmaxCode,
  candidateAt,
  candidateRange,
  makeScratch,
  residualEntropy,
  searchGroup,
  searchScale,
  scaleSign,
  type Floats,
  type Group,
  type SearchScratch,
  type SearchTrace,
} from './search';
import { qRange, type QuantSettings } from './settings';
import { addGroupErrors, emptyRowErrors, emptyStats, rowMoments, writeRowErrors, type ChannelStats, type StatsAccumulator } from './stats';

export interface QuantizeMatrixOptions {
  readonly settings: QuantSettings;
  /** The dtype of the weights: dequantized values are rounded to it, and scales unless scaleDtype. */
  readonly dtype: QuantizableFloat;
  /** The dtype scales are stored in when it is not the weights' (GGUF blocks hold f16 scales). */
  readonly scaleDtype?: QuantizableFloat;
  /** Filled with the codes (rows * cols) when given. */
  readonly codes?: Int8Array;
  /** Filled per row when given (indexed from 0 for the first row of this block). */
  readonly channels?: ChannelStats;
  /** For error messages: the file, the tensor, and the index of this block's first row. */
  readonly file?: string;
  readonly tensor: string;
  readonly rowBase?: number;
  /**
   * The search's verdict per group from elsewhere (the WebGPU search): a candidate index (the
   * scale is computed from it exactly as the CPU search would), or a group left to the CPU.
   */
  readonly found?: GroupChoices;
  /** With asymmetric settings: how the format stores the zero (default: an integer zero point). */
  readonly zeroKind?: ZeroKind;
}

export interface MatrixResult {
  /** Final (dtype-rounded) scales, [rows][groups]. */
  scales: Float64Array;
  /**
   * Asymmetric settings only, [rows][groups]: the integer zero point zp (value = scale * (q - zp))
   * or, for the float kind, the dtype-rounded offset m (value = scale * (q - qmin) + m).
   */
  zeros?: Float64Array;
  stats: StatsAccumulator;
}

/** Weights per group along a row of `cols`: the group size, or the whole row when per-channel or shorter. */
export function groupLength(groupSize: number, cols: number): number {
  return groupSize > 0 ? Math.min(groupSize, cols) : cols;
}

export function groupsPerRow(cols: number, groupSize: number): number {
  return groupSize > 0 ? Math.max(1, Math.ceil(cols / groupSize)) : 1;
}

const SMALLEST: Record<QuantizableFloat, number> = { F64: Number.MIN_VALUE, F32: 2 ** -149, F16: 2 ** -24, BF16: 2 ** -133 };

/**
 * A chosen scale as stored: rounded to the dtype, never 0 (a tiny group must not divide by 0), and
 * never so large that a code times it overflows the dtype. `codeMagnitude` is the largest |code|,
 * 2^(bits-1) (the qmin code): max/2^k is exact in every float dtype, so the cap itself is stored
 * exactly and every q * scale, and the runtime's product of the stored scale, stays finite. Only
 * groups within a factor 2^(bits-1)/qmax of the dtype's largest value meet the cap (f16 weights
 * near ±65504, where RTN's scale 65504/7 would round up and -8 * scale overflow).
 */
export function storedScale(dtype: QuantizableFloat, chosen: number, codeMagnitude: number): number {
  // Sign-aware scales are negative: rounding to nearest is symmetric, so round the magnitude.
  const sign = chosen < 0 ? -1 : 1;
  const sc = Math.min(roundToDtype(dtype, sign * chosen), MAX_FINITE[dtype] / codeMagnitude);
  return sign * (sc > 0 ? sc : SMALLEST[dtype]);
}

/** The largest |code| of a setting (|q - zp| with a zero point): what storedScale caps against. */
export function codeMagnitude(s: QuantSettings): number {
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  return s.symmetric ? Math.max(-qmin, qmax) : qmax - qmin;
}

/**
 * The search's verdict per group, made elsewhere (the WebGPU search) and carried as one value
 * through jobs, messages and the quantizer.
 */
export interface GroupChoices {
  /** Per group: the candidate proved best (>= 0), or a negative number: decide on the CPU. */
  readonly choices: Int32Array;
  /**
   * For a group left to the CPU, contenders[contenderStart[g] .. contenderStart[g + 1]) are the
   * candidates (ascending) that can still win; an empty range means all K of them.
   */
  readonly contenderStart: Int32Array;
  readonly contenders: Int32Array;
}

/**
 * The scale chosen for a group with absmax > 0, before dtype rounding: RTN's, the candidate the GPU
 * chose (`verdict`: the search's choices and this group's index in them), or the CPU's search (over
 * the GPU's contenders where it names them). `msq` (mean w^2, float64) is computed here when the
 * caller does not have it.
 */
export function chooseScale(
  g: Omit<Group, 'msq'> & { msq?: number },
  s: QuantSettings,
  scratch: SearchScratch,
  verdict?: { found: GroupChoices; at: number },
): number {
  if (s.method === 'rtn') return (scaleSign(g, s) * g.absmax) / absmaxCode(s);
  const given = verdict ? verdict.found.choices[verdict.at] : -1;
  if (given >= 0) {
    const [lo, hi] = candidateRange(g.absmax, s);
    return scaleSign(g, s) * candidateAt(given, s.grid, lo, hi);
  }
  let msq = g.msq;
  if (msq === undefined) {
    let sq = 0;
    for (let i = 0; i < g.n; i++) sq += g.w[g.off + i] * g.w[g.off + i];
    msq = sq / g.n;
  }
  const group: Group = { w: g.w, off: g.off, n: g.n, absmax: g.absmax, msq };
  const start = verdict ? verdict.found.contenderStart[verdict.at] : 0;
  const end = verdict ? verdict.found.contenderStart[verdict.at + 1] : 0;
  if (end > start) return searchScale(group, s, scratch, { subset: { list: verdict!.found.contenders, start, end } }).scale;
  return searchGroup(group, s, scratch).scale;
}

/**
 * The grid chosen for a group with absmax > 0, before dtype rounding: the symmetric scale of
 * chooseScale (zero point 0), or with asymmetric settings min-max RTN, HQQ or the DARE-Q search
 * with a zero point (affine.ts); then `refine` alternating least-squares steps.
 */
export function chooseGrid(
  g: Group & { min: number; max: number },
  s: QuantSettings,
  kind: ZeroKind,
  scratch: SearchScratch,
  verdict?: { found: GroupChoices; at: number },
): AffineGrid {
  const c = gridCodes(s, s.symmetric ? 'integer' : kind);
  let grid: AffineGrid;
  if (s.symmetric) grid = { scale: chooseScale(g, s, scratch, verdict), zero: 0 };
  else if (s.method === 'rtn') grid = rtnGrid(g, c);
  else if (s.method === 'hqq') grid = hqqGrid(g, c);
  else grid = searchAffine(g, s, c, scratch).grid;
  return refineGrid(g, grid, s.refine, s.symmetric, s, c, scratch);
}

/** A group's error sums after applyGrid. */
interface GroupSums {
  e2: number;
  sumD: number;
  sumD2: number;
  absD: number;
  min: number;
  max: number;
  clipped: number;
  /** The code of the first value that is not finite in the dtype (when applyGrid found one). */
  badCode: number;
}

/** Code q's value on the grid in the dtype. `+ 0`: code 0 times a negative (sign-aware) scale is -0; values carry no sign of zero. */
function codeValue(q: number, grid: AffineGrid, c: GridCodes, dtype: QuantizableFloat): number {
  return roundToDtype(dtype, valueOf(q, grid, c)) + 0;
}

/**
 * Code w[off .. off+n) on the grid in place: each weight becomes its code's value in the dtype
 * (from `table`, indexed by q - qmin, where given), codes[] gets the code, hist counts it, resid the
 * error; `out` the group's sums. Returns -1, or the index of a value that is not finite in the dtype
 * (left in w, its code in out.badCode, for the message). Its own small function so that V8 keeps its loop tight.
 */
function applyGrid(
  w: Floats,
  off: number,
  n: number,
  grid: AffineGrid,
  c: GridCodes,
  dtype: QuantizableFloat,
  table: Float64Array | undefined,
  codes: Int8Array | undefined,
  hist: number[],
  resid: Float64Array,
  out: GroupSums,
): number {
  const { qmin, qmax, round } = c;
  const floatZero = c.kind !== 'integer';
  const sc = grid.scale;
  const zero = grid.zero;
  const maxFinite = MAX_FINITE[dtype];
  let e2 = 0;
  let sumD = 0;
  let sumD2 = 0;
  let absD = 0;
  let min = Infinity;
  let max = -Infinity;
  let clipped = 0;
  let bad = -1;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    let q = floatZero ? round((x - zero) / sc) + qmin : round(x / sc) + zero;
    if (q < qmin) {
      q = qmin;
      clipped++;
    } else if (q > qmax) {
      q = qmax;
      clipped++;
    }
    const deq = table ? table[q - qmin] : codeValue(q, grid, c, dtype);
    const a = Math.abs(deq);
    if (!(a <= maxFinite) && bad < 0) {
      bad = i;
      out.badCode = q;
    }
    const e = x - deq;
    w[off + i] = deq;
    if (codes) codes[off + i] = q;
    hist[q - qmin]++;
    e2 += e * e;
    sumD += deq;
    sumD2 += deq * deq;
    if (a > absD) absD = a;
    resid[i] = e;
    if (e < min) min = e;
    if (e > max) max = e;
  }
  out.e2 = e2;
  out.sumD = sumD;
  out.sumD2 = sumD2;
  out.absD = absD;
  out.min = min;
  out.max = max;
  out.clipped = clipped;
  return bad;
}

export function quantizeMatrix(values: Floats, rows: number, cols: number, opts: QuantizeMatrixOptions): MatrixResult {
  const s = opts.settings;
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  const g = groupLength(s.groupSize, cols);
  const groups = groupsPerRow(cols, s.groupSize);
  const scales = new Float64Array(rows * groups);
  const zeros = s.symmetric ? undefined : new Float64Array(rows * groups);
  const kind: ZeroKind = opts.zeroKind ?? 'integer';
  // Symmetric codes are the integer kind with zp = 0: value = q * scale.
  const c = gridCodes(s, s.symmetric ? 'integer' : kind);
  const floatZero = c.kind !== 'integer';
  const stats = emptyStats(s.bits);
  const hist = stats.codeHist;
  const scratch = makeScratch(g, s.bins);
  const codes = opts.codes;
  const ch = opts.channels;
  const dtype = opts.dtype;
  const scaleDtype = opts.scaleDtype ?? dtype;
  const qAbs = codeMagnitude(s);
  const levels = qmax - qmin + 1;
  const deqTable = new Float64Array(levels);
  const sums: GroupSums = { e2: 0, sumD: 0, sumD2: 0, absD: 0, min: 0, max: 0, clipped: 0, badCode: 0 };

  for (let r = 0; r < rows; r++) {
    if (ch) {
      const m = rowMoments(values, r * cols, cols);
      ch.absmax[r] = m.absmax;
      ch.kurtosis[r] = m.kurtosis;
    }
    const row = emptyRowErrors();
    let rowSumSq = 0;
    for (let gi = 0; gi < groups; gi++) {
      const c0 = gi * g;
      const n = Math.min(g, cols - c0);
      const off = r * cols + c0;
      let absmax = 0;
      let lo = Infinity;
      let hi = -Infinity;
      let sumW = 0;
      let sumW2 = 0;
      let finite = true;
      for (let i = 0; i < n; i++) {
        const x = values[off + i];
        const a = Math.abs(x);
        if (a > absmax) absmax = a;
        if (!(a < Infinity)) finite = false; // NaN fails every comparison
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        sumW += x;
        sumW2 += x * x;
      }
      if (!finite) {
        throw nonFiniteError(opts.file, opts.tensor, (opts.rowBase ?? 0) + r, 'quantize it');
      }
      rowSumSq += sumW2;
      stats.count += n;
      stats.sumW += sumW;
      stats.sumW2 += sumW2;
      if (absmax > stats.absmaxW) stats.absmaxW = absmax;
      const at = r * groups + gi;
      if (absmax === 0) {
        // An all-zero group: scale 1, zero point 0 (a float offset 0 puts 0 on code qmin), no error, no NaN.
        scales[at] = 1;
        const q0 = floatZero ? qmin : 0;
        if (codes) codes.fill(q0, off, off + n);
        hist[q0 - qmin] += n;
        continue;
      }
      const group = { w: values, off, n, absmax, msq: sumW2 / n, min: lo, max: hi };
      const chosen = chooseGrid(group, s, kind, scratch, opts.found && { found: opts.found, at });
      // Stored as the format stores them: the scale in the scale dtype, an offset too, a zp exact.
      const grid: AffineGrid = {
        scale: storedScale(scaleDtype, chosen.scale, qAbs),
        zero: floatZero ? roundToDtype(scaleDtype, chosen.zero) : chosen.zero,
      };
      const sc = grid.scale;
      const zero = grid.zero;
      scales[at] = sc;
      if (zeros) zeros[at] = zero;

      // Each code's value in the dtype, once per group where the codes are fewer than the weights
      // (4 bits: 16 values for 128 weights): the loop then looks them up.
      const useTable = levels <= n;
      if (useTable) for (let j = 0; j < levels; j++) deqTable[j] = codeValue(qmin + j, grid, c, dtype);
      const resid = scratch.resid;
      const bad = applyGrid(values, off, n, grid, c, dtype, useTable ? deqTable : undefined, codes, hist, resid, sums);
      // storedScale keeps every product finite; a value that is not must never reach a file.
      if (bad >= 0)
        throw new Error(
          `internal: ${opts.tensor} row ${(opts.rowBase ?? 0) + r}: dequantized ${values[off + bad]} from code ${sums.badCode} and scale ${sc}`,
        );
      const { e2, sumD, sumD2, absD, min, max, clipped } = sums;
      const h = residualEntropy(resid, n, min, max, s.bins, 'probability', scratch);
      // The chosen scale against round to nearest's (absmax / qmax, or the min-max scale).
      const ratio = Math.abs(sc) / (s.symmetric ? absmax / qmax : rtnGrid(group, c).scale);
      stats.sumE2 += e2;
      stats.sumD += sumD;
      stats.sumD2 += sumD2;
      if (absD > stats.absmaxD) stats.absmaxD = absD;
      stats.clipped += clipped;
      stats.entropyWeighted += h * n;
      stats.ratioGroups++;
      stats.ratioSum += ratio;
      if (ratio < stats.ratioMin) stats.ratioMin = ratio;
      if (ratio > stats.ratioMax) stats.ratioMax = ratio;
      addGroupErrors(row, n, e2, clipped, { entropy: h, ratio });
    }
    if (ch) {
      writeRowErrors(row, cols, ch, r);
      ch.sumSq[r] = rowSumSq;
    }
  }
  return { scales, zeros, stats };
}

/** The L(s) curve of one group, for the panel: every candidate's L2, entropy and loss. */
export function traceGroup(values: Floats, off: number, n: number, settings: QuantSettings, trace: SearchTrace): number {
  let absmax = 0;
  let sumW2 = 0;
  for (let i = 0; i < n; i++) {
    const x = values[off + i];
    absmax = Math.max(absmax, Math.abs(x));
    sumW2 += x * x;
  }
  if (absmax === 0) return -1;
  const group: Group = { w: values, off, n, absmax, msq: sumW2 / n };
  const exhaustive = searchScale(group, settings, makeScratch(n, settings.bins), { trace }).index;
  // The approximate search may choose another candidate than the curve's minimum: mark its choice.
  return settings.search === 'exhaustive' ? exhaustive : searchGroup(group, settings, makeScratch(n, settings.bins)).index;
}

/**
 * The L(s) curve of a group with a zero point, for the panel: the search's choice (index and grid)
 * and, in `trace`, the loss along the scale axis at the chosen zero point (searchAffine). Undefined
 * for an all-zero group.
 */
export function traceZeroGroup(
  values: Floats,
  off: number,
  n: number,
  settings: QuantSettings,
  kind: ZeroKind,
  trace: SearchTrace,
): { index: number; grid: AffineGrid; offset: number; rtnScale: number } | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  let sumW2 = 0;
  for (let i = 0; i < n; i++) {
    const x = values[off + i];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
    sumW2 += x * x;
  }
  if (sumW2 === 0) return undefined;
  const group = { w: values, off, n, min: lo, max: hi, msq: sumW2 / n };
  const c = gridCodes(settings, kind);
  const r = searchAffine(group, settings, c, makeScratch(n, settings.bins), trace);
  return { index: r.index, grid: r.grid, offset: offsetOf(r.grid, c), rtnScale: rtnGrid(group, c).scale };
}
