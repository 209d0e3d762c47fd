/**
 * Two checkpoints, tensor by tensor: matched by (Hugging Face) name across formats, q/k rows put in
 * the same order when one side is llama.cpp's interleaved layout and the other HF's rotate-half,
 * and per tensor the error of B against A (A is the reference: the original): MSE, SQNR, the largest
 * |A - B|, the relative error ||A - B|| / ||A|| and the cosine. Streamed in row blocks; the sums are
 * float64.
 */
import { WeightlensError } from '../core/errors';
import { permuteRows } from '../core/formats/gguf-llama';
import { CancelledError } from '../core/errors';
import { bitsPerWeight, openCheckpoint, type Checkpoint, type CheckpointTensor } from './checkpoint';

export interface TensorComparison {
  readonly name: string;
  /** `L3 · q_proj`: what a table has room for. */
  readonly short: string;
  readonly shape: [number, number];
  readonly typeA: string;
  readonly typeB: string;
  readonly bitsA: number;
  readonly bitsB: number;
  readonly mse: number;
  /** null when A and B are identical. */
  readonly sqnrDb: number | null;
  readonly maxAbs: number;
  readonly relative: number;
  readonly cosine: number;
}

export interface Comparison {
  readonly a: string;
  readonly b: string;
  readonly formatA: string;
  readonly formatB: string;
  readonly tensors: readonly TensorComparison[];
  readonly onlyInA: readonly string[];
  readonly onlyInB: readonly string[];
  readonly shapeMismatch: readonly { name: string; a: [number, number]; b: [number, number] }[];
  /** Which side's q/k rows were re-ordered to the other's, if any. */
  readonly qkReordered: 'a' | 'b' | null;
  readonly summary: {
    tensors: number;
    weights: number;
    mse: number;
    sqnrDb: number | null;
    bitsA: number;
    bitsB: number;
    worst: readonly string[];
  };
}

const SHORTER: Record<string, string> = { input_layernorm: 'input_norm', post_attention_layernorm: 'post_attn_norm' };

export function shortName(name: string): string {
  const m = /^(?:model\.)?layers\.(\d+)\.(?:self_attn|mlp)?\.?(.+?)(?:\.weight)?$/.exec(name);
  if (m) return `L${m[1]} · ${SHORTER[m[2]] ?? m[2]}`;
  return name.replace(/^model\./, '').replace(/\.weight$/, '');
}

const CHUNK = 1 << 20;

export interface CompareOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

export async function compareCheckpoints(pathA: string, pathB: string, o: CompareOptions = {}): Promise<Comparison> {
  const a = await openCheckpoint(pathA);
  let b: Checkpoint | undefined;
  try {
    b = await openCheckpoint(pathB);
    return await compareOpen(a, b, o);
  } finally {
    await a.close();
    await b?.close();
  }
}

/** Which side's q/k rows go back to HF's order: llama.cpp keeps them interleaved, HF checkpoints
 * (unless exported from llama2.c) rotate-half. */
function qkReorder(a: Checkpoint, b: Checkpoint): 'a' | 'b' | null {
  return a.interleavedQk === b.interleavedQk ? null : a.interleavedQk ? 'a' : 'b';
}

/**
 * One tensor of both sides, row blocks at a time, in the same row order: a q/k matrix to re-order is
 * read whole (its rows move between the halves of each head), anything else in blocks.
 */
async function streamPair(
  a: Checkpoint,
  b: Checkpoint,
  ta: CheckpointTensor,
  tb: CheckpointTensor,
  reorder: 'a' | 'b' | null,
  signal: AbortSignal | undefined,
  fn: (x: Float32Array, y: Float32Array, r0: number, n: number) => void,
): Promise<void> {
  const qk = reorder ? /\.self_attn\.([qk])_proj\.(weight|bias)$/.exec(ta.name) : null;
  if (qk) {
    const heads = (reorder === 'a' ? a.heads : b.heads) ?? (reorder === 'a' ? b.heads : a.heads);
    const h = qk[1] === 'q' ? heads?.q : heads?.k;
    if (h === undefined)
      throw new WeightlensError(
        `q/k rows of ${reorder === 'a' ? a.path : b.path} are in llama.cpp's order and no head count is known to re-order them (config.json or GGUF metadata)`,
        undefined,
        ta.name,
      );
    let x = await a.readRows(ta.name, 0, ta.rows);
    let y = await b.readRows(tb.name, 0, tb.rows);
    if (reorder === 'a') x = permuteRows(x, (k) => new Float32Array(k), ta.rows, ta.cols, h, true);
    else y = permuteRows(y, (k) => new Float32Array(k), tb.rows, tb.cols, h, true);
    fn(x, y, 0, ta.rows);
    return;
  }
  const step = Math.max(1, Math.floor(CHUNK / ta.cols));
  for (let r = 0; r < ta.rows; r += step) {
    if (signal?.aborted) throw new CancelledError('comparison cancelled');
    const n = Math.min(step, ta.rows - r);
    fn(await a.readRows(ta.name, r, n), await b.readRows(tb.name, r, n), r, n);
  }
}

async function compareOpen(a: Checkpoint, b: Checkpoint, o: CompareOptions): Promise<Comparison> {
  const onlyInA = [...a.tensors.keys()].filter((n) => !b.tensors.has(n));
  const onlyInB = [...b.tensors.keys()].filter((n) => !a.tensors.has(n));
  const shapeMismatch: Comparison['shapeMismatch'][number][] = [];
  const pairs: [CheckpointTensor, CheckpointTensor][] = [];
  for (const [name, ta] of a.tensors) {
    const tb = b.tensors.get(name);
    if (!tb) continue;
    if (ta.rows * ta.cols !== tb.rows * tb.cols || ta.cols !== tb.cols)
      shapeMismatch.push({ name, a: [ta.rows, ta.cols], b: [tb.rows, tb.cols] });
    else pairs.push([ta, tb]);
  }
  if (pairs.length === 0) throw new WeightlensError(`no tensor of ${b.path} matches one of ${a.path} by name and shape`);
  const reorder = qkReorder(a, b);
  const total = pairs.reduce((s, [t]) => s + t.rows * t.cols, 0);
  let done = 0;
  const tensors: TensorComparison[] = [];
  let sumE2 = 0;
  let sumA2 = 0;
  for (const [ta, tb] of pairs) {
    const acc = { e2: 0, a2: 0, b2: 0, ab: 0, max: 0 };
    await streamPair(a, b, ta, tb, reorder, o.signal, (x, y, _r0, n) => {
      for (let i = 0; i < x.length; i++) {
        const d = x[i] - y[i];
        acc.e2 += d * d;
        acc.a2 += x[i] * x[i];
        acc.b2 += y[i] * y[i];
        acc.ab += x[i] * y[i];
        const ad = Math.abs(d);
        if (ad > acc.max || Number.isNaN(ad)) acc.max = ad;
      }
      done += n * ta.cols;
      o.onProgress?.(done, total, ta.name);
    });
    const count = ta.rows * ta.cols;
    sumE2 += acc.e2;
    sumA2 += acc.a2;
    tensors.push({
      name: ta.name,
      short: shortName(ta.name),
      shape: [ta.rows, ta.cols],
      typeA: ta.type,
      typeB: tb.type,
      bitsA: bitsPerWeight(ta),
      bitsB: bitsPerWeight(tb),
      mse: acc.e2 / count,
      sqnrDb: acc.e2 === 0 ? null : 10 * Math.log10(acc.a2 / acc.e2),
      maxAbs: acc.max,
      relative: acc.a2 > 0 ? Math.sqrt(acc.e2 / acc.a2) : acc.e2 > 0 ? Infinity : 0,
      cosine: acc.a2 > 0 && acc.b2 > 0 ? acc.ab / Math.sqrt(acc.a2 * acc.b2) : acc.a2 === acc.b2 ? 1 : 0,
    });
  }
  const bits = (side: 'bitsA' | 'bitsB') => tensors.reduce((s, t) => s + t[side] * t.shape[0] * t.shape[1], 0) / total;
  const worst = [...tensors]
    .filter((t) => t.sqnrDb !== null)
    .sort((x, y) => x.sqnrDb! - y.sqnrDb!)
    .slice(0, 5)
    .map((t) => t.name);
  return {
    a: a.path,
    b: b.path,
    formatA: a.format,
    formatB: b.format,
    tensors,
    onlyInA,
    onlyInB,
    shapeMismatch,
    qkReordered: reorder,
    summary: {
      tensors: tensors.length,
      weights: total,
      mse: sumE2 / total,
      sqnrDb: sumE2 === 0 ? null : 10 * Math.log10(sumA2 / sumE2),
      bitsA: bits('bitsA'),
      bitsB: bits('bitsB'),
      worst,
    },
  };
}

const e = (x: number) => (x === 0 ? '0' : x.toExponential(2));
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** The comparison as text: summary first, then one line per tensor, errors before names, < 100 columns. */
export function formatComparison(c: Comparison): string {
  const s = c.summary;
  const byName = new Map(c.tensors.map((t) => [t.name, t]));
  const lines = [
    `A ${c.a} (${c.formatA}, ${s.bitsA.toFixed(2)} bits/weight)`,
    `B ${c.b} (${c.formatB}, ${s.bitsB.toFixed(2)} bits/weight)`,
    `${s.tensors} tensors, ${s.weights.toLocaleString('en-US')} weights: SQNR ${s.sqnrDb === null ? 'inf' : s.sqnrDb.toFixed(2) + ' dB'}, MSE ${e(s.mse)}${c.qkReordered ? `; q/k rows of ${c.qkReordered.toUpperCase()} put back in HF order` : ''}`,
    `worst: ${s.worst.map((n) => `${byName.get(n)!.short} ${byName.get(n)!.sqnrDb!.toFixed(1)} dB`).join(', ') || 'none (identical)'}`,
    '',
    `${lpad('sqnr dB', 8)}  ${lpad('mse', 8)}  ${lpad('max|A-B|', 8)}  ${lpad('rel', 8)}  ${lpad('cosine', 8)}  ${pad('B type', 10)}  tensor`,
    ...c.tensors.map(
      (t) =>
        `${lpad(t.sqnrDb === null ? 'inf' : t.sqnrDb.toFixed(2), 8)}  ${lpad(e(t.mse), 8)}  ${lpad(e(t.maxAbs), 8)}  ${lpad(e(t.relative), 8)}  ${lpad(t.cosine.toFixed(6), 8)}  ${pad(t.typeB, 10)}  ${t.short}`,
    ),
  ];
  if (c.onlyInA.length) lines.push('', `only in A (${c.onlyInA.length}): ${c.onlyInA.map(shortName).join(', ')}`);
  if (c.onlyInB.length) lines.push('', `only in B (${c.onlyInB.length}): ${c.onlyInB.map(shortName).join(', ')}`);
  if (c.shapeMismatch.length)
    lines.push(
      '',
      `different shapes: ${c.shapeMismatch.map((m) => `${shortName(m.name)} ${m.a.join('x')} vs ${m.b.join('x')}`).join(', ')}`,
    );
  return lines.join('\n') + '\n';
}

/**
 * One tensor of both checkpoints, row blocks at a time, rows in the same order (see compareOpen):
 * what the panel's detail of a comparison reads. `fn` gets A's and B's rows [r0, r0 + n).
 */
export async function forEachRowPair(
  pathA: string,
  pathB: string,
  name: string,
  fn: (a: Float32Array, b: Float32Array, r0: number, n: number, cols: number) => void,
  signal?: AbortSignal,
): Promise<{ rows: number; cols: number }> {
  const a = await openCheckpoint(pathA);
  let b: Checkpoint | undefined;
  try {
    b = await openCheckpoint(pathB);
    const ta = a.tensors.get(name);
    const tb = b.tensors.get(name);
    if (!ta || !tb || ta.cols !== tb.cols || ta.rows !== tb.rows)
      throw new WeightlensError(`is not in both checkpoints with the same shape`, undefined, name);
    await streamPair(a, b, ta, tb, qkReorder(a, b), signal, (x, y, r0, n) => fn(x, y, r0, n, ta.cols));
    return { rows: ta.rows, cols: ta.cols };
  } finally {
    await a.close();
    await b?.close();
  }
}
