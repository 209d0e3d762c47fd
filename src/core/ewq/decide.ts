/**
 * EWQ's block decision (docs/methods.md §2): block entropy = size-weighted mean of its matrices'
 * entropies; mu and sigma (population) over blocks; T = mu - k*sigma. H < T -> low precision,
 * T <= H < mu -> middle, H >= mu -> unquantized. Variant 8-4: low 4-bit, middle 8-bit; variant 4-3
 * (the "edge" one): low 3-bit, middle 4-bit.
 */
export type Precision = 'raw' | 'int8' | 'int4' | 'int3' | 'int2' | 'ternary';
export type Variant = '8-4' | '4-3';
export const VARIANTS: readonly Variant[] = ['8-4', '4-3'];

/** Bits per stored code; ternary codes {-1, 0, 1} are stored in 2 bits. */
export const PRECISION_BITS: Record<Precision, number | undefined> = { raw: undefined, int8: 8, int4: 4, int3: 3, int2: 2, ternary: 2 };

/** From most to least precise: promotion moves left, demotion right. */
export function ladder(variant: Variant): Precision[] {
  return variant === '8-4' ? ['raw', 'int8', 'int4', 'int2', 'ternary'] : ['raw', 'int8', 'int4', 'int3', 'int2', 'ternary'];
}

export interface BlockEntropy {
  index: number;
  execIndex: number;
  params: number;
  entropy: number;
}

export interface Decision {
  mu: number;
  sigma: number;
  threshold: number;
  precisions: Precision[];
}

export function decide(blocks: readonly BlockEntropy[], thresholdFactor: number, variant: Variant): Decision {
  const n = blocks.length;
  const mu = n ? blocks.reduce((a, b) => a + b.entropy, 0) / n : 0;
  // Centered second pass: the entropies agree to 6+ digits, so sum(h^2)/n - mu^2 would cancel.
  const sigma = n ? Math.sqrt(blocks.reduce((a, b) => a + (b.entropy - mu) ** 2, 0) / n) : 0;
  const threshold = mu - thresholdFactor * sigma;
  const [low, mid]: Precision[] = variant === '8-4' ? ['int4', 'int8'] : ['int3', 'int4'];
  const precisions = blocks.map((b): Precision => (b.entropy < threshold ? low : b.entropy < mu ? mid : 'raw'));
  return { mu, sigma, threshold, precisions };
}

/** Weighted block entropy from its matrices' entropies and sizes. */
export function blockEntropy(matrices: readonly { numel: number; entropy: number }[]): number {
  const total = matrices.reduce((a, m) => a + m.numel, 0);
  return total ? matrices.reduce((a, m) => a + (m.numel / total) * m.entropy, 0) : 0;
}
