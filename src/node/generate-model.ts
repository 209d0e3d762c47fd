/**
 * Generated Llama-shaped checkpoints for speed, memory and scale work (no real large model can be
 * downloaded here). Weights are deterministic pseudo-random normals with a few outlier rows per
 * matrix, the structure that makes absmax scales poor on real LLMs; written tensor by tensor.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { encodeFloats, type QuantizableFloat } from '../core/dtypes';
import { layoutFile, type OutputTensorSpec } from '../core/safetensors/layout';
import { AtomicOutput } from './atomic-output';
import { fillNormals, mulberry32 } from '../core/random';

export interface GenerateOptions {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  heads: number;
  kvHeads: number;
  dtype: QuantizableFloat;
  seed: number;
  /** Fraction of rows of each linear weight scaled up as outliers. */
  outlierRows: number;
  /** Number of shards (1 = a single model.safetensors). */
  shards: number;
}

export const GENERATE_DEFAULTS: GenerateOptions = {
  layers: 4,
  hidden: 512,
  intermediate: 1408,
  vocab: 4096,
  heads: 8,
  kvHeads: 4,
  dtype: 'BF16',
  seed: 1,
  outlierRows: 0.01,
  shards: 1,
};

export function llamaTensors(o: GenerateOptions): OutputTensorSpec[] {
  const kv = (o.hidden / o.heads) * o.kvHeads;
  const t: OutputTensorSpec[] = [{ name: 'model.embed_tokens.weight', dtype: o.dtype, shape: [o.vocab, o.hidden] }];
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    t.push(
      { name: `${p}.input_layernorm.weight`, dtype: o.dtype, shape: [o.hidden] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: o.dtype, shape: [o.hidden, o.hidden] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: o.dtype, shape: [kv, o.hidden] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: o.dtype, shape: [kv, o.hidden] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: o.dtype, shape: [o.hidden, o.hidden] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: o.dtype, shape: [o.hidden] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: o.dtype, shape: [o.intermediate, o.hidden] },
      { name: `${p}.mlp.up_proj.weight`, dtype: o.dtype, shape: [o.intermediate, o.hidden] },
      { name: `${p}.mlp.down_proj.weight`, dtype: o.dtype, shape: [o.hidden, o.intermediate] },
    );
  }
  t.push(
    { name: 'model.norm.weight', dtype: o.dtype, shape: [o.hidden] },
    { name: 'lm_head.weight', dtype: o.dtype, shape: [o.vocab, o.hidden] },
  );
  return t;
}

/** Layers needed for a checkpoint of about `bytes` with the other dimensions fixed. */
export function layersForSize(bytes: number, o: GenerateOptions): number {
  const item = o.dtype === 'F64' ? 8 : o.dtype === 'F32' ? 4 : 2;
  const kv = (o.hidden / o.heads) * o.kvHeads;
  const perLayer = (2 * o.hidden * o.hidden + 2 * kv * o.hidden + 3 * o.intermediate * o.hidden + 2 * o.hidden) * item;
  const fixed = (2 * o.vocab * o.hidden + o.hidden) * item;
  return Math.max(1, Math.round((bytes - fixed) / perLayer));
}

function fillTensor(spec: OutputTensorSpec, rand: () => number, outlierRows: number): Float32Array {
  const numel = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(numel);
  if (spec.shape.length === 1) {
    for (let i = 0; i < numel; i++) out[i] = 1 + 0.1 * (rand() - 0.5);
    return out;
  }
  const cols = spec.shape[1];
  fillNormals(out, rand, 1 / Math.sqrt(cols));
  const rows = spec.shape[0];
  for (let r = 0; r < rows; r++) {
    if (rand() >= outlierRows) continue;
    const k = 8 + 24 * rand();
    for (let c = 0; c < cols; c++) out[r * cols + c] *= k;
  }
  return out;
}

/** Writes the checkpoint (and config.json) into `dir`; returns the path to open (file or index). */
export async function generateModel(dir: string, opts: Partial<GenerateOptions> = {}): Promise<string> {
  const o = { ...GENERATE_DEFAULTS, ...opts };
  await fsp.mkdir(dir, { recursive: true });
  const tensors = llamaTensors(o);
  const rand = mulberry32(o.seed);
  const shards = Math.max(1, Math.min(o.shards, tensors.length));
  const perShard = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shards; s++) {
    const part = tensors.slice(s * perShard, (s + 1) * perShard);
    if (part.length === 0) continue;
    const name =
      shards === 1 ? 'model.safetensors' : `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const layout = layoutFile(part, { format: 'pt', generator: 'weightlens generate' });
    const out = await AtomicOutput.create(path.join(dir, name), { isDir: false, force: true });
    try {
      const fh = await fsp.open(out.tempPath, 'w');
      try {
        let pos = 0;
        const write = async (b: Uint8Array) => {
          await fh.write(b, 0, b.byteLength, pos);
          pos += b.byteLength;
        };
        await write(layout.headerBytes);
        for (const spec of part) {
          await write(encodeFloats(o.dtype, fillTensor(spec, rand, o.outlierRows)));
          weightMap[spec.name] = name;
        }
      } finally {
        await fh.close();
      }
      await out.commit();
    } catch (e) {
      await out.abort();
      throw e;
    }
    totalSize += layout.totalBytes;
  }
  const config = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    vocab_size: o.vocab,
    torch_dtype: { BF16: 'bfloat16', F16: 'float16', F32: 'float32', F64: 'float64' }[o.dtype],
    tie_word_embeddings: false,
  };
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (shards === 1) return path.join(dir, 'model.safetensors');
  const indexPath = path.join(dir, 'model.safetensors.index.json');
  await fsp.writeFile(indexPath, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
  return indexPath;
}
