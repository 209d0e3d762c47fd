/**
 * One tensor through the job pool, whole rows at a time: read a chunk, (optionally) let the WebGPU
 * search rank its candidates, quantize it on a worker, hand results back in order. Shared by the
 * quantize run (which writes the results) and the panel's statistics (which keep only the numbers).
 */
import { gpuSearches, type ScaleSearchBackend, type SearchChoices } from '../compute/backend';
import { decodeFloats, isQuantizableFloat, type QuantizableFloat } from '../core/dtypes';
import { CancelledError, oneLine, WeightlensError } from '../core/errors';
import { readRows, readTensor, type ModelTensor } from '../core/model';
import { transpose, type QuantJob, type QuantJobResult } from '../core/quant/job';
import type { ZeroKind } from '../core/quant/affine';
import type { QuantSettings } from '../core/quant/settings';
import type { TileGrid } from '../core/quant/tiles';
import type { MatrixView } from '../core/select';
import type { OpenModel } from './open-model';
import type { JobRunner } from './pool';

/** Rows per job are chosen so one job holds about this many weights (bounded memory per job). */
export const CHUNK_WEIGHTS = 1 << 22;

/**
 * Rows per job: at most CHUNK_WEIGHTS weights each, in a number of equal jobs that is a multiple of
 * the threads. Tensors go through one at a time, so a tensor of one chunk (4096 x 1024) in one job
 * kept a 2-thread pool half idle, and 3 chunks on 2 threads a third idle.
 */
export function rowsPerJobOf(rows: number, cols: number, threads: number): number {
  const t = Math.max(1, threads);
  const chunks = Math.ceil((rows * cols) / CHUNK_WEIGHTS);
  const jobs = Math.min(rows, Math.ceil(chunks / t) * t);
  return Math.max(1, Math.ceil(rows / jobs));
}

export interface StreamOptions {
  output: 'fake' | 'packed' | 'codes' | 'q4k';
  /** Scales stored in another dtype than the weights (GGUF: F16). */
  scaleDtype?: QuantizableFloat;
  signal?: AbortSignal;
  searchBackend?: ScaleSearchBackend;
  /** Groups and candidates ranked on the GPU, and those the CPU had to score (see SearchChoices). */
  gpuCounts?: GpuCounts;
  channelStats?: boolean;
  tiles?: TileGrid;
  /** How the output stores zero points (asymmetric settings): GGUF Q4_1 an f16 offset, else an integer. */
  zeroKind?: ZeroKind;
}

export interface GpuCounts {
  groups: number;
  undecided: number;
  candidates: number;
  rescored: number;
  /** Why the GPU stopped being used (device lost, out of memory…): the rest ran on the CPU. */
  failure?: string;
}

export async function streamTensor(
  opened: OpenModel,
  pool: JobRunner,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  o: StreamOptions,
  onResult: (r: QuantJobResult, inputBytes: number) => Promise<void> | void,
): Promise<void> {
  if (!isQuantizableFloat(t.dtype)) throw new WeightlensError(`cannot quantize dtype ${t.dtype}`, opened.model.path, t.name);
  const dtype = t.dtype;
  const file = opened.source(t.file);
  // A transposed (Conv1D) tensor's output channels are columns: it is processed whole.
  const rowsPerJob = view.transposed ? view.rows : rowsPerJobOf(view.rows, view.cols, pool.threads);
  const inflight: Promise<{ r: QuantJobResult; bytes: number }>[] = [];
  let next = 0;
  const submit = async () => {
    const r0 = next;
    const rows = Math.min(rowsPerJob, view.rows - r0);
    next += rows;
    // Logical rows are stored rows, except for a transposed tensor (its rows are stored columns)
    // and a 1-D one (a single row): those are read whole.
    const raw = view.transposed || t.shape.length < 2 ? await readTensor(file, t) : await readRows(file, t, r0, rows);
    let job: QuantJob = {
      file: file.name,
      tensor: t.name,
      dtype,
      raw,
      rows,
      cols: view.cols,
      transposed: view.transposed,
      rowBase: r0,
      settings,
      output: o.output,
      scaleDtype: o.scaleDtype,
      channelStats: o.channelStats,
      tiles: o.tiles,
      zeroKind: o.zeroKind,
    };
    const bytes = raw.byteLength;
    const search = o.searchBackend;
    if (search && gpuSearches(settings) && dtype !== 'F64') {
      // The GPU ranks the candidates; the job then computes scales, codes and statistics from
      // its choices exactly as the CPU would (and searches the groups the GPU could not decide).
      let values = decodeFloats(dtype, raw) as Float32Array;
      if (view.transposed) values = transpose(values, view.cols, view.rows);
      let found: SearchChoices | undefined;
      if (!o.gpuCounts?.failure) {
        try {
          found = await search.search(values, rows, view.cols, settings);
        } catch (e) {
          // A lost device or an out-of-memory error: this chunk and the rest run on the CPU, with
          // the same result; the report says what happened.
          if (o.gpuCounts) o.gpuCounts.failure = oneLine(e);
        }
      }
      if (found) {
        if (o.gpuCounts) {
          o.gpuCounts.groups += found.choices.length;
          o.gpuCounts.undecided += found.undecided;
          o.gpuCounts.candidates += found.choices.length * settings.grid;
          o.gpuCounts.rescored += found.rescored;
        }
        job = { ...job, found };
      }
    }
    inflight.push(pool.run(job).then((r) => ({ r, bytes })));
  };
  try {
    while (next < view.rows || inflight.length > 0) {
      if (o.signal?.aborted) throw new CancelledError('quantization cancelled; no output was written');
      while (next < view.rows && inflight.length < pool.depth) await submit();
      const { r, bytes } = await inflight.shift()!;
      await onResult(r, bytes);
    }
  } catch (e) {
    // Let jobs already submitted settle so none rejects unobserved.
    await Promise.allSettled(inflight);
    throw e;
  }
}
