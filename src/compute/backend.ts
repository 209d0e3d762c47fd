/**
 * The compute backends. The CPU path (src/core/quant) is the reference; the WebGPU path runs the
 * same search in WGSL and hands back, per group, the chosen candidate — or "decide on the CPU" when
 * its f32 losses cannot separate the winner from the runner-up, so the result is always the CPU's.
 */
import type { QuantSettings } from '../core/quant/settings';

/** Per group: a candidate index (>= 0), ZERO_GROUP, or DECIDE_ON_CPU. */
export const ZERO_GROUP = -1;
export const DECIDE_ON_CPU = -2;

export interface ScaleSearchBackend {
  readonly name: 'cpu' | 'webgpu';
  /** A description for the report (the adapter, for WebGPU). */
  readonly description: string;
  /** Candidate choices per group of a [rows, cols] matrix, or undefined when this backend cannot run these settings. */
  search(values: Float32Array, rows: number, cols: number, settings: QuantSettings): Promise<Int32Array | undefined>;
  dispose(): void;
}

/**
 * Per group the kernel returns its pick, an upper bound on the pick's float64 loss and the lowest
 * lower bound among the other candidates (see shaders/dareq_search.wgsl). The pick is certain to be
 * the CPU's when the bounds separate; otherwise the group is searched on the CPU.
 */
export function choicesFromGpu(out: Float32Array, groups: number): { choices: Int32Array; ties: number } {
  const choices = new Int32Array(groups);
  let ties = 0;
  for (let g = 0; g < groups; g++) {
    const k = out[4 * g];
    if (k < 0) {
      choices[g] = ZERO_GROUP;
      continue;
    }
    const bestUpper = out[4 * g + 1];
    const othersLower = out[4 * g + 2];
    if (bestUpper < othersLower) choices[g] = k;
    else {
      choices[g] = DECIDE_ON_CPU;
      ties++;
    }
  }
  return { choices, ties };
}
