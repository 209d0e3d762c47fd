/**
 * Llama-family checkpoints as llama.cpp's GGUF: the architecture's metadata from config.json, the
 * tensor names, the type of each tensor, and the q/k row order. Follows llama.cpp's
 * `convert_hf_to_gguf.py` (LlamaModel, Qwen2Model) and `src/llama-quant.cpp` (which tensors keep
 * more bits).
 */
import { WeightlensError } from '../errors';
import type { Model, ModelTensor } from '../model';
import type { QuantSettings } from '../quant/settings';
import { isQuantizableFloat } from '../dtypes';
import { GgmlType, gv, LlamaFileType, type GgufTensorInfo, type GgufValue } from './gguf';
import { QK_K } from './q4k';
import type { Vocab } from './vocab';

/** The config.json fields the conversion reads. */
export interface HfConfig {
  model_type?: string;
  architectures?: string[];
  hidden_size?: number;
  intermediate_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  num_key_value_heads?: number;
  max_position_embeddings?: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  /** llama2.c exports: q/k rows already in llama.cpp's interleaved order. */
  rope_style?: string;
  tie_word_embeddings?: boolean;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  vocab_size?: number;
  head_dim?: number;
}

/** model_type -> llama.cpp architecture; whether q/k rows need llama.cpp's permutation. */
const ARCHITECTURES: Record<string, { arch: 'llama' | 'qwen2'; rotateHalf: boolean }> = {
  llama: { arch: 'llama', rotateHalf: true },
  mistral: { arch: 'llama', rotateHalf: true },
  qwen2: { arch: 'qwen2', rotateHalf: false }, // llama.cpp runs Qwen2 with NEOX RoPE: rows as they are
};
export const GGUF_MODEL_TYPES = Object.keys(ARCHITECTURES);

export interface GgufArchitecture {
  readonly arch: 'llama' | 'qwen2';
  /** Heads of q and of k (for the row permutation), or undefined when rows stay as stored. */
  readonly permute?: { q: number; k: number };
  readonly config: Required<Pick<HfConfig, 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads'>> & HfConfig;
  readonly tied: boolean;
}

export function ggufArchitecture(config: HfConfig, model: Model, configFile: string): GgufArchitecture {
  const type = config.model_type ?? '';
  const a = ARCHITECTURES[type];
  if (!a)
    throw new WeightlensError(
      `model_type "${type}" cannot be written as GGUF yet (supported: ${GGUF_MODEL_TYPES.join(', ')}: Llama 1/2/3, Mistral, Qwen2, SmolLM)`,
      configFile,
    );
  for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads'] as const) {
    if (!Number.isInteger(config[k]) || (config[k] as number) <= 0)
      throw new WeightlensError(`"${k}" is missing or not a positive integer`, configFile);
  }
  const heads = config.num_attention_heads!;
  const kv = config.num_key_value_heads ?? heads;
  const hasOutput = model.tensors.some((t) => t.name === 'lm_head.weight');
  const interleaved = config.rope_style === 'interleaved';
  return {
    arch: a.arch,
    permute: a.rotateHalf && !interleaved ? { q: heads, k: kv } : undefined,
    config: config as GgufArchitecture['config'],
    tied: !hasOutput,
  };
}

const LAYER_NAMES: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

const TOP_NAMES: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** GGUF's name for an HF tensor; undefined for tensors llama.cpp does not load (rotary caches). */
export function ggufTensorName(hf: string): string | undefined {
  if (hf in TOP_NAMES) return TOP_NAMES[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m) {
    if (m[2].endsWith('rotary_emb.inv_freq')) return undefined;
    const n = LAYER_NAMES[m[2]];
    if (n) return `blk.${m[1]}.${n}`;
  }
  return undefined;
}

const invert = (names: Record<string, string>) => Object.fromEntries(Object.entries(names).map(([hf, gg]) => [gg, hf]));
const HF_TOP = invert(TOP_NAMES);
const HF_LAYER = invert(LAYER_NAMES);

/** The HF name of a GGUF tensor (the inverse of ggufTensorName, from the same tables). */
export function hfTensorName(gguf: string): string | undefined {
  if (gguf in HF_TOP) return HF_TOP[gguf];
  const m = /^blk\.(\d+)\.(.+)$/.exec(gguf);
  const rest = m ? HF_LAYER[m[2]] : undefined;
  return rest ? `model.layers.${m![1]}.${rest}` : undefined;
}

/** What a tensor is in the GGUF: its info, and how its bytes are made from the source. */
export interface GgufTensorPlan {
  readonly info: GgufTensorInfo;
  readonly tensor: ModelTensor;
  /** Quantized with these settings (Q4_0 / Q4_1 / Q8_0), or converted to info.type as is. */
  readonly settings?: QuantSettings;
  /** Heads whose rows to permute from HF's rotate-half order to llama.cpp's (q and k only). */
  readonly permuteHeads?: number;
  /** Why the type differs from the run's main type, for the report. */
  readonly note?: string;
}

/** The base type of a run: quantized bits, or a plain float conversion. */
export type GgufTarget = { kind: 'quant'; bits: 4 | 8; asymmetric?: boolean } | { kind: 'float'; type: GgmlType.F32 | GgmlType.F16 };

/** The block type of quantized weights: Q4_0 / Q8_0 (d * q), or with a zero point Q4_1 (d * q + m). */
export function typeForBits(bits: number, symmetric = true): GgmlType.Q4_0 | GgmlType.Q4_1 | GgmlType.Q8_0 {
  if (bits === 4) return symmetric ? GgmlType.Q4_0 : GgmlType.Q4_1;
  if (bits === 8 && symmetric) return GgmlType.Q8_0;
  if (bits === 8)
    throw new WeightlensError('GGUF output stores 8-bit weights as Q8_0, which has no zero point: drop --asymmetric for 8 bits');
  throw new WeightlensError(`GGUF output stores 4-bit (Q4_0, Q4_1) or 8-bit (Q8_0) weights, or 16/32 for F16/F32 (got --bits ${bits})`);
}

/**
 * The type of every tensor, as llama.cpp's quantizer chooses for the same file type: norms and
 * biases F32; rows that are not whole blocks of 32 F16 (its fallback); the output matrix (or the
 * tied embedding, which llama.cpp uses as the output) in 8 bits — llama.cpp would take Q6_K where
 * rows are multiples of 256, and Q8_0 otherwise; Weightlens writes Q8_0 — and everything else in
 * the run's type. `settingsFor` gives a tensor's quantization (undefined: keep it F16, as an EWQ
 * plan's raw blocks are).
 */
export function planGgufTensors(
  model: Model,
  arch: GgufArchitecture,
  target: GgufTarget,
  settingsFor: (t: ModelTensor, bits: number) => QuantSettings | undefined,
): GgufTensorPlan[] {
  const out: GgufTensorPlan[] = [];
  for (const t of model.tensors) {
    const name = ggufTensorName(t.name);
    if (name === undefined) {
      if (/rotary_emb\.inv_freq$/.test(t.name)) continue;
      throw new WeightlensError(
        `has no GGUF name for the ${arch.arch} architecture; GGUF output supports Llama-family checkpoints with HF tensor names`,
        model.path,
        t.name,
      );
    }
    if (!isQuantizableFloat(t.dtype)) throw new WeightlensError(`dtype ${t.dtype} cannot be written to GGUF`, model.path, t.name);
    const ne = [...t.shape].reverse();
    const permuteHeads =
      arch.permute && /\.attn_q\.(weight|bias)$/.test(name)
        ? arch.permute.q
        : arch.permute && /\.attn_k\.(weight|bias)$/.test(name)
          ? arch.permute.k
          : undefined;
    if (t.shape.length !== 2) {
      out.push({ info: { name, ne, type: GgmlType.F32 }, tensor: t, permuteHeads });
      continue;
    }
    if (target.kind === 'float') {
      out.push({ info: { name, ne, type: target.type }, tensor: t, permuteHeads });
      continue;
    }
    const cols = t.shape[1];
    const isOutput = name === 'output.weight' || (arch.tied && name === 'token_embd.weight');
    const bits = isOutput ? 8 : target.bits;
    const settings = settingsFor(t, bits);
    if (cols % 32 !== 0) {
      out.push({
        info: { name, ne, type: GgmlType.F16 },
        tensor: t,
        permuteHeads,
        note: `rows of ${cols} are not whole blocks of 32: F16, as llama.cpp's quantizer falls back`,
      });
    } else if (!settings) {
      out.push({ info: { name, ne, type: GgmlType.F16 }, tensor: t, permuteHeads, note: 'kept in full precision: F16' });
    } else {
      // With a zero point: Q4_K (super-blocks of 256) where rows allow, Q4_1 elsewhere.
      const base = typeForBits(settings.bits, settings.symmetric);
      const type = base === GgmlType.Q4_1 && cols % QK_K === 0 ? GgmlType.Q4_K : base;
      const note =
        isOutput && target.bits !== 8
          ? `${arch.tied ? 'tied embedding, used as the output' : 'output'}: 8-bit, as llama.cpp's ${target.asymmetric ? 'Q4_1' : 'Q4_0'} preset keeps it (llama.cpp takes Q6_K where rows are multiples of 256; Weightlens writes Q8_0)`
          : undefined;
      out.push({ info: { name, ne, type }, tensor: t, settings, permuteHeads, note });
    }
  }
  return out;
}

/** general.file_type: Q4_K_S where any tensor is Q4_K, else the target's type. */
export function fileTypeOfPlan(target: GgufTarget, tensors: readonly GgufTensorPlan[]): LlamaFileType {
  return tensors.some((t) => t.info.type === GgmlType.Q4_K) ? LlamaFileType.MOSTLY_Q4_K_S : fileTypeOf(target);
}

export function fileTypeOf(target: GgufTarget): LlamaFileType {
  if (target.kind === 'float') return target.type === GgmlType.F32 ? LlamaFileType.ALL_F32 : LlamaFileType.MOSTLY_F16;
  if (target.bits === 8) return LlamaFileType.MOSTLY_Q8_0;
  return target.asymmetric ? LlamaFileType.MOSTLY_Q4_1 : LlamaFileType.MOSTLY_Q4_0;
}

/** The metadata llama.cpp needs to load the model, and what its own tools write beside it. */
export function ggufMetadata(
  arch: GgufArchitecture,
  vocab: Vocab,
  name: string,
  fileType: LlamaFileType,
  extra: Record<string, string>,
): Map<string, GgufValue> {
  const c = arch.config;
  const a = arch.arch;
  const heads = c.num_attention_heads;
  const headDim = c.head_dim ?? c.hidden_size / heads;
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id[0] : c.eos_token_id;
  const m = new Map<string, GgufValue>([
    ['general.architecture', gv.str(a)],
    ['general.name', gv.str(name)],
    ['general.file_type', gv.u32(fileType)],
    ['general.quantization_version', gv.u32(2)],
    [`${a}.context_length`, gv.u32(c.max_position_embeddings ?? 2048)],
    [`${a}.embedding_length`, gv.u32(c.hidden_size)],
    [`${a}.block_count`, gv.u32(c.num_hidden_layers)],
    [`${a}.feed_forward_length`, gv.u32(c.intermediate_size)],
    [`${a}.rope.dimension_count`, gv.u32(headDim)],
    [`${a}.rope.freq_base`, gv.f32(c.rope_theta ?? 10000)],
    [`${a}.attention.head_count`, gv.u32(heads)],
    [`${a}.attention.head_count_kv`, gv.u32(c.num_key_value_heads ?? heads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(c.rms_norm_eps ?? 1e-5)],
    [`${a}.vocab_size`, gv.u32(vocab.tokens.length)],
    ['tokenizer.ggml.model', gv.str(vocab.model)],
    ...(vocab.pre !== undefined ? ([['tokenizer.ggml.pre', gv.str(vocab.pre)]] as const) : []),
    ['tokenizer.ggml.tokens', gv.strs(vocab.tokens)],
    ...(vocab.scores.length ? ([['tokenizer.ggml.scores', gv.f32s(vocab.scores)]] as const) : []),
    ['tokenizer.ggml.token_type', gv.i32s(vocab.types)],
    ...(vocab.merges ? ([['tokenizer.ggml.merges', gv.strs(vocab.merges)]] as const) : []),
    ['tokenizer.ggml.bos_token_id', gv.u32(vocab.bos ?? c.bos_token_id ?? 1)],
    ['tokenizer.ggml.eos_token_id', gv.u32(vocab.eos ?? eos ?? 2)],
    ['tokenizer.ggml.add_bos_token', gv.bool(vocab.addBos ?? true)],
    ['tokenizer.ggml.add_eos_token', gv.bool(false)],
  ]);
  if (vocab.model === 'llama') m.set('tokenizer.ggml.unknown_token_id', gv.u32(0));
  for (const [k, v] of Object.entries(extra)) m.set(k, gv.str(v));
  return m;
}

/**
 * Rows of q/k from HF's rotate-half order to llama.cpp's interleaved one (llama.cpp's
 * `LlamaModel.permute`): within each head of `hd` rows, interleaved row 2i + j is rotate-half row
 * j * hd/2 + i. `inverse` goes back (interleaved to rotate-half). `rowLength` values per row (1 for
 * a bias).
 */
export function permuteRows<T extends { length: number; subarray(a: number, b: number): T; set(src: T, at: number): void }>(
  src: T,
  make: (n: number) => T,
  rows: number,
  rowLength: number,
  heads: number,
  inverse = false,
): T {
  if (rows % (heads * 2) !== 0) throw new Error(`internal: ${rows} rows do not split into ${heads} heads of pairs`);
  const hd = rows / heads;
  const half = hd / 2;
  const out = make(src.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const rotateHalf = h * hd + j * half + i;
        const interleaved = h * hd + 2 * i + j;
        const [from, to] = inverse ? [interleaved, rotateHalf] : [rotateHalf, interleaved];
        out.set(src.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}
