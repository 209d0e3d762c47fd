/**
 * The detail of one tensor for the panel: heatmap tiles (|W|, |residual|, squared error) and
 * per-channel statistics under the current settings and under round-to-nearest ("what DARE-Q
 * changed"), streamed through the worker pool; and, for one channel, the weight and residual
 * histograms and the loss curve L(s) over the K candidates with its two terms.
 */
import { decodeFloats, isQuantizableFloat } from '../../core/dtypes';
import { readRows, readTensor, type ModelTensor } from '../../core/model';
import { groupLength, traceGroup } from '../../core/quant/matrix';
import { candidateAt, candidateRange, makeTrace } from '../../core/quant/search';
import { resolveSettings, type QuantSettings } from '../../core/quant/settings';
import { emptyStats, finishStats, mergeStats } from '../../core/quant/stats';
import { emptyTiles, mergeTiles, tileGrid, tileMeans } from '../../core/quant/tiles';
import { transpose } from '../../core/quant/job';
import type { MatrixView } from '../../core/select';
import type { OpenModel } from '../../node/open-model';
import type { JobPool } from '../../node/pool';
import { streamTensor } from '../../node/stream-tensor';
import type { ChannelView, DetailSide, DetailView } from '../../shared/protocol';

async function side(
  opened: OpenModel,
  pool: JobPool,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  signal: AbortSignal,
  weights?: DetailView['weights'],
): Promise<DetailSide> {
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
  };
}

export async function computeDetail(
  opened: OpenModel,
  pool: JobPool,
  t: ModelTensor,
  view: MatrixView,
  settings: QuantSettings,
  signal: AbortSignal,
  backend: string,
): Promise<DetailView> {
  const started = performance.now();
  const grid = tileGrid(view.rows, view.cols);
  const weights = { absmax: new Float32Array(view.rows), kurtosis: new Float32Array(view.rows) };
  const main = await side(opened, pool, t, view, settings, signal, weights);
  const rtn =
    settings.method === 'rtn'
      ? undefined
      : await side(opened, pool, t, view, resolveSettings({ method: 'rtn', bits: settings.bits, groupSize: settings.groupSize }), signal);
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
  const groups = Math.max(1, Math.ceil(view.cols / g));
  const gi = Math.min(Math.max(0, group), groups - 1);
  const off = gi * g;
  const n = Math.min(g, view.cols - off);
  const part = values.subarray(off, off + n);
  const trace = makeTrace(settings.grid);
  const dareq = settings.method === 'dareq' ? { ...settings } : resolveSettings({ bits: settings.bits, groupSize: settings.groupSize });
  const chosen = traceGroup(part, 0, n, dareq, trace);
  let absmax = 0;
  for (let i = 0; i < n; i++) absmax = Math.max(absmax, Math.abs(part[i]));
  const [lo, hi] = candidateRange(absmax, dareq);
  const scale = chosen >= 0 ? candidateAt(chosen, dareq.grid, lo, hi) : 1;
  const qmax = dareq.ternary ? 1 : 2 ** (dareq.bits - 1) - 1;
  const qmin = dareq.ternary ? -1 : -(2 ** (dareq.bits - 1));
  const resid = Array.from(part, (x) => x - Math.min(qmax, Math.max(qmin, Math.floor(x / scale + 0.5))) * scale);
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
    rtnScale: absmax / qmax,
    normalize: dareq.normalize,
    lambdaWeight: dareq.lambdaWeight,
    lambdaEntropy: dareq.lambdaEntropy,
    bins: dareq.bins,
  };
}
