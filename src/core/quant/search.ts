/**
 * DARE-Q's per-group scale search (docs/methods.md §1): K candidate scales, each scored by
 * L(s) = lw * L2(s) + lh * H(s) (normalized or raw), the first strict minimum in grid order wins.
 *
 * This is the hot loop of the whole tool, so it works on typed arrays with preallocated scratch,
 * turns the entropy's logs into a table lookup per count (p = c/n takes only n+1 values), and
 * skips the histogram entirely when lambda_H is 0 and no trace is wanted.
 */
import { qRange, type QuantSettings } from './settings';

export type Floats = Float32Array | Float64Array;

export interface SearchScratch {
  resid: Float64Array;
  counts: Int32Array;
  /** Bins hit by the current histogram: a group of n weights touches at most min(n, B) of B bins. */
  touched: Int32Array;
}

export function makeScratch(maxGroup: number, bins: number): SearchScratch {
  const n = Math.max(1, maxGroup);
  return { resid: new Float64Array(n), counts: new Int32Array(bins), touched: new Int32Array(Math.min(n, bins)) };
}

/** Per-candidate loss terms, for the panel's L(s) curve. */
export interface SearchTrace {
  scales: Float64Array;
  l2: Float64Array;
  entropy: Float64Array;
  loss: Float64Array;
}

export function makeTrace(grid: number): SearchTrace {
  return { scales: new Float64Array(grid), l2: new Float64Array(grid), entropy: new Float64Array(grid), loss: new Float64Array(grid) };
}

const ENTROPY_EPS = 1e-10;
const DENSITY_EPS = 1e-8;

/** table[c] = p * log(p + 1e-10) with p = c / n, for c = 0..n. */
const plogpTables = new Map<number, Float64Array>();
export function plogpTable(n: number): Float64Array {
  let t = plogpTables.get(n);
  if (!t) {
    t = new Float64Array(n + 1);
    for (let c = 1; c <= n; c++) {
      const p = c / n;
      t[c] = p * Math.log(p + ENTROPY_EPS);
    }
    if (plogpTables.size > 64) plogpTables.clear();
    plogpTables.set(n, t);
  }
  return t;
}

/** The candidate range [lo, hi] for a group with the given absmax. */
export function candidateRange(absmax: number, s: QuantSettings): [number, number] {
  const { qmax } = qRange(s.bits, s.ternary);
  const rtn = absmax / qmax;
  return s.range === 'paper' ? [rtn, absmax] : [s.clipAlphaMin * rtn, rtn];
}

/**
 * Candidate k of K, linearly spaced with both ends included, with numpy.linspace's arithmetic
 * (lo + k * step, the last one exactly hi; K = 1 gives lo alone).
 */
export function candidateAt(k: number, grid: number, lo: number, hi: number): number {
  if (grid === 1) return lo;
  if (k === grid - 1) return hi;
  return lo + k * ((hi - lo) / (grid - 1));
}

export function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // `+ 0` turns Math.round's -0 (for -0.5 < x < 0) into 0, so codes and values carry no sign of zero.
  return (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0;
}

/**
 * Entropy of the residuals resid[0..n) with B equal-width bins over [min, max] (last bin closed).
 * Probability kind: H = -sum p log(p + 1e-10), all-equal residuals -> 0.
 * Density kind (the authors' code, numpy density=True): h = c/(n*width) + 1e-8, H = -sum h log h over
 * all bins, with numpy's widening of an empty range to [x - 0.5, x + 0.5].
 * The probability kind sums only the bins it touched, in the order it first touched them (empty
 * bins contribute exactly 0), so its cost is O(n), not O(B), per candidate. Leaves counts zeroed.
 */
export function residualEntropy(
  resid: Float64Array,
  n: number,
  min: number,
  max: number,
  bins: number,
  kind: 'probability' | 'density',
  scratch: SearchScratch,
): number {
  const counts = scratch.counts;
  if (kind === 'probability') {
    if (!(max > min)) return 0;
    const touched = scratch.touched;
    const norm = bins / (max - min);
    const last = bins - 1;
    let m = 0;
    for (let i = 0; i < n; i++) {
      let b = Math.floor((resid[i] - min) * norm);
      if (b > last) b = last;
      if (counts[b]++ === 0) touched[m++] = b;
    }
    const table = plogpTable(n);
    let h = 0;
    for (let j = 0; j < m; j++) {
      const b = touched[j];
      h += table[counts[b]];
      counts[b] = 0;
    }
    return -h;
  }
  let first = min;
  let lastEdge = max;
  if (!(lastEdge > first)) {
    first -= 0.5;
    lastEdge += 0.5;
  }
  const norm = bins / (lastEdge - first);
  const width = (lastEdge - first) / bins;
  for (let i = 0; i < n; i++) {
    let b = Math.floor((resid[i] - first) * norm);
    if (b > bins - 1) b = bins - 1;
    counts[b]++;
  }
  let h = 0;
  for (let j = 0; j < bins; j++) {
    const d = counts[j] / width / n + DENSITY_EPS;
    h += d * Math.log(d);
    counts[j] = 0;
  }
  return -h;
}

export interface SearchResult {
  index: number;
  scale: number;
  loss: number;
}

/** Candidates subset[start .. end), ascending: the only ones that can win (from the WebGPU bounds). */
export interface CandidateSubset {
  readonly list: Int32Array;
  readonly start: number;
  readonly end: number;
}

/**
 * Search the scale of w[off .. off+n) (absmax > 0, finite). `msq` is mean(w^2) of the group (used
 * when normalize is on). Writes every candidate's terms to `trace` when given. With `subset`, only
 * those candidates are scored: the result is the full search's when the others provably lose.
 */
export function searchScale(
  w: Floats,
  off: number,
  n: number,
  absmax: number,
  msq: number,
  s: QuantSettings,
  scratch: SearchScratch,
  trace?: SearchTrace,
  subset?: CandidateSubset,
): SearchResult {
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  const [lo, hi] = candidateRange(absmax, s);
  const K = s.grid;
  const resid = scratch.resid;
  const halfEven = s.rounding === 'half-even';
  const wantEntropy = s.lambdaEntropy !== 0 || trace !== undefined;
  const lw = s.normalize ? s.lambdaWeight / msq : s.lambdaWeight;
  const lh = s.normalize ? s.lambdaEntropy / Math.log(s.bins) : s.lambdaEntropy;
  let best = Infinity;
  let bestIndex = subset ? subset.list[subset.start] : 0;
  let bestScale = candidateAt(bestIndex, K, lo, hi);
  const count = subset ? subset.end - subset.start : K;
  for (let j = 0; j < count; j++) {
    const k = subset ? subset.list[subset.start + j] : j;
    const sc = candidateAt(k, K, lo, hi);
    let sumSq = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = w[off + i];
      const y = x / sc;
      let q = halfEven ? roundHalfEven(y) : Math.floor(y + 0.5);
      if (q < qmin) q = qmin;
      else if (q > qmax) q = qmax;
      const e = x - q * sc;
      sumSq += e * e;
      if (wantEntropy) {
        resid[i] = e;
        if (e < min) min = e;
        if (e > max) max = e;
      }
    }
    const l2 = sumSq / n;
    // Exact pruning: H >= -1e-10 (probability kind; a single full bin gives -log(1 + 1e-10)) and
    // the density kind's H is bounded below likewise only loosely, so prune the probability kind
    // alone: a candidate whose L2 term already reaches the best loss cannot win (strict <).
    if (!trace && s.histogram === 'probability' && lw * l2 - lh * ENTROPY_EPS >= best) continue;
    const h = wantEntropy ? residualEntropy(resid, n, min, max, s.bins, s.histogram, scratch) : 0;
    const loss = lw * l2 + (lh === 0 ? 0 : lh * h);
    if (trace) {
      trace.scales[k] = sc;
      trace.l2[k] = l2;
      trace.entropy[k] = h;
      trace.loss[k] = loss;
    }
    if (loss < best) {
      best = loss;
      bestIndex = k;
      bestScale = sc;
    }
  }
  return { index: bestIndex, scale: bestScale, loss: best };
}
