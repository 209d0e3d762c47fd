/** `quantize --plan PLAN.json`: each block's tensors at its planned precision; raw blocks copied. */
import { WeightlensError } from '../errors';
import type { QuantSettings } from '../quant/settings';
import { PRECISION_BITS, type Precision } from './decide';

export interface PlanFileBlock {
  precision: Precision;
  tensors: string[];
}

export function parsePlanFile(text: string, file: string): { blocks: PlanFileBlock[]; groupSize?: number } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightlensError(`plan is not valid JSON (${(e as Error).message})`, file);
  }
  const blocks = (json as { blocks?: unknown })?.blocks;
  if (!Array.isArray(blocks))
    throw new WeightlensError('plan has no "blocks" array (write one with: weightlens plan PATH --out PLAN.json)', file);
  const out = blocks.map((b: unknown, i) => {
    const { precision, tensors } = (b ?? {}) as { precision?: unknown; tensors?: unknown };
    if (typeof precision !== 'string' || !(precision in PRECISION_BITS))
      throw new WeightlensError(`block ${i} has an unknown precision ${JSON.stringify(precision)}`, file);
    if (!Array.isArray(tensors) || !tensors.every((t) => typeof t === 'string'))
      throw new WeightlensError(`block ${i} has no list of tensor names`, file);
    return { precision: precision as Precision, tensors: tensors as string[] };
  });
  const g = (json as { groupSize?: unknown }).groupSize;
  return { blocks: out, groupSize: typeof g === 'number' && Number.isInteger(g) && g >= 0 ? g : undefined };
}

/** Settings per tensor: the block's bit width on top of `base`; undefined (copy) for raw blocks and tensors in no block. */
export function settingsFromPlan(blocks: readonly PlanFileBlock[], base: QuantSettings): (name: string) => QuantSettings | undefined {
  const byTensor = new Map<string, QuantSettings | undefined>();
  for (const b of blocks) {
    const bits = PRECISION_BITS[b.precision];
    const s = bits === undefined ? undefined : { ...base, bits, ternary: b.precision === 'ternary' };
    for (const t of b.tensors) byTensor.set(t, s);
  }
  return (name) => byTensor.get(name);
}
