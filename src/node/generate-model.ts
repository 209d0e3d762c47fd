/**
 * Generated Llama-shaped checkpoints for speed, memory and scale work (no real large model can be
 * downloaded here). Weights are deterministic pseudo-random normals with a few outlier rows per
 * matrix, the structure that makes absmax scales poor on real LLMs; written in pieces of reused
 * buffers (a 7B-shaped model is 13.5 GB).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { encodeFloats, type QuantizableFloat } from '../core/dtypes';
import { layoutFile, type OutputTensorSpec } from '../core/safetensors/layout';
import { AtomicOutput } from './atomic-output';
import { fillNormals, Mulberry32 } from '../core/random';

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

/** Weights generated and written at a time: the buffers are reused, no tensor is ever whole in memory. */
const PIECE_WEIGHTS = 1 << 20;

/** A piece's buffers, kept from tensor to tensor (first touches of fresh memory are slow). */
interface Piece {
  values: Float32Array;
  bytes: Uint8Array;
}

/**
 * Writes one tensor's values in pieces: the same numbers as filling it whole from `rand` — its
 * normals (Box-Muller pairs), then per row a draw that makes it an outlier row (and one for its
 * factor) — taken in another order: the outlier draws first, read ahead of the normals.
 */
async function writeTensor(
  spec: OutputTensorSpec,
  rand: Mulberry32,
  o: GenerateOptions,
  piece: Piece,
  write: (b: Uint8Array) => Promise<void>,
): Promise<void> {
  const numel = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.shape.length === 1) {
    const out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = 1 + 0.1 * (rand.next() - 0.5);
    await write(encodeFloats(o.dtype, out));
    return;
  }
  const [rows, cols] = spec.shape;
  const ahead = rand.clone();
  ahead.skip(2 * Math.ceil(numel / 2));
  const factor = new Float64Array(rows).fill(1);
  let outlierDraws = 0;
  for (let r = 0; r < rows; r++, outlierDraws++) {
    if (ahead.next() >= o.outlierRows) continue;
    factor[r] = 8 + 24 * ahead.next();
    outlierDraws++;
  }
  // Whole rows a piece, an even number of weights (a Box-Muller pair never straddles two pieces).
  let pieceRows = Math.max(1, Math.floor(PIECE_WEIGHTS / cols));
  if (cols % 2 === 1 && pieceRows % 2 === 1) pieceRows++;
  const next = () => rand.next();
  const item = o.dtype === 'F64' ? 8 : o.dtype === 'F32' ? 4 : 2;
  for (let r0 = 0; r0 < rows; r0 += pieceRows) {
    const pr = Math.min(pieceRows, rows - r0);
    const n = pr * cols;
    if (piece.values.length < n) piece.values = new Float32Array(n);
    if (piece.bytes.length < n * item) piece.bytes = new Uint8Array(n * item);
    const values = piece.values.subarray(0, n);
    fillNormals(values, next, 1 / Math.sqrt(cols));
    for (let r = 0; r < pr; r++) {
      const k = factor[r0 + r];
      if (k !== 1) for (let c = r * cols; c < (r + 1) * cols; c++) values[c] *= k;
    }
    await write(encodeFloats(o.dtype, values, piece.bytes.subarray(0, n * item)));
  }
  // The stream goes on after the outlier draws, as when the tensor was filled whole.
  rand.skip(outlierDraws);
}

/** Writes the checkpoint (and config.json) into `dir`; returns the path to open (file or index). */
export async function generateModel(dir: string, opts: Partial<GenerateOptions> = {}): Promise<string> {
  const o = { ...GENERATE_DEFAULTS, ...opts };
  await fsp.mkdir(dir, { recursive: true });
  const tensors = llamaTensors(o);
  const rand = new Mulberry32(o.seed);
  const piece: Piece = { values: new Float32Array(0), bytes: new Uint8Array(0) };
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
          await writeTensor(spec, rand, o, piece, write);
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
