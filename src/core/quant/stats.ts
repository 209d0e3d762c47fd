/**
 * Error statistics of a quantization (docs/methods.md §1): accumulated per chunk, merged across
 * chunks and worker threads, finished into the report's per-tensor numbers.
 */
export interface StatsAccumulator {
  bits: number;
  count: number;
  /** Moments of the original weights and of the dequantized ones (for the diff view). */
  sumW: number;
  sumW2: number;
  absmaxW: number;
  sumD: number;
  sumD2: number;
  absmaxD: number;
  sumE2: number;
  clipped: number;
  /** Sum over groups of H(group) * n(group), for a size-weighted mean entropy. */
  entropyWeighted: number;
  /** Groups with a nonzero absmax (their scale ratio is defined). */
  ratioGroups: number;
  ratioMin: number;
  ratioMax: number;
  ratioSum: number;
  /** codeHist[q - qmin] = how many weights got code q. */
  codeHist: number[];
}

export function emptyStats(bits: number): StatsAccumulator {
  return {
    bits,
    count: 0,
    sumW: 0,
    sumW2: 0,
    absmaxW: 0,
    sumD: 0,
    sumD2: 0,
    absmaxD: 0,
    sumE2: 0,
    clipped: 0,
    entropyWeighted: 0,
    ratioGroups: 0,
    ratioMin: Infinity,
    ratioMax: -Infinity,
    ratioSum: 0,
    codeHist: new Array<number>(2 ** bits).fill(0),
  };
}

export function mergeStats(into: StatsAccumulator, from: StatsAccumulator): void {
  into.count += from.count;
  into.sumW += from.sumW;
  into.sumW2 += from.sumW2;
  into.absmaxW = Math.max(into.absmaxW, from.absmaxW);
  into.sumD += from.sumD;
  into.sumD2 += from.sumD2;
  into.absmaxD = Math.max(into.absmaxD, from.absmaxD);
  into.sumE2 += from.sumE2;
  into.clipped += from.clipped;
  into.entropyWeighted += from.entropyWeighted;
  into.ratioGroups += from.ratioGroups;
  into.ratioMin = Math.min(into.ratioMin, from.ratioMin);
  into.ratioMax = Math.max(into.ratioMax, from.ratioMax);
  into.ratioSum += from.ratioSum;
  for (let i = 0; i < into.codeHist.length; i++) into.codeHist[i] += from.codeHist[i];
}

/** Summary statistics of a set of values. */
export interface Moments {
  mean: number;
  std: number;
  rms: number;
  absmax: number;
}

function moments(n: number, sum: number, sum2: number, absmax: number): Moments {
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), rms: Math.sqrt(sum2 / n), absmax };
}

export interface TensorErrorStats {
  /** The original weights' statistics, and the same of the dequantized weights. */
  original: Moments;
  dequantized: Moments;
  mse: number;
  /** 10 log10(sum w^2 / sum e^2); null when the error is exactly zero (infinite SQNR). */
  sqnrDb: number | null;
  residualEntropy: number;
  clippedFraction: number;
  /** Chosen scale / absmax scale over the groups with a nonzero absmax (1 for all-zero tensors). */
  scaleRatio: { min: number; mean: number; max: number };
  codeHistogram: number[];
}

export function finishStats(a: StatsAccumulator): TensorErrorStats {
  // JSON would write a non-finite error as null, which reads as "no error at all".
  if (!Number.isFinite(a.sumE2) || !Number.isFinite(a.sumD2) || !Number.isFinite(a.absmaxD)) {
    throw new Error(`internal: non-finite error statistics (sum e^2 ${a.sumE2}, max |dequantized| ${a.absmaxD})`);
  }
  const n = Math.max(1, a.count);
  const none = a.ratioGroups === 0;
  return {
    original: moments(n, a.sumW, a.sumW2, a.absmaxW),
    dequantized: moments(n, a.sumD, a.sumD2, a.absmaxD),
    mse: a.sumE2 / n,
    sqnrDb: a.sumE2 === 0 ? null : 10 * Math.log10(a.sumW2 / a.sumE2),
    residualEntropy: a.entropyWeighted / n,
    clippedFraction: a.clipped / n,
    scaleRatio: {
      min: none ? 1 : a.ratioMin,
      mean: none ? 1 : a.ratioSum / a.ratioGroups,
      max: none ? 1 : a.ratioMax,
    },
    codeHistogram: a.codeHist.slice(),
  };
}

/** Per output channel (row) statistics, for the panel and the diff view. */
export interface ChannelStats {
  mse: Float64Array;
  entropy: Float64Array;
  scaleRatio: Float64Array;
  clipped: Float64Array;
  /** Of the original weights: where outlier channels show. */
  absmax: Float64Array;
  kurtosis: Float64Array;
  /** Sum of the original weights' squares, group sums in order (one group per row: the plain sum). */
  sumSq: Float64Array;
}

/**
 * One output channel's error terms, summed group by group: the one definition of the panel's
 * per-channel charts, for the CPU's quantizeMatrix and the GPU's detail alike.
 */
export interface RowErrors {
  e2: number;
  entropyWeighted: number;
  ratioSum: number;
  ratioGroups: number;
  clipped: number;
}

export const emptyRowErrors = (): RowErrors => ({ e2: 0, entropyWeighted: 0, ratioSum: 0, ratioGroups: 0, clipped: 0 });

/**
 * Adds one group of n weights: its squared error, clipped count and, unless the group is all zero
 * (no error, no scale to compare), its residual entropy and chosen scale / absmax scale.
 */
export function addGroupErrors(r: RowErrors, n: number, e2: number, clipped: number, nonzero?: { entropy: number; ratio: number }): void {
  r.e2 += e2;
  r.clipped += clipped;
  if (nonzero) {
    r.entropyWeighted += nonzero.entropy * n;
    r.ratioSum += nonzero.ratio;
    r.ratioGroups++;
  }
}

/** The channel's chart values, written at row `at`. */
export function writeRowErrors(
  r: RowErrors,
  cols: number,
  into: {
    mse: Float32Array | Float64Array;
    entropy: Float32Array | Float64Array;
    scaleRatio: Float32Array | Float64Array;
    clipped: Float32Array | Float64Array;
  },
  at: number,
): void {
  into.mse[at] = r.e2 / cols;
  into.entropy[at] = r.entropyWeighted / cols;
  into.scaleRatio[at] = r.ratioGroups ? r.ratioSum / r.ratioGroups : 1;
  into.clipped[at] = r.clipped;
}

export function makeChannelStats(rows: number): ChannelStats {
  return {
    mse: new Float64Array(rows),
    entropy: new Float64Array(rows),
    scaleRatio: new Float64Array(rows),
    clipped: new Float64Array(rows),
    absmax: new Float64Array(rows),
    kurtosis: new Float64Array(rows),
    sumSq: new Float64Array(rows),
  };
}

/**
 * absmax, mean, variance and kurtosis (m4 / m2^2, 3 for a Gaussian; 0 for a constant row) of
 * values[off .. off+n), in two passes so the central moments do not cancel.
 */
export function rowMoments(
  values: ArrayLike<number>,
  off: number,
  n: number,
): { absmax: number; mean: number; variance: number; kurtosis: number } {
  let sum = 0;
  let absmax = 0;
  for (let i = 0; i < n; i++) {
    const x = values[off + i];
    sum += x;
    if (Math.abs(x) > absmax) absmax = Math.abs(x);
  }
  const mean = sum / n;
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = values[off + i] - mean;
    m2 += d * d;
    m4 += d * d * d * d;
  }
  const variance = m2 / n;
  return { absmax, mean, variance, kurtosis: variance > 0 ? m4 / n / (variance * variance) : 0 };
}
