/**
 * A tensor's error statistics estimated from a sample of its quantization groups, with confidence
 * intervals: the overview of a large model in seconds instead of a full quantization per cell.
 *
 * Groups are quantized independently (each has its own scale), so the tensor's totals are sums
 * over groups. A cheap first pass reads the tensor and sums the squares of a strided subset of
 * each group's weights (no quantization): a size measure ŵ² per group. Groups are then drawn with
 * probability p ∝ ŵ² (systematic PPS over the storage order) and quantized. Σw² and Σe² are
 * Hansen–Hurwitz estimates — mean(w²/p) and mean(e²/p) over the draws, unbiased for any p > 0 — and
 * SQNR is their ratio. Because p follows each group's size, the draws' e²/p and w²/p hardly vary
 * with scale: outlier rows (whole rows 10–30x larger, which dominate both sums) cost no accuracy.
 * The interval is the ratio's linearized variance (with-replacement: conservative for systematic
 * draws).
 */
import { mulberry32 } from '../random';

/** What quantizing one group gave. */
export interface GroupSample {
  /** Weights in the group. */
  n: number;
  /** Σ w² and Σ (w − ŵ)² over the group. */
  w2: number;
  e2: number;
  /** Residual entropy (nats), chosen scale / absmax scale (NaN for an all-zero group), clipped weights. */
  entropy: number;
  ratio: number;
  clipped: number;
}

/** Where a group lies: its row, its first column, its length. */
export interface GroupRef {
  row: number;
  col: number;
  n: number;
}

/** z of the stated two-sided 99% interval (a grid has hundreds of cells: 95% would leave several out). */
export const Z99 = 2.575829;

/** The groups of a rows x cols matrix cut into groups of `g` along each row, in storage order. */
export function groupAt(k: number, cols: number, g: number): GroupRef {
  const perRow = Math.max(1, Math.ceil(cols / g));
  const row = Math.floor(k / perRow);
  const col = (k % perRow) * g;
  return { row, col, n: Math.min(g, cols - col) };
}

/** The sample design: the groups drawn (with repeats) and the probability each draw had. */
export interface SampleDesign {
  /** Flat indices (storage order) of the draws; a heavy group can be drawn more than once. */
  draws: number[];
  /** Probability of each draw's group per draw (its share of the size measure). */
  probs: number[];
  /** All groups. */
  groups: number;
  /** Every group is in `draws` exactly once: the statistics are exact. */
  exact: boolean;
}

/**
 * `count` draws with probability proportional to the size measure `size[k]` (storage order):
 * equally spaced points from a random start over its cumulative sum. A floor of 1e-3 x the mean
 * size keeps every group drawable (a strided measure can miss a sparse group's weights). Every
 * group once when `count` covers them.
 */
export function designSample(size: Float64Array, count: number, seed: number): SampleDesign {
  const groups = size.length;
  if (count >= groups)
    return { draws: Array.from({ length: groups }, (_, k) => k), probs: new Array<number>(groups).fill(1), groups, exact: true };
  let raw = 0;
  for (let k = 0; k < groups; k++) raw += size[k];
  const floor = raw > 0 ? (1e-3 * raw) / groups : 1;
  const at = (k: number) => Math.max(size[k], floor);
  let sum = 0;
  for (let k = 0; k < groups; k++) sum += at(k);
  const step = sum / count;
  let point = mulberry32(seed)() * step;
  const draws: number[] = [];
  const probs: number[] = [];
  let acc = 0;
  for (let k = 0; k < groups && draws.length < count; k++) {
    acc += at(k);
    while (point < acc && draws.length < count) {
      draws.push(k);
      probs.push(at(k) / sum);
      point += step;
    }
  }
  // Rounding in the cumulative sum can leave the last point unplaced: it falls in the last group.
  while (draws.length < count) {
    draws.push(groups - 1);
    probs.push(at(groups - 1) / sum);
  }
  return { draws, probs, groups, exact: false };
}

/** A value and its interval; an exact value has lo = hi = value. */
export interface Estimate {
  value: number;
  lo: number;
  hi: number;
}

export interface TensorEstimate {
  /** SQNR in dB (Infinity when there is no error), with its interval. */
  sqnrDb: Estimate;
  /** MSE: an estimate without an interval (a group missed by the strided size measure can hold much of it). */
  mse: number;
  residualEntropy: number;
  scaleRatio: number;
  clippedFraction: number;
  /** Groups quantized, of all groups: equal when the statistics are exact. */
  groups: number;
  of: number;
}

const dB = (signal: number, error: number) => (error > 0 ? 10 * Math.log10(signal / error) : Infinity);

/** The tensor's statistics from the quantized draws (`samples[i]` is draw i of the design) of its `weights` weights. */
export function estimateTensor(samples: readonly GroupSample[], design: SampleDesign, weights: number, z = Z99): TensorEstimate {
  const m = samples.length;
  const groups = new Set(design.draws).size;
  // Totals: exact sums when every group is here, else Hansen–Hurwitz means of x / p.
  const total = (f: (s: GroupSample) => number) =>
    design.exact ? samples.reduce((a, s) => a + f(s), 0) : samples.reduce((a, s, i) => a + f(s) / design.probs[i], 0) / m;
  const W = total((s) => s.w2);
  const E = total((s) => s.e2);
  const N = total((s) => s.n);
  const entropy = total((s) => s.entropy * s.n);
  const clipped = total((s) => s.clipped);
  const ratioGroups = total((s) => (Number.isFinite(s.ratio) ? 1 : 0));
  const ratio = total((s) => (Number.isFinite(s.ratio) ? s.ratio : 0));
  const r = W > 0 ? E / W : 0;
  let rLo = r;
  let rHi = r;
  if (!design.exact && m > 1) {
    // Var(R̂) ≈ var(y − R x) / (m x̄²), y = e²/p, x = w²/p.
    let sz = 0;
    for (const [i, s] of samples.entries()) sz += (s.e2 / design.probs[i] - (r * s.w2) / design.probs[i]) ** 2;
    const seR = Math.sqrt(sz / (m - 1) / m) / W;
    rLo = Math.max(0, r - z * seR);
    rHi = r + z * seR;
  }
  return {
    sqnrDb: { value: dB(1, r), lo: dB(1, rHi), hi: dB(1, rLo) },
    mse: E / weights,
    residualEntropy: N ? entropy / N : 0,
    scaleRatio: ratioGroups ? ratio / ratioGroups : 1,
    clippedFraction: N ? clipped / N : 0,
    groups,
    of: design.groups,
  };
}

/** Half the width of the SQNR interval in dB (0 when exact, Infinity when unbounded). */
export function sqnrHalfWidth(e: TensorEstimate): number {
  if (e.groups >= e.of) return 0;
  return (e.sqnrDb.hi - e.sqnrDb.lo) / 2;
}
