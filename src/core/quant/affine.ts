/**
 * Codes with a zero point (docs/methods.md §1, "Zero points"), and the refinement shared with
 * symmetric codes. A group's grid is affine: code q in [qmin, qmax] stands for
 *
 *   integer zero point (compressed-tensors, `symmetric: false`):  scale * (q - zp),  zp in [qmin, qmax]
 *   float offset (GGUF Q4_1, value = d * nibble + m):              scale * (q - qmin) + m
 *
 * so the 2^b codes cover [min, max] of the group rather than [-absmax, absmax]. With an integer
 * zero point the grid always holds 0 exactly (compressed-tensors' min-max observer widens the range
 * to include 0 for the same reason), and a code is round(x / scale) + zp, as compressed-tensors'
 * `quantize` computes it; with a float offset a code is round((x - m) / scale) + qmin.
 *
 * Three ways to choose (scale, zero) for a group: min-max RTN, the DARE-Q search over the clip range
 * (K scales, each with its least-squares offset, scored by the same L(s) as the symmetric search),
 * and HQQ's half-quadratic solver — re-implemented from the HQQ paper and its public code as a peer
 * to measure against. `refineGrid` then runs a few alternating least-squares steps for any of them,
 * symmetric ones included.
 */
import {
  candidateAt,
  fillOmega,
  lossWeights,
  residualEntropy,
  roundHalfEven,
  roundHalfUp,
  type Floats,
  type SearchScratch,
  type SearchTrace,
} from './search';
import { qRange, type QuantSettings } from './settings';

/**
 * How a format stores a group's zero: an integer code (compressed-tensors), a float offset (Q4_1's
 * m), or a float offset that is never above 0 (Q4_K stores it as a 6-bit count of -dmin: its grid
 * starts at or below 0, as llama.cpp's make_qkx2_quants keeps it).
 */
export type ZeroKind = 'integer' | 'float' | 'nonpositive';

/** A group's grid: `zero` is the integer zero point zp (integer kind) or the offset m (float kind). */
export interface AffineGrid {
  scale: number;
  zero: number;
}

/** A group with what the affine choices need: its values, min and max, and mean(w^2). */
export interface AffineGroup {
  readonly w: Floats;
  readonly off: number;
  readonly n: number;
  readonly min: number;
  readonly max: number;
  readonly msq: number;
}

export interface GridCodes {
  readonly qmin: number;
  readonly qmax: number;
  readonly kind: ZeroKind;
  readonly round: (y: number) => number;
}

export function gridCodes(s: QuantSettings, kind: ZeroKind): GridCodes {
  const { qmin, qmax } = qRange(s.bits, s.ternary);
  return { qmin, qmax, kind, round: s.rounding === 'half-even' ? roundHalfEven : roundHalfUp };
}

/** The code of x on the grid (clamped), exactly as the stored format's quantizer computes it. */
export function codeOf(x: number, g: AffineGrid, c: GridCodes): number {
  const q = c.kind === 'integer' ? c.round(x / g.scale) + g.zero : c.round((x - g.zero) / g.scale) + c.qmin;
  return q < c.qmin ? c.qmin : q > c.qmax ? c.qmax : q;
}

/** The value code q stands for, in float64 (the caller rounds it to the dtype). */
export function valueOf(q: number, g: AffineGrid, c: GridCodes): number {
  return c.kind === 'integer' ? (q - g.zero) * g.scale : (q - c.qmin) * g.scale + g.zero;
}

/** The offset m of the grid: the value of code qmin. */
export function offsetOf(g: AffineGrid, c: GridCodes): number {
  return c.kind === 'integer' ? (c.qmin - g.zero) * g.scale : g.zero;
}

/** The grid closest to (scale, offset m) that the kind can store: an integer zp is rounded and clamped. */
export function gridAt(scale: number, m: number, c: GridCodes): AffineGrid {
  if (c.kind === 'float') return { scale, zero: m };
  if (c.kind === 'nonpositive') return { scale, zero: Math.min(m, 0) };
  let zp = c.round(-m / scale) + c.qmin;
  zp = zp < c.qmin ? c.qmin : zp > c.qmax ? c.qmax : zp;
  return { scale, zero: zp };
}

/** The range [lo, hi] the codes must cover: [min, max], widened to hold 0 for an integer zero point. */
function coverRange(g: AffineGroup, c: GridCodes): [number, number] {
  if (c.kind === 'integer') return [Math.min(g.min, 0), Math.max(g.max, 0)];
  return c.kind === 'nonpositive' ? [Math.min(g.min, 0), Math.max(g.max, Math.min(g.min, 0))] : [g.min, g.max];
}

/** The step that puts [lo, hi] on the 2^b codes; a constant group (float kind) gets any positive step, its offset holds the value. */
function minMaxStep(lo: number, hi: number, c: GridCodes): number {
  const span = c.qmax - c.qmin;
  return hi > lo ? (hi - lo) / span : Math.abs(lo) / span || 1;
}

/** Min-max round to nearest: the whole range on the 2^b codes (compressed-tensors' and llama.cpp's Q4_1 rule). */
export function rtnGrid(g: AffineGroup, c: GridCodes): AffineGrid {
  const [lo, hi] = coverRange(g, c);
  return gridAt(minMaxStep(lo, hi, c), lo, c);
}

/**
 * Residuals of the group on grid `a` into scratch.resid (range in residMin/Max); returns their mean
 * square, weighted by scratch.omega when `weighted` (fillOmega first).
 */
export function gridResiduals(g: AffineGroup, a: AffineGrid, c: GridCodes, scratch: SearchScratch, weighted = false): number {
  const { w, off, n } = g;
  const resid = scratch.resid;
  const omega = scratch.omega;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    const e = x - valueOf(codeOf(x, a, c), a, c);
    sumSq += weighted ? omega[i] * e * e : e * e;
    resid[i] = e;
    if (e < min) min = e;
    if (e > max) max = e;
  }
  scratch.residMin = min;
  scratch.residMax = max;
  return sumSq / (weighted ? scratch.omegaSum : n);
}

/** The loss terms of the DARE-Q search (search.ts), for a grid whose residuals are in scratch. */
export interface LossTerms {
  readonly lw: number;
  readonly lh: number;
  readonly entropy: boolean;
  /** Magnitude-weighted L2 (scratch.omega filled for this group). */
  readonly weighted: boolean;
}

/** The loss terms for group g; with magnitude weighting, fills scratch.omega for it. */
export function lossTerms(s: QuantSettings, g: AffineGroup, scratch: SearchScratch, trace: boolean): LossTerms {
  const weighted = s.weighting === 'magnitude';
  if (weighted) fillOmega(g.w, g.off, g.n, g.msq, scratch);
  return { ...lossWeights(s, g.msq), entropy: s.lambdaEntropy !== 0 || trace, weighted };
}

/** L = lw * L2 + lh * H of grid `a`; `h` receives the entropy (for traces). */
export function gridLoss(
  g: AffineGroup,
  a: AffineGrid,
  c: GridCodes,
  s: QuantSettings,
  t: LossTerms,
  scratch: SearchScratch,
  h?: { l2: number; h: number },
): number {
  const l2 = gridResiduals(g, a, c, scratch, t.weighted);
  const H = t.entropy ? residualEntropy(scratch.resid, g.n, scratch.residMin, scratch.residMax, s.bins, s.histogram, scratch) : 0;
  if (h) {
    h.l2 = l2;
    h.h = H;
  }
  return t.lw * l2 + (t.lh === 0 ? 0 : t.lh * H);
}

/**
 * The least-squares offset for scale d: codes from the centred grid (the range clipped equally at
 * both ends), then m = mean(x - d * (q - qmin)) — the best offset for those codes.
 */
function offsetFor(g: AffineGroup, d: number, lo: number, hi: number, c: GridCodes, t: LossTerms, scratch: SearchScratch): AffineGrid {
  const span = c.qmax - c.qmin;
  const centred = gridAt(d, lo + (hi - lo - span * d) / 2, c);
  const { w, off, n } = g;
  const omega = scratch.omega;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    const r = x - (codeOf(x, centred, c) - c.qmin) * d;
    sum += t.weighted ? omega[i] * r : r;
  }
  return gridAt(d, sum / (t.weighted ? scratch.omegaSum : n), c);
}

export interface AffineSearchResult {
  index: number;
  grid: AffineGrid;
  loss: number;
}

/**
 * DARE-Q with a zero point: K scales over [alpha, 1] x the min-max scale, each with its
 * least-squares offset, scored by L(s) = lw * L2 + lh * H; the first strict minimum in grid order
 * wins. With `trace`, every scale is also scored at the chosen offset (the panel's curve: the loss
 * along the scale axis at the chosen zero point).
 */
export function searchAffine(
  g: AffineGroup,
  s: QuantSettings,
  c: GridCodes,
  scratch: SearchScratch,
  trace?: SearchTrace,
): AffineSearchResult {
  const [lo, hi] = coverRange(g, c);
  const top = minMaxStep(lo, hi, c);
  const K = s.grid;
  const t = lossTerms(s, g, scratch, false);
  let best = Infinity;
  let bestIndex = 0;
  let bestGrid = rtnGrid(g, c);
  for (let k = 0; k < K; k++) {
    const d = candidateAt(k, K, s.clipAlphaMin * top, top);
    const a = offsetFor(g, d, lo, hi, c, t, scratch);
    const loss = gridLoss(g, a, c, s, t, scratch);
    if (loss < best) {
      best = loss;
      bestIndex = k;
      bestGrid = a;
    }
  }
  if (trace) {
    const tt = lossTerms(s, g, scratch, true);
    const m = offsetOf(bestGrid, c);
    const parts = { l2: 0, h: 0 };
    for (let k = 0; k < K; k++) {
      const d = candidateAt(k, K, s.clipAlphaMin * top, top);
      const loss = gridLoss(g, gridAt(d, m, c), c, s, tt, scratch, parts);
      trace.scales[k] = d;
      trace.l2[k] = parts.l2;
      trace.entropy[k] = parts.h;
      trace.loss[k] = loss;
    }
  }
  return { index: bestIndex, grid: bestGrid, loss: best };
}

/**
 * HQQ (Badri & Shaji, "Half-Quadratic Quantization of Large Machine Learning Models", 2023; the
 * `optimize_weights_proximal_legacy` solver of its public code), per group: from the min-max grid,
 * alternate W_e = shrink_lp(W - W_r) (the sparse error under an l_p norm, p = 0.7) and
 * zero = mean(W_q - (W - W_e) * scale) with the scale fixed, beta growing by kappa each step, until
 * the mean absolute error stops falling; the best zero seen is kept. Its defaults: beta 10,
 * kappa 1.01, 20 steps. An integer zero point is rounded at the end (HQQ's `round_zero`).
 */
export const HQQ = { lpNorm: 0.7, beta: 10, kappa: 1.01, iters: 20 } as const;

export function hqqGrid(g: AffineGroup, c: GridCodes): AffineGrid {
  const { w, off, n } = g;
  const span = c.qmax - c.qmin;
  const [lo, hi] = coverRange(g, c);
  const d = minMaxStep(lo, hi, c);
  // HQQ's notation: W_q = round(W * s + z), W_r = (W_q - z) / s, with s = 1 / d and z = -lo * s.
  const inv = 1 / d;
  let z = -lo * inv;
  let bestZ = z;
  let bestErr = Infinity;
  let beta: number = HQQ.beta;
  for (let it = 0; it < HQQ.iters; it++) {
    let sumZ = 0;
    let err = 0;
    for (let i = 0; i < n; i++) {
      const x = w[off + i];
      let q = c.round(x * inv + z);
      q = q < 0 ? 0 : q > span ? span : q;
      const r = (q - z) / inv;
      const e = x - r;
      const ae = Math.abs(e);
      const shrunk = Math.sign(e) * Math.max(0, ae - (1 / beta) * Math.pow(ae + 1e-8, HQQ.lpNorm - 1));
      sumZ += q - (x - shrunk) * inv;
      err += ae;
    }
    err /= n;
    if (err < bestErr) {
      bestErr = err;
      bestZ = z;
    } else break;
    z = sumZ / n;
    beta *= HQQ.kappa;
  }
  // Offset m = value of the lowest code = -z * d.
  return gridAt(d, -bestZ * d, c);
}

/**
 * Alternating least squares from grid `a`: codes fixed -> the scale (and offset) that fit them
 * best in closed form -> recode; a step is kept only when it lowers L (the search's loss), so
 * refinement never makes a group worse by the measure it was chosen by. Symmetric grids are the
 * integer kind with zp = 0 (the scale alone is refit: d = sum(x q) / sum(q^2)).
 */
export function refineGrid(
  g: AffineGroup,
  a: AffineGrid,
  steps: number,
  symmetric: boolean,
  s: QuantSettings,
  c: GridCodes,
  scratch: SearchScratch,
): AffineGrid {
  if (steps <= 0) return a;
  const t = lossTerms(s, g, scratch, false);
  let best = gridLoss(g, a, c, s, t, scratch);
  let cur = a;
  const { w, off } = g;
  const omega = scratch.omega;
  // Weighted least squares under magnitude weighting (sum of weights in place of the count).
  const n = t.weighted ? scratch.omegaSum : g.n;
  for (let step = 0; step < steps; step++) {
    // Fit x ~ d * u + m over u = q - qmin (symmetric: x ~ d * q).
    let su = 0;
    let suu = 0;
    let sx = 0;
    let sxu = 0;
    for (let i = 0; i < g.n; i++) {
      const x = w[off + i];
      const q = codeOf(x, cur, c);
      const u = symmetric ? q : q - c.qmin;
      const o = t.weighted ? omega[i] : 1;
      su += o * u;
      suu += o * u * u;
      sx += o * x;
      sxu += o * x * u;
    }
    let next: AffineGrid;
    if (symmetric) {
      if (!(suu > 0)) break;
      next = { scale: sxu / suu, zero: 0 };
    } else {
      const det = n * suu - su * su;
      if (!(det > 0)) break;
      const d = (n * sxu - su * sx) / det;
      if (!(d > 0)) break;
      next = gridAt(d, (sx - d * su) / n, c);
    }
    if (!Number.isFinite(next.scale) || next.scale === 0) break;
    const loss = gridLoss(g, next, c, s, t, scratch);
    if (!(loss < best)) break;
    best = loss;
    cur = next;
  }
  return cur;
}
