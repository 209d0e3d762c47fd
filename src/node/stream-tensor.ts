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

/** What a tensor's result handler gets: the job's result and the input bytes it covered. */
export type OnResult = (r: QuantJobResult, inputBytes: number) => Promise<void> | void;

/** One tensor to stream: the tensor, its matrix view, its settings and options. */
export interface StreamSpec {
  readonly t: ModelTensor;
  readonly view: MatrixView;
  readonly settings: QuantSettings;
  readonly o: StreamOptions;
}

/**
 * Jobs submitted and not yet consumed, across the tensors of a run: the bound on memory in flight
 * (each job at most CHUNK_WEIGHTS weights) that lets the next tensor's jobs start while this one's
 * results are still being written.
 */
export class JobWindow {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  private closed = false;

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  acquire(): Promise<void> {
    if (this.closed || this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }

  /** Lets every waiting and later acquire through: the run is stopping. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

interface Produced {
  r: QuantJobResult;
  bytes: number;
}

/**
 * One tensor through the job pool: a producer reads its chunks and submits them as the window
 * allows, ahead of the consumer, which hands results back in order.
 */
export class TensorStream {
  /** Submitted jobs, in row order; a failed read or GPU step is a rejected entry (the last). */
  private readonly results: Promise<Produced>[] = [];
  private wake: (() => void) | undefined;
  private finished = false;
  private stopped = false;
  private next = 0;
  /** A transposed (Conv1D) tensor's output channels are columns: it is processed whole. */
  private readonly rowsPerJob: number;
  /** Resolves when every chunk is submitted, or production stopped. */
  readonly submitted: Promise<void>;

  constructor(
    private readonly opened: OpenModel,
    private readonly pool: JobRunner,
    private readonly window: JobWindow,
    private readonly spec: StreamSpec,
  ) {
    const { t, view } = spec;
    if (!isQuantizableFloat(t.dtype)) throw new WeightlensError(`cannot quantize dtype ${t.dtype}`, opened.model.path, t.name);
    this.rowsPerJob = view.transposed ? view.rows : rowsPerJobOf(view.rows, view.cols, pool.threads);
    this.submitted = this.produce();
  }

  private async produce(): Promise<void> {
    const { view, o } = this.spec;
    try {
      while (this.next < view.rows && !this.stopped && !o.signal?.aborted) {
        await this.window.acquire();
        if (this.stopped) {
          this.window.release();
          break;
        }
        let p: Promise<Produced>;
        let failed = false;
        try {
          p = (await this.submit()).result;
        } catch (e) {
          p = Promise.reject(e as Error);
          failed = true;
        }
        // Observed by the consumer, or by stop(): never an unhandled rejection meanwhile.
        p.catch(() => undefined);
        this.results.push(p);
        this.wake?.();
        if (failed) break;
      }
    } finally {
      this.finished = true;
      this.wake?.();
    }
  }

  /** Reads the next chunk, lets the GPU rank its candidates where one searches, submits it. */
  private async submit(): Promise<{ result: Promise<Produced> }> {
    const { t, view, settings, o } = this.spec;
    const dtype = t.dtype as QuantizableFloat;
    const file = this.opened.source(t.file);
    const r0 = this.next;
    const rows = Math.min(this.rowsPerJob, view.rows - r0);
    this.next += rows;
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
    // Wrapped: an async function's returned promise would be awaited, and the producer with it.
    return { result: this.pool.run(job).then((r) => ({ r, bytes })) };
  }

  /** Hands every result to `onResult`, in row order; on any failure stops the producer first. */
  async consume(onResult: OnResult): Promise<void> {
    const signal = this.spec.o.signal;
    try {
      for (;;) {
        if (signal?.aborted) throw new CancelledError('quantization cancelled; no output was written');
        const p = this.results.shift();
        if (!p) {
          if (this.finished) return;
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        let got: Produced;
        try {
          got = await p;
        } finally {
          this.window.release();
        }
        await onResult(got.r, got.bytes);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops submitting and lets every submitted job settle (none rejects unobserved). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.submitted;
    const rest = this.results.splice(0);
    await Promise.allSettled(rest);
    for (let i = 0; i < rest.length; i++) this.window.release();
  }
}

/**
 * The quantized tensors of one output file, streamed in order with one window: tensor i + 1's
 * producer starts when tensor i's has submitted its last chunk, so the workers keep busy while the
 * writer copies unquantized tensors and writes results (one producer at a time: the consumer's
 * tensor never waits on a window held by later tensors' jobs).
 */
export class StreamChain {
  private readonly window: JobWindow;
  private readonly streams = new Map<number, TensorStream>();
  private readonly started = new Map<number, Promise<TensorStream>>();
  private stopped = false;

  /** `specs[i]`: the i-th entry of the file, or undefined where it is not quantized. */
  constructor(opened: OpenModel, pool: JobRunner, specs: readonly (StreamSpec | undefined)[]) {
    this.window = new JobWindow(pool.depth);
    let previous: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i];
      if (!spec) continue;
      const start = previous.then(() => {
        if (this.stopped) throw new CancelledError('stopped');
        const s = new TensorStream(opened, pool, this.window, spec);
        this.streams.set(i, s);
        return s;
      });
      this.started.set(i, start);
      previous = start.then((s) => s.submitted);
      // Rejected once the chain stops: consume() and the next start observe it, or nothing does.
      start.catch(() => undefined);
      previous.catch(() => undefined);
    }
  }

  /** Entry i's results, in order (entry i must be one of the specs). */
  async consume(i: number, onResult: OnResult): Promise<void> {
    const start = this.started.get(i);
    if (!start) throw new Error(`internal: entry ${i} is not streamed`);
    await (await start).consume(onResult);
  }

  /** Stops every producer and lets their jobs settle: call once the file is written or has failed. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.window.close();
    await Promise.allSettled([...this.streams.values()].map((s) => s.stop()));
  }
}

/** One tensor, its results in order (the panel's statistics and tests: nothing ahead to overlap). */
export async function streamTensor(
  opened: OpenModel,
  pool: JobRunner,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  o: StreamOptions,
  onResult: OnResult,
): Promise<void> {
  await new TensorStream(opened, pool, new JobWindow(pool.depth), { t, view, settings, o }).consume(onResult);
}
