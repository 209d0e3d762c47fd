/** Flag values -> numbers and choices, with one-line errors that name the flag. */
import { WeightlensError } from '../core/errors';

export function parseNumber(flag: string, v: string | undefined, opts: { integer: boolean; min?: number }): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const kind = opts.integer ? 'an integer' : 'a number';
  if (v.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) throw new WeightlensError(`--${flag} must be ${kind} (got "${v}")`);
  if (opts.min !== undefined && n < opts.min) throw new WeightlensError(`--${flag} must be ${kind} >= ${opts.min} (got "${v}")`);
  return n;
}

export function parseChoice<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new WeightlensError(`--${flag} must be one of ${allowed.join(', ')} (got "${v}")`);
  return v as T;
}
