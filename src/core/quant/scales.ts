/**
 * Scales of a block of groups from each group's absmax and (for DARE-Q) the candidate choices of
 * the WebGPU search — the GPU path's share of quantizeMatrix, done with the same chooseScale in
 * float64, so the GPU kernels that follow get the very scales the CPU would use.
 */
import type { QuantizableFloat } from '../dtypes';
import { chooseScale, codeMagnitude, groupLength, groupsPerRow, storedScale, type GroupChoices } from './matrix';
import { makeScratch, type Floats } from './search';
import type { QuantSettings } from './settings';

/** Stored (dtype-rounded) scales per group; `absmax` per group must be exact (a max is, in f32). */
export function scalesFromChoices(
  values: Floats,
  rows: number,
  cols: number,
  s: QuantSettings,
  dtype: QuantizableFloat,
  absmax: ArrayLike<number>,
  found?: GroupChoices,
): Float64Array {
  const gpr = groupsPerRow(cols, s.groupSize);
  const g = groupLength(s.groupSize, cols);
  const scales = new Float64Array(rows * gpr);
  const scratch = makeScratch(g, s.bins);
  const qAbs = codeMagnitude(s);
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < gpr; gi++) {
      const at = r * gpr + gi;
      const a = absmax[at];
      const n = Math.min(g, cols - gi * g);
      scales[at] =
        a === 0
          ? 1
          : storedScale(dtype, chooseScale({ w: values, off: r * cols + gi * g, n, absmax: a }, s, scratch, found && { found, at }), qAbs);
    }
  }
  return scales;
}
