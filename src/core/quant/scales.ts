/**
 * Scales of a block of groups from each group's absmax and (for DARE-Q) the candidate choices of
 * the WebGPU search — the GPU path's share of quantizeMatrix, done in float64 exactly as the CPU
 * does it, so the GPU kernels that follow get the very scales the CPU would use.
 */
import type { QuantizableFloat } from '../dtypes';
import { groupsPerRow, storedScale } from './matrix';
import { candidateAt, candidateRange, makeScratch, searchScale, type Floats } from './search';
import { qRange, type QuantSettings } from './settings';

/** The search's verdict per group (see SearchChoices in src/compute/backend.ts). */
export interface GroupChoices {
  readonly choices: Int32Array;
  readonly contenderStart: Int32Array;
  readonly contenders: Int32Array;
}

/** Stored (dtype-rounded) scales per group; `absmax` per group must be exact (a max is, in f32). */
export function scalesFromChoices(values: Floats, rows: number, cols: number, s: QuantSettings, dtype: QuantizableFloat, absmax: ArrayLike<number>, found?: GroupChoices): Float64Array {
  const { qmax } = qRange(s.bits, s.ternary);
  const gpr = groupsPerRow(cols, s.groupSize);
  const g = s.groupSize > 0 ? Math.min(s.groupSize, cols) : cols;
  const scales = new Float64Array(rows * gpr);
  let scratch: ReturnType<typeof makeScratch> | undefined;
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < gpr; gi++) {
      const at = r * gpr + gi;
      const a = absmax[at];
      if (a === 0) {
        scales[at] = 1;
        continue;
      }
      let chosen: number;
      const k = found ? found.choices[at] : -1;
      if (s.method === 'rtn') chosen = a / qmax;
      else if (k >= 0) {
        const [lo, hi] = candidateRange(a, s);
        chosen = candidateAt(k, s.grid, lo, hi);
      } else {
        // Left to the CPU: mean(w^2) in float64 over the group, as quantizeMatrix computes it.
        const off = r * cols + gi * g;
        const n = Math.min(g, cols - gi * g);
        let sq = 0;
        for (let i = 0; i < n; i++) sq += values[off + i] * values[off + i];
        const start = found ? found.contenderStart[at] : 0;
        const end = found ? found.contenderStart[at + 1] : 0;
        scratch ??= makeScratch(g, s.bins);
        chosen = searchScale(values, off, n, a, sq / n, s, scratch, undefined, end > start ? { list: found!.contenders, start, end } : undefined).scale;
      }
      scales[at] = storedScale(dtype, chosen);
    }
  }
  return scales;
}
