/**
 * EWQ's softmax entropy of a weight matrix, H = -sum p_i log(p_i + eps), p = softmax(x), computed so
 * that the digits that rank blocks survive (docs/methods.md §2, "numerical trap"): for real matrices
 * p_i ~ 1/n, every H lands near -log(eps) = 4.6052 and blocks differ in the 6th to 9th digit.
 *
 * Two streaming passes over the tensor's chunks: (1) max and sum of exp(x - max), merged across
 * chunks with the usual rescaling; (2) given the global max m and sum S, the small remainder
 *   sum p log1p(p / eps)       so that H = -log(eps) - that sum   (eps > 0)
 *   sum e (x - m)              so that H = log S - that / S        (eps = 0, plain Shannon)
 * with Neumaier-compensated float64 sums. The constant -log(eps) never enters a sum, so nothing is
 * lost to it. Each chunk's partials are small and can be computed anywhere (a worker, a GPU).
 */
import type { Floats } from '../quant/search';

/** Neumaier's compensated sum. */
export class CompensatedSum {
  sum = 0;
  private c = 0;
  add(x: number): void {
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.c += this.sum - t + x;
    else this.c += x - t + this.sum;
    this.sum = t;
  }
  get value(): number {
    return this.sum + this.c;
  }
  merge(other: CompensatedSum): void {
    this.add(other.sum);
    this.add(other.c);
  }
}

export interface MaxSumExp {
  max: number;
  /** sum of exp(x - max) */
  sumExp: number;
  count: number;
}

export function pass1(values: Floats): MaxSumExp {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  const s = new CompensatedSum();
  for (let i = 0; i < values.length; i++) s.add(Math.exp(values[i] - max));
  return { max, sumExp: s.value, count: values.length };
}

export function mergePass1(a: MaxSumExp, b: MaxSumExp): MaxSumExp {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const max = Math.max(a.max, b.max);
  return { max, sumExp: a.sumExp * Math.exp(a.max - max) + b.sumExp * Math.exp(b.max - max), count: a.count + b.count };
}

/** The pass-2 partial of one chunk, given the global max and sum of the whole tensor. */
export function pass2(values: Floats, max: number, sumExp: number, eps: number): number {
  const s = new CompensatedSum();
  if (eps > 0) {
    const inv = 1 / (sumExp * eps);
    for (let i = 0; i < values.length; i++) {
      const e = Math.exp(values[i] - max);
      const p = e / sumExp;
      s.add(p * Math.log1p(e * inv));
    }
  } else {
    for (let i = 0; i < values.length; i++) {
      const d = values[i] - max;
      s.add(Math.exp(d) * d);
    }
  }
  return s.value;
}

export function finishEntropy(p1: MaxSumExp, pass2Sum: number, eps: number): number {
  if (p1.count === 0) return 0;
  return eps > 0 ? -Math.log(eps) - pass2Sum : Math.log(p1.sumExp) - pass2Sum / p1.sumExp;
}

/** Both passes over an in-memory array (tests, small tensors). */
export function softmaxEntropy(values: Floats, eps: number): number {
  const p1 = pass1(values);
  return finishEntropy(p1, pass2(values, p1.max, p1.sumExp, eps), eps);
}
