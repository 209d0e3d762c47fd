/**
 * DARE-Q's per-group scale search (docs/methods.md §1): K candidate scales, each scored by
 * L(s) = lw * L2(s) + lh * H(s) (normalized or raw), the first strict minimum in grid order wins.
 *
 * This is the hot loop of the whole tool, so it works on typed arrays with preallocated scratch,
 * turns the entropy's logs into a table lookup per count (p = c/n takes only n+1 values), and
 * skips the histogram entirely when lambda_H is 0 and no trace is wanted. With lambda_H 0 it
 * first tries the sweep (sweep.ts): every candidate's L2 in closed form with a certified bound,
 * then the direct loop only on the candidates the bounds cannot tell apart — the same choice.
 */
import { qRange, type QuantSettings } from './settings';
import { makeSweepScratch, sweepL2, type SweepScratch } from './sweep';

export type Floats = Float32Array | Float64Array;

export interface SearchScratch {
  resid: Float64Array;
  counts: Int32Array;
  /** The bin of each residual of the current histogram, to clear only the bins it used. */
  binOf: Int32Array;
  /**
   * The index the previous group chose: the search visits it first and then moves outward, so a
   * good loss is known early and the L2 bound skips more candidates' histograms. The result does
   * not depend on it (ties still go to the lowest index).
   */
  hint: number;
  /** The fine pass's candidates of the coarse-to-fine search. */
  window: Int32Array;
  /** The last residual pass's smallest and largest residual. */
  residMin: number;
  residMax: number;
  /** Per-weight error weights of the current group (magnitude weighting), and their sum. */
  omega: Float64Array;
  omegaSum: number;
  /** The L2-only sweep's per-candidate arrays, made for the first grid that needs them. */
  sweep?: SweepScratch;
}

export function makeScratch(maxGroup: number, bins: number): SearchScratch {
  const n = Math.max(1, maxGroup);
  return {
    resid: new Float64Array(n),
    counts: new Int32Array(bins),
    binOf: new Int32Array(n),
    hint: -1,
    window: new Int32Array(0),
    residMin: 0,
    residMax: 0,
    omega: new Float64Array(n),
    omegaSum: 0,
  };
}

/**
 * Magnitude weighting (docs/methods.md §1): the L2 term becomes sum(omega e^2) / sum(omega) with
 * omega_i = rms(group) + |w_i| — llama.cpp's error weights when it has no importance matrix
 * (`quantize_row_q4_K_ref`) — so the error of large weights counts more. Fills scratch.omega.
 */
export function fillOmega(w: Floats, off: number, n: number, msq: number, scratch: SearchScratch): void {
  const rms = Math.sqrt(msq);
  const omega = scratch.omega;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const o = rms + Math.abs(w[off + i]);
    omega[i] = o;
    sum += o;
  }
  scratch.omegaSum = sum;
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

/**
 * step[c] = f(c + 1) - f(c) with f(c) = p * log(p + 1e-10), p = c / n, for c = 0..n-1: adding a
 * sample to a bin that holds c changes sum_b f(c_b) by step[c], so the entropy is summed while
 * the histogram is built, in one pass with no branch (p = c/n takes only n+1 values).
 */
const plogpSteps = new Map<number, Float64Array>();
export function plogpStep(n: number): Float64Array {
  let t = plogpSteps.get(n);
  if (!t) {
    t = new Float64Array(n);
    let prev = 0;
    for (let c = 1; c <= n; c++) {
      const p = c / n;
      const f = p * Math.log(p + ENTROPY_EPS);
      t[c - 1] = f - prev;
      prev = f;
    }
    if (plogpSteps.size > 64) plogpSteps.clear();
    plogpSteps.set(n, t);
  }
  return t;
}

/**
 * The largest code magnitude a group's absmax is mapped to: qmax, or with sign-aware scales
 * -qmin (the absmax weight lands on the qmin code, so all 2^b codes are used; docs/methods.md §1).
 */
export function absmaxCode(s: QuantSettings): number {
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  return s.signAware && !s.ternary ? -qmin : qmax;
}

/** The candidate range [lo, hi] (magnitudes) for a group with the given absmax. */
export function candidateRange(absmax: number, s: QuantSettings): [number, number] {
  const rtn = absmax / absmaxCode(s);
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
 * The residuals of w[off .. off+n) at scale sc (codes rounded by `round`, clamped to [qmin, qmax])
 * into scratch.resid, their range into scratch.residMin/Max; returns their sum of squares. The hot
 * loop of the search: `round` is one of two functions, which V8 inlines at this call site (measured
 * as fast as a copy of the loop per rounding mode).
 */
function residualPass(
  round: (y: number) => number,
  w: Floats,
  off: number,
  n: number,
  sc: number,
  qmin: number,
  qmax: number,
  scratch: SearchScratch,
  omega?: Float64Array,
): number {
  const resid = scratch.resid;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    let q = round(x / sc);
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    const e = x - q * sc;
    // Magnitude weighting multiplies each squared error by its weight (fillOmega).
    sumSq += omega ? omega[i] * e * e : e * e;
    resid[i] = e;
    if (e < min) min = e;
    if (e > max) max = e;
  }
  scratch.residMin = min;
  scratch.residMax = max;
  return sumSq;
}

/**
 * The L2 term alone (no entropy wanted): the sum of squared errors, or -1 as soon as the loss of
 * the part summed so far, lw * (partial / div), exceeds `best` — exact, because the terms are
 * nonnegative and rounding is monotone, so the full sum's loss could only be larger. Checked every
 * 8 weights. `omega` weights each term (magnitude weighting) when given. One flat loop: as blocks of
 * 8 in a nested loop, V8 compiled it well in some runs and not in others (8 bits, where every
 * candidate comes here: 3.5 or 5.6 M weights/s run to run; 5.8-6.0 M flat).
 */
function l2Pass(
  round: (y: number) => number,
  w: Floats,
  off: number,
  n: number,
  sc: number,
  qmin: number,
  qmax: number,
  omega: Float64Array | undefined,
  lw: number,
  div: number,
  best: number,
): number {
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    let q = round(x / sc);
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    const e = x - q * sc;
    sumSq += omega ? omega[i] * e * e : e * e;
    if (((i & 7) === 7 || i === n - 1) && lw * (sumSq / div) > best) return -1;
  }
  return sumSq;
}

/**
 * Entropy of the residuals resid[0..n) with B equal-width bins over [min, max] (last bin closed).
 * Probability kind: H = -sum p log(p + 1e-10), all-equal residuals -> 0.
 * Density kind (the authors' code, numpy density=True): h = c/(n*width) + 1e-8, H = -sum h log h over
 * all bins, with numpy's widening of an empty range to [x - 0.5, x + 0.5].
 * The probability kind sums the entropy as it counts (see plogpStep) and clears only the bins it
 * used, so its cost is O(n), not O(B), per candidate. Leaves counts zeroed.
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
    const binOf = scratch.binOf;
    const step = plogpStep(n);
    const norm = bins / (max - min);
    const last = bins - 1;
    let h = 0;
    for (let i = 0; i < n; i++) {
      // (resid - min) * norm >= 0, so truncation is the floor; only resid = max can reach `bins`.
      let b = ((resid[i] - min) * norm) | 0;
      b = b > last ? last : b;
      const c = counts[b];
      counts[b] = c + 1;
      h += step[c];
      binOf[i] = b;
    }
    for (let i = 0; i < n; i++) counts[binOf[i]] = 0;
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

/** One group of weights to search: w[off .. off+n), its absmax (> 0, finite) and mean(w^2). */
export interface Group {
  readonly w: Floats;
  readonly off: number;
  readonly n: number;
  readonly absmax: number;
  readonly msq: number;
}

/**
 * The sign every candidate scale of a group takes: 1, or with sign-aware scales minus the sign of
 * the group's first largest-magnitude weight, so that weight lands on the qmin code (llama.cpp's
 * Q4_0 rule, d = max / -8). Runtimes multiply codes by the stored scale, sign and all.
 */
export function scaleSign(g: Pick<Group, 'w' | 'off' | 'n' | 'absmax'>, s: QuantSettings): number {
  if (!s.signAware || s.ternary) return 1;
  for (let i = 0; i < g.n; i++) {
    const x = g.w[g.off + i];
    if (x === g.absmax) return -1;
    if (x === -g.absmax) return 1;
  }
  return 1;
}

/** The weights of L's two terms for a group with mean(w^2) `msq`: dimensionless when normalize is on. */
export function lossWeights(s: QuantSettings, msq: number): { lw: number; lh: number } {
  return {
    lw: s.normalize ? s.lambdaWeight / msq : s.lambdaWeight,
    lh: s.normalize ? s.lambdaEntropy / Math.log(s.bins) : s.lambdaEntropy,
  };
}

/** What a search may be told besides the group and the settings. */
export interface SearchOptions {
  /** Filled with every candidate's terms. */
  trace?: SearchTrace;
  /** Score only these candidates: the full search's result when the others provably lose. */
  subset?: CandidateSubset;
  /** A candidate scored already (outside `subset`): the search starts from its loss. */
  seed?: SearchResult;
}

/** Candidates subset[start .. end), ascending: the only ones that can win (from the WebGPU bounds). */
export interface CandidateSubset {
  readonly list: Int32Array;
  readonly start: number;
  readonly end: number;
}

/**
 * Search the scale of a group (`msq` is used when normalize is on). Writes every candidate's terms
 * to `o.trace` when given. With `o.subset`, only those candidates are scored: the result is the
 * full search's when the others provably lose.
 *
 * The result is the exhaustive search's — the first strict minimum in grid order — whatever order
 * the candidates are visited in: the search starts at scratch.hint (the previous search's choice)
 * and moves outward, so the best loss is near its final value early, and a candidate whose L2 term
 * alone already loses skips its histogram (the entropy term is >= -1e-10, see below). It leaves its
 * choice in scratch.hint for the next group.
 */
export function searchScale(g: Group, s: QuantSettings, scratch: SearchScratch, o: SearchOptions = {}): SearchResult {
  const { w, off, n, absmax, msq } = g;
  const { trace, subset, seed } = o;
  // L2 alone, every candidate, nothing to trace: the sweep's answer is this search's (sweep.ts).
  if (!trace && !subset && !seed) {
    const swept = searchSwept(g, s, scratch);
    if (swept) return swept;
  }
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  const [lo, hi] = candidateRange(absmax, s);
  const sign = scaleSign(g, s);
  const K = s.grid;
  const resid = scratch.resid;
  const weighted = s.weighting === 'magnitude';
  if (weighted) fillOmega(w, off, n, msq, scratch);
  const l2Div = weighted ? scratch.omegaSum : n;
  const round = s.rounding === 'half-even' ? roundHalfEven : roundHalfUp;
  const wantEntropy = s.lambdaEntropy !== 0 || trace !== undefined;
  const { lw, lh } = lossWeights(s, msq);
  // Exact pruning, probability kind only: its H >= -log(1 + 1e-10) > -2e-10 (one full bin), so a
  // candidate with lw * L2 - lh * 2e-10 above the best loss cannot win. The density kind's H has
  // no useful lower bound. Tracing scores every candidate.
  const prune = !trace && s.histogram === 'probability';
  const slack = lh * 2 * ENTROPY_EPS;
  const omega = weighted ? scratch.omega : undefined;
  let best = seed ? seed.loss : Infinity;
  let bestIndex = seed ? seed.index : -1;
  const count = subset ? subset.end - subset.start : K;
  const list = subset?.list;
  const base = subset ? subset.start : 0;
  // Visiting order, over positions in the list: outward from the one nearest the hint (the first
  // at or above it): p0, p0+1, p0-1, p0+2, ... The list is ascending.
  let p0 = 0;
  const hint = scratch.hint;
  if (hint > 0) {
    if (!list) p0 = Math.min(hint, K - 1);
    else while (p0 < count - 1 && list[base + p0] < hint) p0++;
  }
  let up = p0;
  let down = p0 - 1;
  for (let j = 0; j < count; j++) {
    const p = up < count && (down < 0 || (j & 1) === 0) ? up++ : down--;
    const k = list ? list[base + p] : p;
    const sc = candidateAt(k, K, lo, hi);
    // L = lw * L2 alone: a candidate stops being summed once it provably loses (l2Pass); with the
    // entropy term the residuals are kept for the histogram.
    const sumSq = wantEntropy
      ? residualPass(round, w, off, n, sign * sc, qmin, qmax, scratch, omega)
      : l2Pass(round, w, off, n, sign * sc, qmin, qmax, omega, lw, l2Div, best);
    if (sumSq < 0) continue;
    const l2 = sumSq / l2Div;
    if (prune) {
      const bound = lw * l2 - slack;
      if (bound > best || (bound === best && k > bestIndex)) continue;
    }
    const h = wantEntropy ? residualEntropy(resid, n, scratch.residMin, scratch.residMax, s.bins, s.histogram, scratch) : 0;
    const loss = lw * l2 + (lh === 0 ? 0 : lh * h);
    if (trace) {
      trace.scales[k] = sc;
      trace.l2[k] = l2;
      trace.entropy[k] = h;
      trace.loss[k] = loss;
    }
    if (loss < best || (loss === best && k < bestIndex)) {
      best = loss;
      bestIndex = k;
    }
  }
  if (bestIndex < 0) bestIndex = list ? list[base] : 0;
  scratch.hint = bestIndex;
  return { index: bestIndex, scale: sign * candidateAt(bestIndex, K, lo, hi), loss: best };
}

/**
 * The L2-only exhaustive search through the sweep (sweep.ts): closed-form L2 for every candidate,
 * then the direct loop on each candidate the bounds cannot rule out, in grid order — the same
 * choice and loss as the direct search. Undefined where L has an entropy term or the sweep would
 * not pay (many code changes, as at 8 bits; grids under 8): the caller runs the direct search.
 */
export function searchSwept(g: Group, s: QuantSettings, scratch: SearchScratch): SearchResult | undefined {
  const K = s.grid;
  if (s.lambdaEntropy !== 0 || K < 8) return undefined;
  const { w, off, n } = g;
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  const [lo, hi] = candidateRange(g.absmax, s);
  const weighted = s.weighting === 'magnitude';
  if (weighted) fillOmega(w, off, n, g.msq, scratch);
  const omega = weighted ? scratch.omega : undefined;
  const div = weighted ? scratch.omegaSum : n;
  const round = s.rounding === 'half-even' ? roundHalfEven : roundHalfUp;
  const { lw } = lossWeights(s, g.msq);
  const sign = scaleSign(g, s);
  let sw = scratch.sweep;
  if (!sw || sw.scs.length < K) sw = scratch.sweep = makeSweepScratch(K);
  const scs = sw.scs;
  for (let k = 0; k < K; k++) scs[k] = sign * candidateAt(k, K, lo, hi);
  // The direct search costs ~K * n divisions less what its early stop saves (a third or more);
  // the sweep ~2 per weight, ~2.5 per code change and ~n per candidate rescored.
  const budget = (K * n) / 8;
  const step = (hi - lo) / (K - 1);
  if (!sweepL2({ w, off, n, round, qmin, qmax, grid: K, lo, step, omega }, sw, budget)) return undefined;
  const { f, d, upper } = sw;
  // A candidate whose lower bound is past the least upper bound has a larger direct sum than that
  // candidate's; the margin of 2^-40 keeps it larger after the division and lw's product too.
  const cut = upper + Math.abs(upper) * 2 ** -40;
  let best = Infinity;
  let bestIndex = -1;
  for (let k = 0; k < K; k++) {
    if (f[k] - d[k] > cut) continue;
    const sumSq = l2Pass(round, w, off, n, scs[k], qmin, qmax, omega, lw, div, best);
    if (sumSq < 0) continue;
    const loss = lw * (sumSq / div);
    if (loss < best) {
      best = loss;
      bestIndex = k;
    }
  }
  if (bestIndex < 0) return undefined;
  scratch.hint = bestIndex;
  return { index: bestIndex, scale: scs[bestIndex], loss: best };
}

/** Every step-th candidate and the last, step = round(sqrt(K)): the coarse-to-fine search's first pass. */
const coarseLists = new Map<number, Int32Array>();
function coarseList(grid: number, step: number): Int32Array {
  let list = coarseLists.get(grid);
  if (!list) {
    const ks: number[] = [];
    for (let k = 0; k < grid; k += step) ks.push(k);
    if (ks[ks.length - 1] !== grid - 1) ks.push(grid - 1);
    list = Int32Array.from(ks);
    if (coarseLists.size > 64) coarseLists.clear();
    coarseLists.set(grid, list);
  }
  return list;
}

/**
 * The opt-in approximate search (`search: coarse-to-fine`): score every step-th candidate
 * (step = round(sqrt(K)), about sqrt(K) of them), then every candidate within step - 1 of the best
 * of those — about 3 sqrt(K) scored instead of K. Exact when the loss has one minimum over the
 * grid; the entropy term makes L(s) jagged, so it can miss a deeper dip further away: the loss gap
 * against the exhaustive search is measured by `npm run bench` (docs/benchmarks.md).
 */
export function searchCoarseToFine(g: Group, s: QuantSettings, scratch: SearchScratch): SearchResult {
  // With L2 alone the exact sweep costs less than the coarse pass: the exhaustive answer, sooner.
  const exact = searchSwept(g, s, scratch);
  if (exact) return exact;
  const K = s.grid;
  const step = Math.max(1, Math.round(Math.sqrt(K)));
  if (step < 3) return searchScale(g, s, scratch);
  const coarse = coarseList(K, step);
  const c = searchScale(g, s, scratch, { subset: { list: coarse, start: 0, end: coarse.length } });
  const from = Math.max(0, c.index - step + 1);
  const to = Math.min(K - 1, c.index + step - 1);
  if (scratch.window.length < to - from) scratch.window = new Int32Array(2 * step);
  // The window around c, less c itself (the seed: scored already); scratch.hint = c: the fine pass
  // starts beside it.
  const fine = scratch.window;
  let m = 0;
  for (let k = from; k <= to; k++) if (k !== c.index) fine[m++] = k;
  if (m === 0) return c;
  return searchScale(g, s, scratch, { subset: { list: fine, start: 0, end: m }, seed: c });
}

/** The scale DARE-Q chooses for a group under the settings' search mode. */
export function searchGroup(g: Group, s: QuantSettings, scratch: SearchScratch): SearchResult {
  return s.search === 'coarse-to-fine' ? searchCoarseToFine(g, s, scratch) : searchScale(g, s, scratch);
}
