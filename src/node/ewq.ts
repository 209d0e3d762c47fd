/**
 * EWQ analysis of a model on disk and its plan: streams every weight matrix of every block twice
 * (softmax max/sum, then the entropy remainder; src/core/ewq/entropy.ts), row chunks at a time, so
 * memory stays bounded; FastEWQ plans from the header alone.
 */
import { groupBlocks } from '../core/blocks';
import { decodeFloats, isDecodableFloat } from '../core/dtypes';
import { CancelledError } from '../core/errors';
import { blockEntropy, decide, type Precision, type Variant } from '../core/ewq/decide';
import { firstNonFiniteRow, nonFiniteError } from '../core/finite';
import { finishEntropy, mergePass1, pass1, pass2, CompensatedSum, type MaxSumExp } from '../core/ewq/entropy';
import { loadForest, predict, type FastEwqModel } from '../core/ewq/fast';
import { blockSizer, fitBudget, type Plan } from '../core/ewq/plan';
import { readRows, type ModelTensor } from '../core/model';
import type { OutputFormat } from '../core/plan';
import { selectTargets } from '../core/select';
import type { OpenModel } from './open-model';
import { CHUNK_WEIGHTS } from './stream-tensor';

export interface PlanOptions {
  variant: Variant;
  thresholdFactor: number;
  entropyEpsilon: number;
  format: OutputFormat;
  groupSize: number;
  budget?: number;
  /** FastEWQ: decide from the header with this classifier instead of reading the weights. */
  fast?: FastEwqModel;
  signal?: AbortSignal;
  onProgress?: (fraction: number, tensor: string) => void;
  /** Computes the entropy partials of f32 chunks elsewhere (the WebGPU runner); merged here in float64. */
  entropyBackend?: EntropyBackend;
}

export interface EntropyBackend {
  readonly description: string;
  pass1(values: Float32Array): Promise<MaxSumExp>;
  pass2(values: Float32Array, max: number, sumExp: number, eps: number): Promise<number>;
}

/** The matrices whose entropy EWQ weighs: 2-D float tensors inside a block (linear and embedding weights). */
export function ewqMatrices(tensors: readonly ModelTensor[]): ModelTensor[] {
  return tensors.filter((t) => t.shape.length === 2 && isDecodableFloat(t.dtype) && t.numel > 0);
}

const tick = () => new Promise<void>((r) => setImmediate(r));

export async function tensorEntropy(
  opened: OpenModel,
  t: ModelTensor,
  eps: number,
  signal?: AbortSignal,
  onChunk?: (bytes: number) => void,
  gpu?: EntropyBackend,
): Promise<number> {
  if (!isDecodableFloat(t.dtype)) throw new Error(`internal: ${t.name} is not a float tensor`);
  const dtype = t.dtype;
  const rows = t.shape[0];
  const cols = t.numel / rows;
  const step = Math.max(1, Math.floor(CHUNK_WEIGHTS / cols));
  const src = opened.source(t.file);
  const chunks = async (fn: (values: Float32Array | Float64Array) => void | Promise<void>) => {
    for (let r = 0; r < rows; r += step) {
      if (signal?.aborted) throw new CancelledError('analysis cancelled');
      const raw = await readRows(src, t, r, Math.min(step, rows - r));
      const values = decodeFloats(dtype, raw);
      // As quantize does: an entropy over NaN is NaN, and every block would silently stay raw.
      const bad = firstNonFiniteRow(values, cols);
      if (bad >= 0) throw nonFiniteError(opened.model.files.length > 1 ? t.file : opened.model.path, t.name, r + bad, 'plan it');
      await fn(values);
      onChunk?.(raw.byteLength);
      await tick();
    }
  };
  // F64 weights stay on the CPU: the GPU path is f32.
  const onGpu = gpu && dtype !== 'F64' ? gpu : undefined;
  let p1: MaxSumExp = { max: -Infinity, sumExp: 0, count: 0 };
  await chunks(async (v) => {
    p1 = mergePass1(p1, onGpu ? await onGpu.pass1(v as Float32Array) : pass1(v));
  });
  const rest = new CompensatedSum();
  await chunks(async (v) =>
    rest.add(onGpu ? await onGpu.pass2(v as Float32Array, p1.max, p1.sumExp, eps) : pass2(v, p1.max, p1.sumExp, eps)),
  );
  return finishEntropy(p1, rest.value, eps);
}

export async function planModel(opened: OpenModel, o: PlanOptions): Promise<Plan> {
  const model = opened.model;
  const { blocks, other } = groupBlocks(model.tensors);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const targets = selectTargets(model.tensors);
  const sizer = blockSizer(model, targets, o.format, o.groupSize);
  const otherBytes = other.reduce((a, n) => a + byName.get(n)!.byteLength, 0);
  const rawBytes = model.tensors.reduce((a, t) => a + t.byteLength, 0);

  let entropies: (number | null)[];
  let initial: Precision[];
  let order: number[];
  let stats: { mu: number | null; sigma: number | null; threshold: number | null };
  if (o.fast) {
    const rf = loadForest(o.fast);
    initial = predict(
      rf,
      blocks.map((b) => ({ numBlocks: blocks.length, execIndex: b.execIndex, params: b.params })),
    );
    entropies = blocks.map(() => null);
    // Without entropies, budget steps go by the forest's decision, then by depth (later blocks kept).
    const rank = (p: Precision) => ['int4', 'int3', 'int8', 'raw'].indexOf(p);
    order = blocks.map((_, i) => i).sort((a, b) => rank(initial[a]) - rank(initial[b]) || a - b);
    stats = { mu: null, sigma: null, threshold: null };
  } else {
    const matrices = blocks.map((b) => ewqMatrices(b.tensors.map((n) => byName.get(n)!)));
    const total = matrices.flat().reduce((a, t) => a + 2 * t.byteLength, 0);
    let done = 0;
    entropies = [];
    for (const ms of matrices) {
      const hs: { numel: number; entropy: number }[] = [];
      for (const t of ms) {
        const h = await tensorEntropy(
          opened,
          t,
          o.entropyEpsilon,
          o.signal,
          (b) => {
            done += b;
            o.onProgress?.(total ? done / total : 1, t.name);
          },
          o.entropyBackend,
        );
        hs.push({ numel: t.numel, entropy: h });
      }
      entropies.push(blockEntropy(hs));
    }
    const d = decide(
      blocks.map((b, i) => ({ index: b.index, execIndex: b.execIndex, params: b.params, entropy: entropies[i]! })),
      o.thresholdFactor,
      o.variant,
    );
    initial = d.precisions;
    order = blocks.map((_, i) => i).sort((a, b) => entropies[a]! - entropies[b]! || a - b);
    stats = { mu: d.mu, sigma: d.sigma, threshold: d.threshold };
  }
  const { precisions, fits } = fitBudget(initial, order, (i, p) => sizer(blocks[i].tensors, p), otherBytes, o.variant, o.budget);
  const planBlocks = blocks.map((b, i) => ({
    index: b.index,
    execIndex: b.execIndex,
    params: b.params,
    entropy: entropies[i],
    precision: precisions[i],
    bytes: sizer(b.tensors, precisions[i]),
    tensors: [...b.tensors],
  }));
  return {
    source: o.fast ? 'fastewq' : 'ewq',
    model: model.path,
    variant: o.variant,
    thresholdFactor: o.thresholdFactor,
    entropyEpsilon: o.entropyEpsilon,
    ...stats,
    format: o.format,
    groupSize: o.groupSize,
    budget: o.budget ?? null,
    blocks: planBlocks,
    otherBytes,
    rawBytes,
    totalBytes: otherBytes + planBlocks.reduce((a, b) => a + b.bytes, 0),
    fits,
  };
}
