/**
 * Generated Llama-shaped checkpoints for speed, memory and scale work (no real large model can be
 * downloaded here). Weights are deterministic pseudo-random normals with a few outlier rows per
 * matrix, the structure that makes absmax scales poor on real LLMs; written in pieces of reused
 * buffers (a 7B-shaped model is 13.5 GB).
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
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

/** Weights generated and written at a time: no tensor is ever whole in memory. */
const PIECE_WEIGHTS = 1 << 20;

/** Rows of one matrix, made independently of the rest: where their draws start and how each row is scaled. */
export interface NormalsPiece {
  /** The generator's state at the piece's first draw (Mulberry32 is a counter: any piece can start anywhere). */
  state: number;
  cols: number;
  /** Per row of the piece: its outlier factor, 1 for most rows. */
  factors: Float64Array;
  dtype: QuantizableFloat;
}

/**
 * A piece's bytes: Box-Muller normals from its state (std 1/sqrt(cols)), each row times its factor,
 * encoded in the dtype. `values` is scratch of at least the piece's size; bf16 bytes go `into`
 * where given (reused), else a new buffer.
 */
export function pieceBytes(p: NormalsPiece, values: Float32Array, into?: Uint8Array): Uint8Array {
  const { cols, factors } = p;
  const n = factors.length * cols;
  const v = values.subarray(0, n);
  const rand = new Mulberry32(p.state);
  fillNormals(v, () => rand.next(), 1 / Math.sqrt(cols));
  for (let r = 0; r < factors.length; r++) {
    const k = factors[r];
    if (k !== 1) for (let c = r * cols; c < (r + 1) * cols; c++) v[c] *= k;
  }
  return encodeFloats(p.dtype, v, into?.subarray(0, 2 * n));
}

/**
 * One matrix as pieces, in order: the same numbers as filling it whole from `rand` — its normals
 * (Box-Muller pairs), then per row a draw that makes it an outlier row (and one for its factor) —
 * with the outlier draws read ahead. Leaves `rand` after the tensor's last draw.
 */
function* matrixPieces(spec: OutputTensorSpec, rand: Mulberry32, o: GenerateOptions): Generator<NormalsPiece> {
  const [rows, cols] = spec.shape;
  const numel = rows * cols;
  const normalDraws = 2 * Math.ceil(numel / 2);
  const ahead = rand.clone();
  ahead.skip(normalDraws);
  const factors = new Float64Array(rows).fill(1);
  let outlierDraws = 0;
  for (let r = 0; r < rows; r++, outlierDraws++) {
    if (ahead.next() >= o.outlierRows) continue;
    factors[r] = 8 + 24 * ahead.next();
    outlierDraws++;
  }
  // Whole rows a piece, an even number of weights (a Box-Muller pair never straddles two pieces).
  let pieceRows = Math.max(1, Math.floor(PIECE_WEIGHTS / cols));
  if (cols % 2 === 1 && pieceRows % 2 === 1) pieceRows++;
  const start = rand.clone();
  for (let r0 = 0; r0 < rows; r0 += pieceRows) {
    const at = start.clone();
    at.skip(r0 * cols);
    yield { state: at.state, cols, factors: factors.slice(r0, r0 + pieceRows), dtype: o.dtype };
  }
  rand.skip(normalDraws + outlierDraws);
}

/** Makes pieces' bytes: on this thread, or on worker threads (in order, several in flight). */
interface PieceMaker {
  /** Pieces to keep in flight. */
  readonly depth: number;
  make(p: NormalsPiece): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** On this thread, one piece at a time, into buffers reused from piece to piece. */
function piecesHere(): PieceMaker {
  let values = new Float32Array(0);
  let bytes = new Uint8Array(0);
  return {
    depth: 1,
    make: async (p) => {
      const n = p.factors.length * p.cols;
      if (values.length < n) values = new Float32Array(n);
      if (bytes.length < 2 * n) bytes = new Uint8Array(2 * n);
      return pieceBytes(p, values, bytes);
    },
    close: async () => undefined,
  };
}

/** On `threads` workers (dist/generate-worker.js), handed pieces in turn; each answers in order. */
function piecesOnWorkers(script: string, threads: number): PieceMaker {
  const slots = Array.from({ length: threads }, () => {
    const slot = {
      worker: new Worker(script),
      waiting: new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>(),
    };
    const fail = (e: Error) => {
      for (const w of slot.waiting.values()) w.reject(e);
      slot.waiting.clear();
    };
    slot.worker.on('message', (m: { id: number; bytes: Uint8Array }) => {
      slot.waiting.get(m.id)?.resolve(m.bytes);
      slot.waiting.delete(m.id);
    });
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => fail(new Error(`generate worker exited (code ${code})`)));
    return slot;
  });
  let next = 0;
  return {
    depth: 2 * threads,
    make: (p) => {
      const slot = slots[next % threads];
      const id = next++;
      return new Promise((resolve, reject) => {
        slot.waiting.set(id, { resolve, reject });
        slot.worker.postMessage({ id, piece: p });
      });
    },
    close: async () => {
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}

export interface GenerateRun {
  /** dist/generate-worker.js: pieces are made on worker threads; without it, on this thread. */
  workerScript?: string;
  /** Worker threads (default: every core). */
  threads?: number;
}

/** Writes the checkpoint (and config.json) into `dir`; returns the path to open (file or index). */
export async function generateModel(dir: string, opts: Partial<GenerateOptions> = {}, run: GenerateRun = {}): Promise<string> {
  const o = { ...GENERATE_DEFAULTS, ...opts };
  await fsp.mkdir(dir, { recursive: true });
  const tensors = llamaTensors(o);
  const rand = new Mulberry32(o.seed);
  const threads = Math.max(1, run.threads ?? os.availableParallelism());
  const maker = run.workerScript ? piecesOnWorkers(run.workerScript, threads) : piecesHere();
  const shards = Math.max(1, Math.min(o.shards, tensors.length));
  const perShard = Math.ceil(tensors.length / shards);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  try {
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
          // Bytes in file order, up to maker.depth pieces ahead of the writer.
          const queue: Promise<Uint8Array>[] = [];
          const push = async (b: Promise<Uint8Array>) => {
            queue.push(b);
            // Observed when its turn comes; never an unhandled rejection before that.
            b.catch(() => undefined);
            if (queue.length >= maker.depth) await write(await queue.shift()!);
          };
          for (const spec of part) {
            if (spec.shape.length === 1) {
              const numel = spec.shape[0];
              const out = new Float32Array(numel);
              for (let i = 0; i < numel; i++) out[i] = 1 + 0.1 * (rand.next() - 0.5);
              await push(Promise.resolve(encodeFloats(o.dtype, out)));
            } else for (const p of matrixPieces(spec, rand, o)) await push(maker.make(p));
            weightMap[spec.name] = name;
          }
          while (queue.length) await write(await queue.shift()!);
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
  } finally {
    await maker.close();
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
