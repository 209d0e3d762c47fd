/**
 * A mixed-precision plan per transformer block, its exact size, and memory-budget planning
 * (docs/methods.md §2, the paper's §3.4): if the entropy decision fits the budget, promote the
 * highest-entropy quantized blocks one step at a time while it still fits; if not, start from
 * uniform 8-bit, else uniform 4-bit, promoting likewise; if uniform 4-bit does not fit either,
 * demote the lowest-entropy blocks towards 2-bit and ternary until it fits, or say no plan fits.
 */
import { dtypeBits } from '../dtypes';
import type { Model, ModelTensor } from '../model';
import type { OutputFormat } from '../plan';
import { groupsPerRow } from '../quant/matrix';
import type { MatrixView } from '../select';
import { ladder, PRECISION_BITS, type Precision, type Variant } from './decide';

/** Bytes of one tensor at a precision, exactly as the output format stores it (scales and shape included). */
export function tensorBytesAt(t: ModelTensor, view: MatrixView | undefined, p: Precision, format: OutputFormat, groupSize: number): number {
  const bits = PRECISION_BITS[p];
  if (!view || bits === undefined || format === 'fake') return t.byteLength;
  const perWord = Math.floor(32 / bits);
  const packed = view.rows * Math.ceil(view.cols / perWord) * 4;
  const scales = view.rows * groupsPerRow(view.cols, groupSize) * (dtypeBits(t.dtype) / 8);
  return packed + scales + 16; // weight_shape: int64 [2]
}

export interface PlanBlock {
  index: number;
  execIndex: number;
  params: number;
  /** Weighted block entropy (null for a FastEWQ plan, which reads no weight). */
  entropy: number | null;
  precision: Precision;
  bytes: number;
  tensors: string[];
}

/** A block as plans are shown and saved (the CLI's JSON adds its tensors; the panel does without). */
export function blockSummary(b: PlanBlock): Omit<PlanBlock, 'tensors'> {
  return { index: b.index, execIndex: b.execIndex, params: b.params, entropy: b.entropy, precision: b.precision, bytes: b.bytes };
}

export interface Plan {
  source: 'ewq' | 'fastewq';
  model: string;
  variant: Variant;
  thresholdFactor: number;
  entropyEpsilon: number;
  mu: number | null;
  sigma: number | null;
  threshold: number | null;
  format: OutputFormat;
  groupSize: number;
  budget: number | null;
  blocks: PlanBlock[];
  /** Tensors outside blocks (embeddings, final norm, lm_head), kept as they are. */
  otherBytes: number;
  /** All tensor bytes of the model as it is. */
  rawBytes: number;
  totalBytes: number;
  fits: boolean;
}

export interface BlockInput {
  index: number;
  execIndex: number;
  params: number;
  entropy: number | null;
  tensors: string[];
}

/** Sizes of every block at every precision, computed once. */
export function blockSizer(model: Model, targets: ReadonlyMap<string, MatrixView>, format: OutputFormat, groupSize: number) {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  return (tensors: readonly string[], p: Precision) =>
    tensors.reduce((a, n) => a + tensorBytesAt(byName.get(n)!, targets.get(n), p, format, groupSize), 0);
}

/**
 * Adjusts `initial` (one precision per block) to the budget. `order` is the blocks' ranking by
 * entropy, ascending (for FastEWQ: by the classifier's confidence). Returns the precisions and fits.
 */
export function fitBudget(
  initial: readonly Precision[],
  order: readonly number[],
  size: (block: number, p: Precision) => number,
  otherBytes: number,
  variant: Variant,
  budget: number | undefined,
): { precisions: Precision[]; fits: boolean } {
  const steps = ladder(variant);
  const total = (ps: readonly Precision[]) => otherBytes + ps.reduce((a, p, i) => a + size(i, p), 0);
  if (budget === undefined) return { precisions: [...initial], fits: true };
  const promote = (ps: Precision[]) => {
    for (let changed = true; changed;) {
      changed = false;
      for (const b of [...order].reverse()) {
        const at = steps.indexOf(ps[b]);
        if (at <= 0) continue;
        const next = [...ps];
        next[b] = steps[at - 1];
        if (total(next) <= budget) {
          ps[b] = steps[at - 1];
          changed = true;
          break;
        }
      }
    }
    return ps;
  };
  let ps = [...initial];
  if (total(ps) <= budget) return { precisions: promote(ps), fits: true };
  for (const uniform of ['int8', 'int4'] as Precision[]) {
    ps = initial.map(() => uniform);
    if (total(ps) <= budget) return { precisions: promote(ps), fits: true };
  }
  // Uniform 4-bit is too big: demote the lowest-entropy blocks one step at a time.
  const last = steps.length - 1;
  while (total(ps) > budget) {
    const b = order.find((i) => steps.indexOf(ps[i]) < last);
    if (b === undefined) return { precisions: ps, fits: false };
    ps[b] = steps[steps.indexOf(ps[b]) + 1];
  }
  return { precisions: ps, fits: true };
}
