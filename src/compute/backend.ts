/**
 * The compute backends. The CPU path (src/core/quant) is the reference; the WebGPU path runs the
 * same search in WGSL and hands back, per group, the chosen candidate — or, when its f32 losses
 * cannot separate the winner from the others, the few candidates that can still win, which the CPU
 * scores in float64. So the result is always the CPU's, and the CPU does a small share of the work.
 */
import type { GroupChoices } from '../core/quant/matrix';
import type { QuantSettings } from '../core/quant/settings';

/** The kernels' workgroup histogram holds this many bins (shaders/*.wgsl: MAX_BINS). */
export const GPU_MAX_BINS = 4096;

/** Whether the WebGPU kernels run these settings on weights of this dtype (f32 math: not F64). */
export function gpuRuns(s: QuantSettings, dtype: string): boolean {
  return (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') && s.bins <= GPU_MAX_BINS && gpuGrid(s);
}

/**
 * The kernels search and apply symmetric grids (sign-aware scales included) with uniform error
 * weights: zero points, least-squares refinement and magnitude weighting run on the CPU (README).
 */
export function gpuGrid(s: QuantSettings): boolean {
  return s.symmetric && s.refine === 0 && s.weighting === 'uniform';
}

/**
 * Whether the WebGPU search ranks the candidates: DARE-Q's exhaustive search only. The opt-in
 * coarse-to-fine search exists to make the CPU fast; it stays on the CPU so that its (approximate)
 * choices do not depend on the backend.
 */
export function gpuSearches(s: QuantSettings): boolean {
  return s.method === 'dareq' && s.search === 'exhaustive' && s.symmetric && s.weighting === 'uniform';
}

/** Per group: a candidate index (>= 0), ZERO_GROUP, or DECIDE_ON_CPU. */
export const ZERO_GROUP = -1;
export const DECIDE_ON_CPU = -2;

/** The WebGPU search's answer: its choices (ZERO_GROUP, DECIDE_ON_CPU or a candidate per group), and counts. */
export interface SearchChoices extends GroupChoices {
  /** Groups left to the CPU, and the candidates it must score for them (of groups * K in all). */
  readonly undecided: number;
  readonly rescored: number;
}

export interface ScaleSearchBackend {
  readonly name: 'cpu' | 'webgpu';
  /** A description for the report (the adapter, for WebGPU). */
  readonly description: string;
  /** Candidate choices per group of a [rows, cols] matrix, or undefined when this backend cannot run these settings. */
  search(values: Float32Array, rows: number, cols: number, settings: QuantSettings): Promise<SearchChoices | undefined>;
  dispose(): void;
}

/**
 * Per group the kernel returns its pick, an upper bound on the pick's float64 loss and the lowest
 * lower bound among the other candidates (see shaders/dareq_search.wgsl). The pick is certain to be
 * the CPU's when the bounds separate; otherwise `mask` (ceil(K / 32) words per group) names the
 * candidates whose lower bound is below the pick's upper bound: the CPU scores only those.
 */
export function choicesFromGpu(out: Float32Array, mask: Uint32Array, groups: number, grid: number): SearchChoices {
  const choices = new Int32Array(groups);
  const contenderStart = new Int32Array(groups + 1);
  const list: number[] = [];
  const words = Math.ceil(grid / 32);
  let undecided = 0;
  let rescored = 0;
  for (let g = 0; g < groups; g++) {
    contenderStart[g] = list.length;
    const k = out[4 * g];
    if (k < 0) {
      choices[g] = ZERO_GROUP;
      continue;
    }
    const bestUpper = out[4 * g + 1];
    const othersLower = out[4 * g + 2];
    if (bestUpper < othersLower) {
      choices[g] = k;
      continue;
    }
    choices[g] = DECIDE_ON_CPU;
    undecided++;
    const before = list.length;
    for (let w = 0; w < words; w++) {
      let bits = mask[g * words + w];
      while (bits) {
        const b = 31 - Math.clz32(bits & -bits);
        list.push(w * 32 + b);
        bits &= bits - 1;
      }
    }
    const n = list.length - before;
    // All K (or a mask the kernel did not write): the plain full search.
    if (n === 0 || n >= grid) list.length = before;
    rescored += n === 0 || n >= grid ? grid : n;
  }
  contenderStart[groups] = list.length;
  return { choices, contenderStart, contenders: Int32Array.from(list), undecided, rescored };
}

/** Joins the results of consecutive row blocks. */
export function concatChoices(parts: SearchChoices[]): SearchChoices {
  if (parts.length === 1) return parts[0];
  const groups = parts.reduce((a, p) => a + p.choices.length, 0);
  const choices = new Int32Array(groups);
  const contenderStart = new Int32Array(groups + 1);
  const contenders = new Int32Array(parts.reduce((a, p) => a + p.contenders.length, 0));
  let g0 = 0;
  let c0 = 0;
  for (const p of parts) {
    choices.set(p.choices, g0);
    for (let g = 0; g < p.choices.length; g++) contenderStart[g0 + g] = p.contenderStart[g] + c0;
    contenders.set(p.contenders, c0);
    g0 += p.choices.length;
    c0 += p.contenders.length;
  }
  contenderStart[groups] = c0;
  return {
    choices,
    contenderStart,
    contenders,
    undecided: parts.reduce((a, p) => a + p.undecided, 0),
    rescored: parts.reduce((a, p) => a + p.rescored, 0),
  };
}

/** Groups [g0, g1) of `c` with their contender ranges rebased to 0: one CPU worker's share. */
export function sliceChoices(c: SearchChoices, g0: number, g1: number): SearchChoices {
  const base = c.contenderStart[g0];
  const contenderStart = new Int32Array(g1 - g0 + 1);
  let undecided = 0;
  for (let g = g0; g <= g1; g++) contenderStart[g - g0] = c.contenderStart[g] - base;
  for (let g = g0; g < g1; g++) if (c.choices[g] === DECIDE_ON_CPU) undecided++;
  return {
    choices: c.choices.slice(g0, g1),
    contenderStart,
    contenders: c.contenders.slice(base, c.contenderStart[g1]),
    undecided,
    rescored: c.contenderStart[g1] - base,
  };
}

/**
 * Checks choices that crossed a trust boundary (the webview answering the quantize command) against
 * the request: the right number of groups, indices within the K candidates, contender ranges in
 * order and ascending. Returns a one-line problem, or undefined when they are well formed.
 */
export function checkChoices(c: SearchChoices, groups: number, grid: number): string | undefined {
  if (c.choices.length !== groups) return `${c.choices.length} choices for ${groups} groups`;
  if (c.contenderStart.length !== groups + 1 || c.contenderStart[0] !== 0 || c.contenderStart[groups] !== c.contenders.length)
    return 'malformed contender ranges';
  for (let g = 0; g < groups; g++) {
    const k = c.choices[g];
    if (!(k >= DECIDE_ON_CPU && k < grid)) return `group ${g}: candidate ${k} is outside 0..${grid - 1}`;
    const a = c.contenderStart[g];
    const b = c.contenderStart[g + 1];
    if (b < a) return 'malformed contender ranges';
    if (b > a && k !== DECIDE_ON_CPU) return `group ${g}: contenders for a decided group`;
    for (let i = a; i < b; i++) {
      const x = c.contenders[i];
      if (!(x >= 0 && x < grid) || (i > a && x <= c.contenders[i - 1])) return `group ${g}: contenders not ascending within 0..${grid - 1}`;
    }
  }
  return undefined;
}
