/**
 * The detail of one tensor for the panel: heatmap tiles (|W|, |residual|, squared error) and
 * per-channel statistics under the current settings and under round-to-nearest ("what DARE-Q
 * changed"), streamed through the worker pool; and, for one channel, the weight and residual
 * histograms and the loss curve L(s) over the K candidates with its two terms.
 */
import { decodeFloats, isQuantizableFloat } from '../../core/dtypes';
import { readRows, readTensor, type ModelTensor } from '../../core/model';
import { groupLength, groupsPerRow, quantizeMatrix, traceGroup, traceZeroGroup } from '../../core/quant/matrix';
import { absmaxCode, makeTrace, scaleSign } from '../../core/quant/search';
import { resolveSettings, type QuantSettings } from '../../core/quant/settings';
import { emptyStats, finishStats, mergeStats } from '../../core/quant/stats';
import { emptyTiles, mergeTiles, tileGrid, tileMeans } from '../../core/quant/tiles';
import { transpose } from '../../core/quant/job';
import type { MatrixView } from '../../core/select';
import type { OpenModel } from '../../node/open-model';
import type { JobRunner } from '../../node/pool';
import { streamTensor } from '../../node/stream-tensor';
import { MAX_READ_BYTES, type ChannelView, type DetailSide, type DetailView, type GpuDetailJob } from '../../shared/protocol';

/** The tensor a CPU detail reads, and the workers and signal it runs with. */
export interface DetailSource {
  opened: OpenModel;
  pool: JobRunner;
  t: ModelTensor;
  view: MatrixView;
  signal: AbortSignal;
}

async function side(src: DetailSource, settings: QuantSettings, weights?: DetailView['weights']): Promise<DetailSide> {
  const { opened, pool, t, view, signal } = src;
  const grid = tileGrid(view.rows, view.cols);
  const tiles = emptyTiles(grid);
  const stats = emptyStats(settings.bits);
  const mse = new Float32Array(view.rows);
  const entropy = new Float32Array(view.rows);
  const scaleRatio = new Float32Array(view.rows);
  const clipped = new Float32Array(view.rows);
  let row = 0;
  await streamTensor(opened, pool, t, view, settings, { output: 'fake', signal, channelStats: true, tiles: grid }, (r) => {
    mergeStats(stats, r.stats);
    if (r.tiles) mergeTiles(tiles, r.tiles);
    const ch = r.channels!;
    mse.set(ch.mse, row);
    entropy.set(ch.entropy, row);
    scaleRatio.set(ch.scaleRatio, row);
    clipped.set(ch.clipped, row);
    weights?.absmax.set(ch.absmax, row);
    weights?.kurtosis.set(ch.kurtosis, row);
    row += ch.mse.length;
  });
  const f = finishStats(stats);
  return {
    method: settings.method,
    tiles: tileMeans(tiles),
    channels: { mse, entropy, scaleRatio, clipped },
    sqnrDb: f.sqnrDb,
    mse: f.mse,
    totals: { residualEntropy: f.residualEntropy, scaleRatio: f.scaleRatio.mean, clippedFraction: f.clippedFraction },
  };
}

/** The detail as a job for the panel's GPU: the webview pulls the tensor's rows block by block. */
export function gpuDetailJob(t: ModelTensor, view: MatrixView, settings: QuantSettings): GpuDetailJob {
  const grid = tileGrid(view.rows, view.cols);
  const rowBytes = t.byteLength / view.rows;
  return {
    tensor: t.name,
    shape: [...t.shape],
    dtype: t.dtype as GpuDetailJob['dtype'],
    rows: view.rows,
    cols: view.cols,
    grid: { rows: grid.rows, cols: grid.cols, rowStep: grid.rowStep, colStep: grid.colStep },
    // 4 MB blocks: the webview's share of the work between two GPU round trips (decoding, the
    // near-tie groups' contenders scored in float64) stays short, so the panel never freezes.
    blockRows: Math.max(1, Math.floor(Math.min(MAX_READ_BYTES, 4 << 20) / rowBytes)),
    main: settings,
    rtn: rtnBeside(settings),
  };
}

/** Round-to-nearest at the same bits and group size: the detail's comparison side (none for RTN itself). */
function rtnBeside(settings: QuantSettings): QuantSettings | undefined {
  return settings.method === 'rtn' ? undefined : resolveSettings({ method: 'rtn', bits: settings.bits, groupSize: settings.groupSize });
}

export async function computeDetail(src: DetailSource, settings: QuantSettings, backend: string): Promise<DetailView> {
  const { t, view } = src;
  const started = performance.now();
  const grid = tileGrid(view.rows, view.cols);
  const weights = { absmax: new Float32Array(view.rows), kurtosis: new Float32Array(view.rows) };
  const main = await side(src, settings, weights);
  const rtnSettings = rtnBeside(settings);
  const rtn = rtnSettings && (await side(src, rtnSettings));
  return {
    tensor: t.name,
    shape: [...t.shape],
    rows: view.rows,
    cols: view.cols,
    grid: { rows: grid.rows, cols: grid.cols, rowStep: grid.rowStep, colStep: grid.colStep },
    main,
    rtn,
    weights,
    backend,
    seconds: (performance.now() - started) / 1000,
  };
}

function histogram(values: ArrayLike<number>, bins: number): { lo: number; hi: number; counts: number[] } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const counts = new Array<number>(bins).fill(0);
  if (!(hi > lo)) {
    counts[0] = values.length;
    return { lo, hi, counts };
  }
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor(((values[i] - lo) / (hi - lo)) * bins))]++;
  return { lo, hi, counts };
}

/** One channel (and one group of it): its weights, the residual histogram at the chosen scale, and L(s). */
export async function computeChannel(
  opened: OpenModel,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  row: number,
  group: number,
): Promise<ChannelView> {
  if (!isQuantizableFloat(t.dtype)) throw new Error(`cannot quantize dtype ${t.dtype}`);
  const src = opened.source(t.file);
  let values: Float32Array | Float64Array;
  if (view.transposed || t.shape.length < 2) {
    let all = decodeFloats(t.dtype, await readTensor(src, t));
    if (view.transposed) all = transpose(all, view.cols, view.rows);
    values = all.subarray(row * view.cols, (row + 1) * view.cols);
  } else values = decodeFloats(t.dtype, await readRows(src, t, row, 1));
  const g = groupLength(settings.groupSize, view.cols);
  const groups = groupsPerRow(view.cols, settings.groupSize);
  const gi = Math.min(Math.max(0, group), groups - 1);
  const off = gi * g;
  const n = Math.min(g, view.cols - off);
  const part = Float64Array.from(values.subarray(off, off + n));
  // The loss curve of DARE-Q's search over this group (for RTN: of DARE-Q at the same bits).
  const trace = makeTrace(settings.grid);
  const dareq =
    settings.method === 'dareq'
      ? settings
      : resolveSettings({
          bits: settings.bits,
          groupSize: settings.groupSize,
          symmetric: settings.symmetric,
          signAware: settings.signAware,
        });
  // With a zero point: the 2-D choice, drawn along the scale axis at the chosen zero point.
  const zero = dareq.symmetric ? undefined : traceZeroGroup(part, 0, n, dareq, 'integer', trace);
  const chosen = dareq.symmetric ? traceGroup(part, 0, n, dareq, trace) : (zero?.index ?? -1);
  // The residual of what a quantize run writes for this group: the engine's own quantization
  // (its rounding, the scale rounded to the dtype), on the group alone.
  const written = Float64Array.from(part);
  quantizeMatrix(written, 1, n, { settings: { ...settings, groupSize: 0 }, dtype: t.dtype, tensor: t.name });
  const resid = Array.from(part, (x, i) => x - written[i]);
  let absmax = 0;
  for (let i = 0; i < n; i++) absmax = Math.max(absmax, Math.abs(part[i]));
  const sign = scaleSign({ w: part, off: 0, n, absmax }, dareq);
  return {
    tensor: t.name,
    row,
    group: gi,
    groups,
    weights: histogram(part, 64),
    residual: histogram(resid, dareq.bins),
    scales: Array.from(trace.scales),
    l2: Array.from(trace.l2),
    entropy: Array.from(trace.entropy),
    loss: Array.from(trace.loss),
    chosen,
    rtnScale: zero ? zero.rtnScale : absmax / absmaxCode(dareq),
    ...(zero ? { zero: { kind: 'integer' as const, point: zero.grid.zero, offset: zero.offset } } : {}),
    ...(sign < 0 ? { sign } : {}),
    normalize: dareq.normalize,
    lambdaWeight: dareq.lambdaWeight,
    lambdaEntropy: dareq.lambdaEntropy,
    bins: dareq.bins,
  };
}
