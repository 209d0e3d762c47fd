/**
 * compressed-tensors `pack-quantized` (what vLLM and transformers load), checked against the
 * compressed-tensors sources: per quantized linear `<m>.weight` -> `<m>.weight_packed` (int32
 * [out, ceil(in * b / 32)]), `<m>.weight_scale` (the weights' float dtype, [out, 1] per-channel or
 * [out, groups] per-group) and `<m>.weight_shape` (int64 [2]); `quantization_config` in config.json
 * with one config group per bit width.
 */
import { WeightlensError } from '../errors';
import { packedCols } from '../quant/pack';

export const CT_BITS = [4, 8];

export function checkCompressedTensorsBits(bits: number): void {
  if (!CT_BITS.includes(bits)) {
    throw new WeightlensError(
      `compressed-tensors pack-quantized stores 4- and 8-bit integer weights only, not ${bits}-bit; use --format fake for ${bits} bits`,
    );
  }
}

export function moduleOf(weightName: string): string {
  return weightName.slice(0, -'.weight'.length);
}

export function packedShape(rows: number, cols: number, bits: number): [number, number] {
  return [rows, packedCols(cols, bits)];
}

export interface ConfigGroup {
  bits: number;
  groupSize: number;
  /** Module names (or "Linear" for every linear layer not ignored). */
  targets: string[];
}

export function quantizationConfig(groups: readonly ConfigGroup[], ignore: readonly string[]): Record<string, unknown> {
  const configGroups: Record<string, unknown> = {};
  groups.forEach((g, i) => {
    configGroups[`group_${i}`] = {
      targets: g.targets,
      weights: {
        num_bits: g.bits,
        type: 'int',
        symmetric: true,
        strategy: g.groupSize > 0 ? 'group' : 'channel',
        group_size: g.groupSize > 0 ? g.groupSize : null,
        dynamic: false,
        actorder: null,
        block_structure: null,
        observer: 'minmax',
        observer_kwargs: {},
      },
      input_activations: null,
      output_activations: null,
    };
  });
  return {
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups: configGroups,
    ignore: [...ignore],
    kv_cache_scheme: null,
    global_compression_ratio: null,
  };
}

/** config.json for the output: the input's (when there is one) with quantization_config set. */
export function configWithQuantization(inputConfig: string | undefined, qc: Record<string, unknown>, configFile = 'config.json'): string {
  let base: Record<string, unknown> = {};
  if (inputConfig !== undefined) {
    try {
      const parsed: unknown = JSON.parse(inputConfig);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      base = parsed as Record<string, unknown>;
    } catch (e) {
      throw new WeightlensError(`is not a valid JSON object (${(e as Error).message})`, configFile);
    }
  }
  return JSON.stringify({ ...base, quantization_config: qc }, null, 2) + '\n';
}
