/**
 * WebGPU in the panel: the same runners (src/compute/webgpu) the CLI and the tests use on Dawn, here
 * on the webview's navigator.gpu. The host sends a job; this pulls the tensor's rows in blocks
 * (readRows), runs the search and the quantize kernels, and builds the detail view it then shows —
 * so a large tensor's work never blocks the extension host or this page's UI thread.
 */
import * as l10n from '@vscode/l10n';
import { detailSidesOnGpu, rowBlocks, type RowBlock } from '../../src/compute/gpu-detail';
import { openDevice } from '../../src/compute/webgpu/device';
import { WebGpuQuantizer } from '../../src/compute/webgpu/quantize';
import { WebGpuSearch } from '../../src/compute/webgpu/search';
import { decodeFloats } from '../../src/core/dtypes';
import type { CellStats, DetailView, GpuDetailJob, GpuSearchBody, GpuSearchReply } from '../../src/shared/protocol';
import { byId } from './dom';
import { host } from './host';
import { ScalesPool } from './scales-pool';

// This bundle's own URL, known only while it first runs: the scales worker sits beside it.
const WORKER_URL = (document.currentScript as HTMLScriptElement | null)?.src.replace(/inspector\.js(\?.*)?$/, 'scales-worker.js');

export interface PanelGpu {
  device: GPUDevice;
  search: WebGpuSearch;
  quantizer: WebGpuQuantizer;
  adapter: string;
  /** A software adapter (SwiftShader and the like): correct, but slower than the CPU workers. */
  fallback: boolean;
  /** Web workers for the CPU's share (undefined where they cannot start: that share then runs here). */
  pool?: ScalesPool;
}

let opening: Promise<PanelGpu | string> | undefined;

/** The panel's GPU, or why there is none (a one-line reason). Opened once. */
export function panelGpu(): Promise<PanelGpu | string> {
  opening ??= open().catch((e: unknown) => l10n.t('WebGPU failed to start: {0}', e instanceof Error ? e.message : String(e)));
  return opening;
}

async function open(): Promise<PanelGpu | string> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return l10n.t('navigator.gpu is missing (WebGPU is off in this VS Code)');
  const opened = await openDevice(gpu);
  if (typeof opened === 'string') return opened;
  const { device, description: name, isFallback: fallback } = opened;
  const search = new WebGpuSearch(device, name);
  // One worker per core but one (this page keeps one), at most 8.
  const size = Math.max(1, Math.min(8, (navigator.hardwareConcurrency || 2) - 1));
  const pool = WORKER_URL
    ? await ScalesPool.start(WORKER_URL, size).catch((e: unknown) => console.warn(`weightlens: no scales workers (${String(e)})`))
    : undefined;
  return { device, search, quantizer: new WebGpuQuantizer(device, search), adapter: name, fallback, pool: pool ?? undefined };
}

export class Superseded extends Error {}

let queue: Promise<unknown> = Promise.resolve();

/** Runs GPU work one piece at a time (a detail job, a quantize block): error scopes never interleave. */
export function serial<T>(work: () => Promise<T>): Promise<T> {
  const run = queue.then(work, work);
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Computes a detail job on the panel's GPU. `read(start, count)` returns the stored bytes of rows
 * [start, start + count); `current()` turns false when a newer job replaces this one.
 */
export async function computeDetailOnGpu(
  gpu: PanelGpu,
  job: GpuDetailJob,
  read: (start: number, count: number) => Promise<ArrayBuffer>,
  current: () => boolean,
): Promise<DetailView> {
  const started = performance.now();
  const maxRows = Math.min(job.blockRows, gpu.quantizer.maxRows(job.cols));
  // Each block is read once, for both sides, and the next one is already being read (from the
  // host, through readRows) while the GPU and the workers work on this one.
  async function* blocks(): AsyncGenerator<RowBlock> {
    const fetchRows = (r0: number) => (r0 < job.rows ? read(r0, Math.min(maxRows, job.rows - r0)) : undefined);
    let pending = fetchRows(0);
    for (let r0 = 0; r0 < job.rows; r0 += maxRows) {
      if (!current()) throw new Superseded();
      const n = Math.min(maxRows, job.rows - r0);
      const bytes = await pending!;
      pending = fetchRows(r0 + maxRows);
      pending?.catch(() => undefined); // observed below, or dropped with a superseded job
      const values = decodeFloats(job.dtype, new Uint8Array(bytes)) as Float32Array;
      for (const b of rowBlocks(values, n, job.cols, maxRows)) yield { ...b, rowBase: r0 + b.rowBase };
    }
  }
  const weights = { absmax: new Float32Array(job.rows), kurtosis: new Float32Array(job.rows) };
  const [main, rtn] = await detailSidesOnGpu(gpu.quantizer, blocks(), {
    rows: job.rows,
    cols: job.cols,
    dtype: job.dtype,
    sides: job.rtn ? [job.main, job.rtn] : [job.main],
    grid: job.grid,
    weights,
    scales: gpu.pool?.scales,
  });
  return {
    tensor: job.tensor,
    shape: job.shape,
    rows: job.rows,
    cols: job.cols,
    grid: job.grid,
    main,
    rtn,
    weights,
    backend: gpu.pool ? l10n.t('WebGPU ({0}) and {1} web workers', gpu.adapter, gpu.pool.size) : l10n.t('WebGPU ({0})', gpu.adapter),
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * The host's detailGpu request: computes the detail on this panel's GPU and shows it with `show`.
 * `generations` counts the panel's detail requests: a newer one supersedes this job (the reply
 * says so). A rejection sends the host to the CPU.
 */
export async function answerDetailGpu(
  job: GpuDetailJob,
  generations: { begin: () => number; current: () => number },
  show: (d: DetailView) => void,
): Promise<{ seconds: number; superseded: boolean }> {
  const mine = generations.begin();
  const generation = generations.current;
  const started = performance.now();
  const superseded = () => ({ seconds: (performance.now() - started) / 1000, superseded: true });
  try {
    const gpu = await panelGpu();
    if (typeof gpu === 'string') throw new Error(gpu);
    const read = async (start: number, count: number) => (await host().request('readRows', { tensor: job.tensor, start, count })).bytes;
    const d = await serial(() => computeDetailOnGpu(gpu, job, read, () => mine === generation()));
    if (mine !== generation()) return superseded();
    show(d);
    return { seconds: d.seconds, superseded: false };
  } catch (e) {
    if (e instanceof Superseded || mine !== generation()) return superseded();
    const status = byId('detail-status');
    if (status) status.textContent = l10n.t('WebGPU failed ({0}); computing on the CPU…', e instanceof Error ? e.message : String(e));
    throw e;
  }
}

/** The host's cellGpu request: one overview cell's exact statistics on this panel's GPU. */
export async function answerCellGpu(job: GpuDetailJob): Promise<CellStats> {
  const gpu = await panelGpu();
  if (typeof gpu === 'string') throw new Error(gpu);
  const read = async (start: number, count: number) => (await host().request('readRows', { tensor: job.tensor, start, count })).bytes;
  // Never superseded: a cell is wanted until the host cancels the whole grid.
  const d = await serial(() => computeDetailOnGpu(gpu, { ...job, rtn: undefined }, read, () => true));
  const totals = d.main.totals!;
  return { mse: d.main.mse, sqnrDb: d.main.sqnrDb, ...totals, computedOn: d.backend };
}

/** The host's gpuSearch request (a quantize run borrowing this panel's GPU): one block's choices. */
export async function answerGpuSearch(body: GpuSearchBody): Promise<GpuSearchReply> {
  const gpu = await panelGpu();
  if (typeof gpu === 'string') throw new Error(gpu);
  const found = await serial(() => gpu.search.search(new Float32Array(body.values), body.rows, body.cols, body.settings));
  if (!found) throw new Error(l10n.t('these settings do not run on WebGPU'));
  return found;
}
