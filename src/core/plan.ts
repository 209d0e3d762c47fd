/**
 * The output plan: for every output file, the tensors it holds (names, dtypes, shapes, computed
 * before any data is read) and where each one's bytes come from. The writer streams exactly this.
 */
import { isQuantizableFloat, type QuantizableFloat } from './dtypes';
import { WeightlensError } from './errors';
import {
  checkCompressedTensorsBits,
  moduleOf,
  packedShape,
  quantizationConfig,
  zeroPointShape,
  type ConfigGroup,
} from './formats/compressed-tensors';
import { groupsPerRow } from './quant/matrix';
import { type QuantSettings } from './quant/settings';
import type { Model, ModelTensor } from './model';
import type { OutputTensorSpec } from './safetensors/layout';
import { isEmbedding, type MatrixView } from './select';

export type OutputFormat = 'fake' | 'compressed-tensors' | 'gguf';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['fake', 'compressed-tensors', 'gguf'];
/** The formats an EWQ plan sizes its blocks for (a GGUF plan is sized as compressed-tensors). */
export const PLAN_FORMATS: readonly OutputFormat[] = ['fake', 'compressed-tensors'];

export type TensorSource =
  | { kind: 'copy'; tensor: ModelTensor }
  | { kind: 'fake'; tensor: ModelTensor; view: MatrixView; settings: QuantSettings }
  | { kind: 'packed'; tensor: ModelTensor; view: MatrixView; settings: QuantSettings }
  /** The scales of the `packed` tensor written just before it. */
  | { kind: 'scale'; of: string }
  /** Its zero points (asymmetric settings), packed along the rows as compressed-tensors does. */
  | { kind: 'zero'; of: string }
  | { kind: 'shape'; shape: [number, number] };

export interface OutputTensor {
  readonly spec: OutputTensorSpec;
  readonly source: TensorSource;
}

export interface OutputFilePlan {
  /** Relative name inside the output (the same shard names as the input). */
  readonly name: string;
  readonly tensors: readonly OutputTensor[];
}

export interface OutputPlan {
  readonly format: OutputFormat;
  readonly files: readonly OutputFilePlan[];
  /** Tensors that get quantized, with the settings of each. */
  readonly quantized: ReadonlyMap<string, QuantSettings>;
  /** compressed-tensors quantization_config (undefined for fake). */
  readonly quantizationConfig?: Record<string, unknown>;
}

/**
 * @param settingsFor the settings of a target tensor (uniform runs return the same object for all;
 *   a mixed-precision plan returns per-block settings, or undefined to keep a tensor raw).
 */
export function planOutput(
  model: Model,
  targets: ReadonlyMap<string, MatrixView>,
  format: OutputFormat,
  settingsFor: (name: string) => QuantSettings | undefined,
): OutputPlan {
  const quantized = new Map<string, QuantSettings>();
  const files: OutputFilePlan[] = [];
  for (const f of model.files) {
    const tensors: OutputTensor[] = [];
    for (const t of model.tensors) {
      if (t.file !== f.name) continue;
      const view = targets.get(t.name);
      const settings = view ? settingsFor(t.name) : undefined;
      if (!view || !settings) {
        tensors.push({ spec: { name: t.name, dtype: t.dtype, shape: t.shape }, source: { kind: 'copy', tensor: t } });
        continue;
      }
      quantized.set(t.name, settings);
      if (format === 'fake') {
        tensors.push({ spec: { name: t.name, dtype: t.dtype, shape: t.shape }, source: { kind: 'fake', tensor: t, view, settings } });
        continue;
      }
      checkCompressedTensorsBits(settings.bits);
      if (t.shape.length !== 2 || !t.name.endsWith('.weight')) {
        throw new WeightlensError(
          'compressed-tensors holds only 2-D ".weight" tensors of linear layers; exclude it or use --format fake',
          model.path,
          t.name,
        );
      }
      if (!isQuantizableFloat(t.dtype)) throw new WeightlensError(`cannot quantize dtype ${t.dtype}`, model.path, t.name);
      const m = moduleOf(t.name);
      const scaleDtype: QuantizableFloat = t.dtype;
      tensors.push(
        {
          spec: { name: `${m}.weight_packed`, dtype: 'I32', shape: packedShape(view.rows, view.cols, settings.bits) },
          source: { kind: 'packed', tensor: t, view, settings },
        },
        {
          spec: { name: `${m}.weight_scale`, dtype: scaleDtype, shape: [view.rows, groupsPerRow(view.cols, settings.groupSize)] },
          source: { kind: 'scale', of: t.name },
        },
        ...(settings.symmetric
          ? []
          : [
              {
                spec: { name: `${m}.weight_zero_point`, dtype: 'I32' as const, shape: zeroPointShape(view.rows, view.cols, settings) },
                source: { kind: 'zero', of: t.name } as const,
              },
            ]),
        { spec: { name: `${m}.weight_shape`, dtype: 'I64', shape: [2] }, source: { kind: 'shape', shape: [view.rows, view.cols] } },
      );
    }
    files.push({ name: f.name, tensors });
  }
  if (quantized.size === 0) {
    // A checkpoint that is quantized already has no float matrices to select: say that, not the selection.
    const packed = model.tensors.find((t) => /\.(weight_packed|qweight)$/.test(t.name));
    throw new WeightlensError(
      packed
        ? `is quantized already (${packed.name} holds packed codes): nothing to quantize; quantize the original checkpoint, or compare the two with "Compare Weights" / weightlens compare`
        : 'no tensor matches the selection: nothing to quantize (check --include / --exclude)',
      model.path,
    );
  }
  return { format, files, quantized, quantizationConfig: format === 'compressed-tensors' ? ctConfig(model, quantized) : undefined };
}

function ctConfig(model: Model, quantized: ReadonlyMap<string, QuantSettings>): Record<string, unknown> {
  // Linear layers left in full precision go to `ignore`; embeddings are not Linear modules, but
  // lm_head is, and so is anything the user excluded.
  const ignore: string[] = [];
  for (const t of model.tensors) {
    if (quantized.has(t.name) || t.shape.length !== 2 || !t.name.endsWith('.weight') || !isQuantizableFloat(t.dtype)) continue;
    if (isEmbedding(t.name)) continue;
    ignore.push(moduleOf(t.name));
  }
  const byKey = new Map<string, ConfigGroup>();
  for (const [name, s] of quantized) {
    const key = `${s.bits}/${s.groupSize}/${s.symmetric}`;
    let g = byKey.get(key);
    if (!g) byKey.set(key, (g = { bits: s.bits, groupSize: s.groupSize, symmetric: s.symmetric, targets: [] }));
    g.targets.push(moduleOf(name));
  }
  const groups = [...byKey.values()];
  // One uniform group targets every Linear (the common, compact form); mixed precision names
  // each module of each group.
  if (groups.length === 1) groups[0].targets = ['Linear'];
  return quantizationConfig(groups, ignore);
}
