/**
 * compressed-tensors `pack-quantized` (what vLLM and transformers load), checked against the
 * compressed-tensors sources: per quantized linear `<m>.weight` -> `<m>.weight_packed` (int32
 * [out, ceil(in * b / 32)]), `<m>.weight_scale` (the weights' float dtype, [out, 1] per-channel or
 * [out, groups] per-group) and `<m>.weight_shape` (int64 [2]); `quantization_config` in config.json
 * with one config group per bit width. Asymmetric groups (`symmetric: false`) add
 * `<m>.weight_zero_point`: one integer zp per group (value = scale * (q - zp)), stored unsigned as
 * zp + 2^(b-1) and packed 32/b per int32 along the rows (`pack_to_int32(zero_point, packed_dim=0)`),
 * shape [ceil(out * b / 32), groups].
 */
import { WeightlensError } from '../errors';
import { groupsPerRow } from '../quant/matrix';
import { packedCols } from '../quant/pack';
import type { QuantSettings } from '../quant/settings';

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

export function zeroPointShape(rows: number, cols: number, s: Pick<QuantSettings, 'bits' | 'groupSize'>): [number, number] {
  return [packedCols(rows, s.bits), groupsPerRow(cols, s.groupSize)];
}

/** Zero points [rows][groups] (integers in [qmin, qmax]) packed along the rows: word (p, g) holds rows p*32/b ... */
export function packZeroPoints(zeros: ArrayLike<number>, rows: number, groups: number, bits: number): Int32Array {
  const per = 32 / bits;
  const offset = 1 << (bits - 1);
  const out = new Int32Array(packedCols(rows, bits) * groups);
  for (let r = 0; r < rows; r++) {
    const word = ((r / per) | 0) * groups;
    const shift = bits * (r % per);
    for (let g = 0; g < groups; g++) out[word + g] |= (zeros[r * groups + g] + offset) << shift;
  }
  return out;
}

/** The inverse of packZeroPoints. */
export function unpackZeroPoints(packed: Int32Array, rows: number, groups: number, bits: number): Int32Array {
  const per = 32 / bits;
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  const out = new Int32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    const word = ((r / per) | 0) * groups;
    const shift = bits * (r % per);
    for (let g = 0; g < groups; g++) out[r * groups + g] = ((packed[word + g] >>> shift) & mask) - offset;
  }
  return out;
}

export interface ConfigGroup {
  bits: number;
  groupSize: number;
  /** false: each group has a zero point (`weight_zero_point`). */
  symmetric: boolean;
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
        symmetric: g.symmetric,
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
