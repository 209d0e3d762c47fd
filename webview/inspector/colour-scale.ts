/**
 * The overview grid's colour scale: the range of the values shown, widened where it is narrower
 * than a difference worth a colour. Without that, a grid whose cells all lie within a fraction of a
 * dB (a model of uniform layers, or estimates whose 99% intervals are ±0.1 dB) is painted from red
 * to green by noise, and the colours swap when the exact values replace the estimates.
 * Pure (no DOM): the unit suite tests it.
 */

/** The smallest span of a metric's colour scale: a difference in its units, or a ratio hi / lo. */
export type MinSpan = { readonly kind: 'difference'; readonly at: number } | { readonly kind: 'ratio'; readonly at: number };

/** 1 dB of SQNR: as a difference in dB, as a ratio of MSEs (10^0.1) and of amplitudes (10^0.05). */
export const ONE_DB = {
  db: { kind: 'difference', at: 1 },
  power: { kind: 'ratio', at: 10 ** 0.1 },
  amplitude: { kind: 'ratio', at: 10 ** 0.05 },
} as const satisfies Record<string, MinSpan>;

export interface ColourDomain {
  /** The scale's ends. */
  lo: number;
  hi: number;
  /** The values' own least and greatest (the legend's hover names them when the scale is wider). */
  min: number;
  max: number;
  /** True where the values' own range was narrower than the minimum span. */
  widened: boolean;
}

/**
 * The colour scale's ends for `values` (finite numbers): their minimum and maximum, widened about
 * their middle (the geometric middle for a ratio) to the metric's minimum span.
 */
export function colourDomain(values: readonly number[], minSpan?: MinSpan): ColourDomain {
  if (!values.length) return { lo: 0, hi: 1, min: 0, max: 1, widened: false };
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (minSpan?.kind === 'difference' && max - min < minSpan.at) {
    const mid = (min + max) / 2;
    return { lo: mid - minSpan.at / 2, hi: mid + minSpan.at / 2, min, max, widened: true };
  }
  // A ratio needs positive values (MSE, errors): a zero (an exact tensor) keeps the plain range.
  if (minSpan?.kind === 'ratio' && min > 0 && max / min < minSpan.at) {
    const mid = Math.sqrt(min * max);
    const half = Math.sqrt(minSpan.at);
    return { lo: mid / half, hi: mid * half, min, max, widened: true };
  }
  return { lo: min, hi: max, min, max, widened: false };
}

/** Colour of a value within [lo, hi]: red (worse) to green (better); a blue ramp where neither is better. */
export function colour(v: number, lo: number, hi: number, higherIsBetter: boolean | null): string {
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0.5;
  if (higherIsBetter === null) return `hsl(210, 60%, ${70 - 40 * t}%)`;
  const good = higherIsBetter ? t : 1 - t;
  return `hsl(${Math.round(120 * good)}, 55%, 42%)`;
}
