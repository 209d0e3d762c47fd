/**
 * NaN and Inf in weights: every run refuses them with the same words, naming the row, since no
 * quantization (and no entropy) of such a tensor means anything.
 */
import { WeightlensError } from './errors';
import type { Floats } from './quant/search';

export function nonFiniteError(file: string | undefined, tensor: string, row: number, refusing: string): WeightlensError {
  return new WeightlensError(`contains NaN or Inf in row ${row}; refusing to ${refusing}`, file, tensor);
}

/** The first row (of `cols` values each) holding a NaN or an infinity, or -1. */
export function firstNonFiniteRow(values: Floats, cols: number): number {
  for (let i = 0; i < values.length; i++) {
    if (!(Math.abs(values[i]) < Infinity)) return Math.floor(i / cols); // NaN fails every comparison
  }
  return -1;
}
