/**
 * A tensor's error statistics from a sample of its groups (src/core/quant/estimate.ts): a first
 * pass reads the tensor for every group's size measure (cheap), the drawn groups are then read one by one
 * and quantized on the worker pool as one job per group length — each group alone, as it is inside
 * the tensor — and the sample grows until the SQNR interval is as narrow as asked or a weight
 * budget is spent.
 */
import { dtypeBits, decodeFloats, isQuantizableFloat, type QuantizableFloat } from '../core/dtypes';
import { CancelledError } from '../core/errors';
import type { ByteSource } from '../core/bytesource';
import { readRows, type ModelTensor } from '../core/model';
import {
  designSample,
  estimateTensor,
  groupAt,
  sqnrHalfWidth,
  type GroupRef,
  type GroupSample,
  type TensorEstimate,
} from '../core/quant/estimate';
import { groupLength } from '../core/quant/matrix';
import type { QuantSettings } from '../core/quant/settings';
import type { MatrixView } from '../core/select';
import type { OpenModel } from './open-model';
import type { JobRunner } from './pool';
import { CHUNK_WEIGHTS } from './stream-tensor';

export interface EstimateOptions {
  /** Stop growing the sample once the SQNR interval's half-width is at most this (dB). */
  targetDb?: number;
  /** Weights of the first sample, and the most the sample may grow to. */
  firstWeights?: number;
  maxWeights?: number;
  signal?: AbortSignal;
}

export const ESTIMATE_DEFAULTS = { targetDb: 0.1, firstWeights: 1 << 17, maxWeights: 1 << 19 };

/** Whether a tensor's groups can be read one by one (row-major groups; not a transposed Conv1D weight). */
export function canEstimate(t: ModelTensor, view: MatrixView): boolean {
  return isQuantizableFloat(t.dtype) && !view.transposed && t.shape.length >= 2;
}

/** A stable seed per tensor, so the same model shows the same estimates. */
function seedOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export async function estimateTensorStats(
  opened: OpenModel,
  pool: JobRunner,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  o: EstimateOptions = {},
): Promise<TensorEstimate> {
  const { targetDb, firstWeights, maxWeights } = { ...ESTIMATE_DEFAULTS, ...o };
  const { cols } = view;
  const g = groupLength(settings.groupSize, cols);
  const w2 = await groupSquares(opened, t, view, g, o.signal);
  let count = Math.min(w2.length, Math.max(8, Math.floor(firstWeights / g)));
  const quantized = new Map<number, GroupSample>();
  for (;;) {
    const design = designSample(w2, count, seedOf(t.name));
    // Groups quantized for a smaller sample are reused: a group's terms do not depend on the sample.
    const wanted = [...new Set(design.draws)].filter((k) => !quantized.has(k));
    const terms = await sampleStats(
      opened,
      pool,
      t,
      cols,
      settings,
      wanted.map((k) => groupAt(k, cols, g)),
      o.signal,
    );
    terms.forEach((s, i) => quantized.set(wanted[i], s));
    const est = estimateTensor(
      design.draws.map((k) => quantized.get(k)!),
      design,
      view.rows * cols,
    );
    const grown = Math.min(w2.length, count * 4);
    if (sqnrHalfWidth(est) <= targetDb || grown === count || grown * g > maxWeights) return est;
    count = grown;
  }
}

/** Weights per group the size measure reads (every stride-th): enough to rank groups by size. */
const SIZE_SAMPLES = 16;

/**
 * The first pass: each group's size measure, the sum of squares of every stride-th weight (at least
 * SIZE_SAMPLES of them), read in blocks of rows — no quantization, and for 16-bit weights not even
 * a decode: the square of each bit pattern comes from a table.
 */
async function groupSquares(opened: OpenModel, t: ModelTensor, view: MatrixView, g: number, signal?: AbortSignal): Promise<Float64Array> {
  const { rows, cols } = view;
  const dtype = t.dtype as QuantizableFloat;
  const perRow = Math.max(1, Math.ceil(cols / g));
  const stride = Math.max(1, Math.floor(g / SIZE_SAMPLES));
  const out = new Float64Array(rows * perRow);
  const src = opened.source(t.file);
  const step = Math.max(1, Math.floor(CHUNK_WEIGHTS / cols));
  // One block buffer for the whole pass (readRows reads into it).
  const block = new Uint8Array((step * t.byteLength) / rows);
  const squares = squareTable(dtype);
  for (let r0 = 0; r0 < rows; r0 += step) {
    if (signal?.aborted) throw new CancelledError('cancelled');
    const n = Math.min(step, rows - r0);
    const bytes = await readRows(src, t, r0, n, block);
    // Typed views need aligned offsets: copy the rare unaligned block.
    const buf = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
    const codes = squares ? new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength / 2) : undefined;
    const values = squares
      ? undefined
      : dtype === 'F32'
        ? new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
        : new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
    for (let r = 0; r < n; r++)
      for (let c0 = 0, k = (r0 + r) * perRow; c0 < cols; c0 += g, k++) {
        let s = 0;
        const end = r * cols + Math.min(cols, c0 + g);
        if (squares) for (let i = r * cols + c0; i < end; i += stride) s += squares[codes![i]];
        else
          for (let i = r * cols + c0; i < end; i += stride) {
            const x = values![i];
            s += x * x;
          }
        out[k] = s;
      }
  }
  return out;
}

const SQUARES = new Map<QuantizableFloat, Float64Array>();

/** x² of every 16-bit pattern of a 16-bit dtype (non-finite patterns as 0: only sizes are read), or undefined. */
function squareTable(dtype: QuantizableFloat): Float64Array | undefined {
  if (dtype !== 'BF16' && dtype !== 'F16') return undefined;
  let table = SQUARES.get(dtype);
  if (!table) {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = decodeFloats(dtype, new Uint8Array(all.buffer));
    table = Float64Array.from(values, (x) => (Number.isFinite(x) ? x * x : 0));
    SQUARES.set(dtype, table);
  }
  return table;
}

/**
 * Gap (bytes) below which two drawn groups are read in one read. At 1 MB the sample of a
 * 4096 x 14336 tensor (groups ~60 KB apart) read nearly every byte of it — 13.5 GB for a 7B model —
 * and the kernel's copying was most of the overview's time (sys 10.9 s of 7.6 s on two cores for an
 * 8-block model); at 64 KB it reads what it uses, in reads of a few pages: 2.5x faster here.
 */
const MERGE_GAP = 1 << 16;

/** The bytes of each group of `list` (ascending storage order, each n weights) into `raw`, one after another. */
async function readGroups(
  src: ByteSource,
  base: number,
  cols: number,
  bytes: number,
  n: number,
  list: GroupRef[],
  raw: Uint8Array,
): Promise<void> {
  const at = (r: GroupRef) => base + (r.row * cols + r.col) * bytes;
  for (let i = 0; i < list.length;) {
    let j = i + 1;
    while (j < list.length && at(list[j]) - (at(list[j - 1]) + n * bytes) < MERGE_GAP) j++;
    const start = at(list[i]);
    const span = await src.read(start, at(list[j - 1]) + n * bytes - start);
    for (let k = i; k < j; k++) raw.set(span.subarray(at(list[k]) - start, at(list[k]) - start + n * bytes), k * n * bytes);
    i = j;
  }
}

/** Quantizes each sampled group alone and returns its terms. */
async function sampleStats(
  opened: OpenModel,
  pool: JobRunner,
  t: ModelTensor,
  cols: number,
  settings: QuantSettings,
  refs: GroupRef[],
  signal?: AbortSignal,
): Promise<GroupSample[]> {
  if (!isQuantizableFloat(t.dtype)) throw new Error(`internal: cannot estimate dtype ${t.dtype}`);
  const dtype = t.dtype;
  const bytes = dtypeBits(dtype) / 8;
  const src = opened.source(t.file);
  // One job per group length (the full groups, and a row's shorter last group).
  const byLength = new Map<number, GroupRef[]>();
  for (const r of refs) {
    const list = byLength.get(r.n);
    if (list) list.push(r);
    else byLength.set(r.n, [r]);
  }
  const out: GroupSample[] = [];
  for (const [n, list] of byLength) {
    if (signal?.aborted) throw new CancelledError('cancelled');
    const raw = new Uint8Array(list.length * n * bytes);
    await readGroups(src, t.offset, cols, bytes, n, list, raw);
    const result = await pool.run({
      file: t.file,
      tensor: t.name,
      dtype,
      raw,
      rows: list.length,
      cols: n,
      transposed: false,
      rowBase: 0,
      // Each group alone: one scale per "row" of the job, exactly as inside the tensor.
      settings: { ...settings, groupSize: 0 },
      output: 'fake',
      channelStats: true,
    });
    const ch = result.channels!;
    for (let i = 0; i < list.length; i++) {
      out.push({
        n,
        // Summed by the worker in the same order as a plain loop over the group: the same value.
        w2: ch.sumSq[i],
        e2: ch.mse[i] * n,
        entropy: ch.entropy[i],
        ratio: ch.absmax[i] > 0 ? ch.scaleRatio[i] : NaN,
        clipped: ch.clipped[i],
      });
    }
  }
  return out;
}
