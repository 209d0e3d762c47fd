/**
 * The L2-only search (λH = 0) from one sweep over the grid instead of K passes over the group.
 *
 * With the codes q_i fixed, L2(sc) = sum w_i (x_i - q_i sc)^2 = Sxx - 2 sc A + sc^2 B with
 * A = sum w_i q_i x_i and B = sum w_i q_i^2. A weight's code changes only a few times across the
 * K candidates (the scale grows, so its code moves towards 0 one level at a time: about two steps
 * per weight over the clip range), so A and B are known for every candidate from those changes —
 * found with the same division, rounding and clamp as the direct loop — plus a prefix sum over the
 * grid. Per group that is ~n * (2 + 2 * changes) divisions instead of ~K * n.
 *
 * The closed form cancels, so it is not the direct loop's number: each candidate carries a
 * certified bound D_k on |closed form - direct sum| (both against the exact real sum, standard
 * floating-point summation bounds, a factor 2 to spare). Every candidate whose interval reaches
 * the smallest upper bound is then rescored with the direct loop, in grid order: the choice is the
 * direct search's bit for bit (the exhaustive-equality tests hold it), and usually 1-2 candidates
 * are rescored. Where the changes are many (8 bits: up to 64 levels per weight) the direct loop is
 * cheaper and the caller keeps it.
 */
import type { Floats } from './search';

/** 2^-53: the unit roundoff of f64. */
const U = 2 ** -53;

export interface SweepScratch {
  /** The signed candidate scales, exactly as the direct loop divides by them. */
  scs: Float64Array;
  /** A and B's changes at each candidate. */
  dA: Float64Array;
  dB: Float64Array;
  /** Each candidate's closed-form L2 and its bound. */
  f: Float64Array;
  d: Float64Array;
  /** The least upper bound, min over k of f + d: no candidate's direct sum is above it. */
  upper: number;
}

/** 1 / (m - 1/2) for code magnitudes m = 1 .. 128: where a weight's code leaves level m. */
const INV_EDGE = Float64Array.from({ length: 129 }, (_, m) => (m > 0 ? 1 / (m - 0.5) : 0));

export function makeSweepScratch(grid: number): SweepScratch {
  return {
    scs: new Float64Array(grid),
    dA: new Float64Array(grid),
    dB: new Float64Array(grid),
    f: new Float64Array(grid),
    d: new Float64Array(grid),
    upper: Infinity,
  };
}

/** The group, its grid and the direct loop's arithmetic: the sweep reproduces it. */
export interface SweepInput {
  readonly w: Floats;
  readonly off: number;
  readonly n: number;
  readonly round: (y: number) => number;
  readonly qmin: number;
  readonly qmax: number;
  /** Signed scales in scs[0 .. grid), |scs| non-decreasing (candidateAt's linspace). */
  readonly grid: number;
  /** lo and the linspace step of the unsigned scales: where a code's change is looked for first. */
  readonly lo: number;
  readonly step: number;
  /** Magnitude weighting's per-weight error weights, or none (all 1). */
  readonly omega?: Float64Array;
}

/** The direct loop's code of x at scale sc: a division, the rounding, the clamp. */
function codeAt(x: number, sc: number, round: (y: number) => number, qmin: number, qmax: number): number {
  const q = round(x / sc);
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/**
 * The same code from a product with inv = 1/sc, which differs from the quotient by a few ulps: the
 * result is the division's wherever y is not within 1e-9 of a rounding boundary (a half-integer,
 * where both roundings agree off the tie), and the division decides the rest. Module-level, like
 * codeAt: as closures made per call (one per group) V8 optimized the loop around them well in some
 * runs and not in others — one build ran 9.7 or 13.3 M weights/s run to run on a 512 x 4096
 * matrix, and 15.1-15.6 M in eight runs once these were plain functions.
 */
function quickCode(x: number, inv: number, sc: number, round: (y: number) => number, qmin: number, qmax: number): number {
  const y = x * inv;
  const f = y - Math.floor(y);
  if (Math.abs(f - 0.5) < 1e-9 * (1 + Math.abs(y))) return codeAt(x, sc, round, qmin, qmax);
  const q = Math.floor(y + 0.5);
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/**
 * Fills sw.f (closed-form L2 sums of squares), sw.d (their bounds) and sw.upper for every candidate; returns
 * false, having filled nothing useful, when the code changes are too many for the sweep to pay
 * (`budget`: the most changes worth walking).
 */
export function sweepL2(inp: SweepInput, sw: SweepScratch, budget: number): boolean {
  const { w, off, n, round, qmin, qmax, grid: K, lo, step, omega } = inp;
  const scs = sw.scs;
  const first = scs[0];
  const last = scs[K - 1];
  // A weight's code moves by about |x| (1/lo - 1/hi) levels over the grid: past the budget, decline
  // before any division.
  let sumAbs = 0;
  for (let i = 0; i < n; i++) sumAbs += Math.abs(w[off + i]);
  if (step > 0 && sumAbs * (1 / lo - 1 / (lo + (K - 1) * step)) > budget) return false;
  const dA = sw.dA;
  const dB = sw.dB;
  dA.fill(0, 0, K);
  dB.fill(0, 0, K);
  const inv0 = 1 / first;
  const invK = 1 / last;
  const invStep = step > 0 ? 1 / step : 0;
  let changes = 0;
  let sxx = 0;
  let a0 = 0;
  let b0 = 0;
  // E = sum w |c0 x| bounds every |A| summand (codes only shrink towards 0): the bound's envelope.
  let env = 0;
  for (let i = 0; i < n; i++) {
    const x = w[off + i];
    const om = omega ? omega[i] : 1;
    sxx += om * x * x;
    let cur = quickCode(x, inv0, first, round, qmin, qmax);
    const cK = quickCode(x, invK, last, round, qmin, qmax);
    a0 += om * cur * x;
    b0 += om * cur * cur;
    env += om * Math.abs(cur * x);
    // |c0 - cK| changes at most: past the budget the direct loop is cheaper.
    changes += cur > cK ? cur - cK : cK - cur;
    if (changes > budget) return false;
    const ax = Math.abs(x);
    // The first candidate whose code is past `cur`: every one from kPrev on is at `cur` or past it.
    let kPrev = 0;
    while (cur !== cK) {
      // |x / sc| shrinks as k grows, so the code moves one level towards 0 where |x| / s crosses
      // |cur| - 1/2: at s = |x| / (|cur| - 1/2), grid position t. Where t is not within 1e-7 of an
      // integer (the grid's and the division's roundings move it by ~1e-13) the step is at
      // ceil(t) exactly; elsewhere, and at the grid's ends, the direct loop's code decides.
      const t = (ax * INV_EDGE[cur > 0 ? cur : -cur] - lo) * invStep;
      let k = Math.ceil(t);
      if (k - t > 1e-7 && k - t < 1 - 1e-7 && k >= kPrev && k >= 1 && k <= K - 2) {
        const v = cur > 0 ? cur - 1 : cur + 1;
        dA[k] += om * (v - cur) * x;
        dB[k] += om * (v * v - cur * cur);
        cur = v;
        kPrev = k;
        continue;
      }
      if (!(k > kPrev)) k = kPrev;
      else if (k > K - 1) k = K - 1;
      while (k > kPrev && codeAt(x, scs[k - 1], round, qmin, qmax) !== cur) k--;
      let v = codeAt(x, scs[k], round, qmin, qmax);
      while (v === cur) v = codeAt(x, scs[++k], round, qmin, qmax);
      dA[k] += om * (v - cur) * x;
      dB[k] += om * (v * v - cur * cur);
      cur = v;
      kPrev = k;
    }
  }
  // D_k bounds |closed form - exact| + |direct loop - exact|: every sum here has at most
  // n + changes + K terms, the direct loop n, each step one rounding (a factor 2 to spare).
  const gamma = 8 * (n + changes + K + 16) * U;
  const f = sw.f;
  const d = sw.d;
  let a = a0;
  let b = b0;
  let upper = Infinity;
  for (let k = 0; k < K; k++) {
    a += dA[k];
    b += dB[k];
    const sc = scs[k];
    const m = Math.abs(sc);
    const fk = sxx - 2 * sc * a + sc * sc * b;
    const dk = gamma * (sxx + 2 * m * env + m * m * b0);
    f[k] = fk;
    d[k] = dk;
    if (fk + dk < upper) upper = fk + dk;
  }
  sw.upper = upper;
  return true;
}
