/**
 * The overview grid of the panel: one row per transformer block, one column per kind of weight
 * (q, k, v, o, gate, up, down… read from the names), each cell the error statistics of that tensor
 * under the current settings. Cells are computed on worker threads, the blocks the user is looking at
 * first, results cached per settings, and work that is no longer wanted (settings changed, panel
 * closed) is cancelled.
 */
import * as l10n from '@vscode/l10n';
import { blockOf, groupBlocks } from '../../core/blocks';
import { CancelledError, oneLine } from '../../core/errors';
import type { Model, ModelTensor } from '../../core/model';
import type { QuantSettings } from '../../core/quant/settings';
import { emptyStats, finishStats, mergeStats } from '../../core/quant/stats';
import type { MatrixView } from '../../core/select';
import type { OpenModel } from '../../node/open-model';
import { PRIORITY, type JobPool } from '../../node/pool';
import { canEstimate, estimateTensorStats, type EstimateOptions } from '../../node/estimate-tensor';
import { streamTensor } from '../../node/stream-tensor';
import type { CellStats, NotifyWebview, OverviewLayout } from '../../shared/protocol';

/** Rows (blocks, then "other"), columns (kinds in order of first appearance) and the target cells. */
export function overviewLayout(model: Model, targets: ReadonlyMap<string, MatrixView>): OverviewLayout {
  const kinds: string[] = [];
  const rows: string[] = [];
  const rowBlocks: number[] = [];
  const cells: OverviewLayout['cells'] = [];
  const blockIndex = new Map<string, number>();
  for (const b of groupBlocks(model.tensors).blocks) for (const n of b.tensors) blockIndex.set(n, b.index);
  for (const t of model.tensors) {
    if (!targets.has(t.name)) continue;
    const ref = blockOf(t.name);
    const row = ref ? `${ref.stack === 'model.layers' ? '' : ref.stack + ' '}${ref.layer}` : 'other';
    const kind = (ref ? ref.rest : t.name).replace(/\.weight$/, '');
    if (!kinds.includes(kind)) kinds.push(kind);
    if (!rows.includes(row)) {
      rows.push(row);
      rowBlocks.push(blockIndex.get(t.name) ?? -1);
    }
    cells.push({ tensor: t.name, row, kind });
  }
  return { rows, rowBlocks, kinds, cells };
}

export function settingsKey(s: QuantSettings): string {
  return JSON.stringify(s);
}

/**
 * The grid's cells: first an estimate of every cell from a sample of its groups (seconds for a
 * large model; marked, with its interval), then each cell exactly, cheapest first — the rows the
 * webview says are on screen before the others, in both passes.
 */
export class OverviewComputer {
  private readonly cache = new Map<string, Map<string, CellStats>>();
  private running: AbortController | undefined;
  /** Cells still to estimate, and cells still to compute exactly (cheapest first). */
  private toEstimate: string[] = [];
  private toCompute: string[] = [];
  private readonly layout: OverviewLayout;
  /** The model's tensors by name (the grid looks each cell's up several times). */
  private readonly tensors: Map<string, ModelTensor>;

  constructor(
    private readonly opened: OpenModel,
    private readonly targets: ReadonlyMap<string, MatrixView>,
    /** The host's shared pool: cells run at the visible panel's priority, or in the background. */
    private readonly pool: JobPool,
    private readonly visible: () => boolean,
    private readonly notify: NotifyWebview,
    private readonly estimates: EstimateOptions = {},
    /**
     * The exact statistics of a cell on the panel's GPU, or undefined where it does not take this
     * cell (no adapter, the backend setting, the dtype); a rejection sends the rest to the CPU.
     */
    private readonly gpuCell?: (t: ModelTensor, view: MatrixView, settings: QuantSettings) => Promise<CellStats> | undefined,
  ) {
    this.layout = overviewLayout(opened.model, targets);
    this.tensors = new Map(opened.model.tensors.map((t) => [t.name, t]));
  }

  /** Shows the grid for `settings`: cached cells at once, the rest as they are computed. */
  start(settings: QuantSettings): void {
    this.running?.abort();
    const key = settingsKey(settings);
    let cells = this.cache.get(key);
    if (!cells) {
      if (this.cache.size > 8) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, (cells = new Map()));
    }
    this.notify('overview', { key, layout: this.layout, cells: Object.fromEntries(cells) });
    const known = cells;
    const tensors = this.layout.cells.map((c) => c.tensor);
    this.toEstimate = tensors.filter((t) => !known.has(t) && this.estimable(t));
    this.toCompute = tensors
      .filter((t) => !known.get(t) || known.get(t)!.estimate)
      .sort((a, b) => this.tensors.get(a)!.numel - this.tensors.get(b)!.numel);
    if (!this.toCompute.length) return;
    const ctl = new AbortController();
    this.running = ctl;
    void this.run(settings, key, cells, ctl.signal);
  }

  /** Moves a row's cells to the front of both queues (the webview reports what is on screen). */
  prioritize(row: string): void {
    const mine = new Set(this.layout.cells.filter((c) => c.row === row).map((c) => c.tensor));
    const first = (q: string[]) => [...q.filter((t) => mine.has(t)), ...q.filter((t) => !mine.has(t))];
    this.toEstimate = first(this.toEstimate);
    this.toCompute = first(this.toCompute);
  }

  private estimable(name: string): boolean {
    const t = this.tensors.get(name);
    return t !== undefined && canEstimate(t, this.targets.get(name)!);
  }

  private async run(settings: QuantSettings, key: string, cells: Map<string, CellStats>, signal: AbortSignal): Promise<void> {
    const post = (name: string, cell: CellStats) => {
      cells.set(name, cell);
      if (!signal.aborted) this.notify('cell', { key, tensor: name, stats: cell });
    };
    try {
      // Two cells at a time: one reads its tensor for the size pass here while the other's drawn
      // groups are quantized on the workers.
      const estimateNext = async () => {
        while (this.toEstimate.length && !signal.aborted) {
          const name = this.toEstimate.shift()!;
          const t = this.tensors.get(name)!;
          const est = await estimateTensorStats(this.opened, this.lane(signal), t, this.targets.get(name)!, settings, {
            ...this.estimates,
            signal,
          });
          const exact = est.groups >= est.of;
          post(name, {
            mse: est.mse,
            sqnrDb: Number.isFinite(est.sqnrDb.value) ? est.sqnrDb.value : null,
            residualEntropy: est.residualEntropy,
            scaleRatio: est.scaleRatio,
            clippedFraction: est.clippedFraction,
            ...(exact ? {} : { estimate: { groups: est.groups, of: est.of, sqnrDb: [est.sqnrDb.lo, est.sqnrDb.hi] } }),
          });
          // An estimate from every group is the exact value: nothing left to compute for this cell.
          if (exact) this.toCompute = this.toCompute.filter((x) => x !== name);
        }
      };
      await Promise.all([estimateNext(), estimateNext()]);
      let gpuFailed = false;
      while (this.toCompute.length && !signal.aborted) {
        const name = this.toCompute.shift()!;
        const t = this.tensors.get(name)!;
        const onGpu = gpuFailed ? undefined : this.gpuCell?.(t, this.targets.get(name)!, settings);
        if (onGpu) {
          try {
            post(name, await onGpu);
            continue;
          } catch (e) {
            if (signal.aborted) break;
            gpuFailed = true;
            this.notify('overviewStatus', { text: l10n.t('WebGPU failed ({0}); the grid goes on on the CPU', oneLine(e)) });
          }
        }
        const acc = emptyStats(settings.bits);
        await streamTensor(this.opened, this.lane(signal), t, this.targets.get(name)!, settings, { output: 'fake', signal }, (r) =>
          mergeStats(acc, r.stats),
        );
        const f = finishStats(acc);
        post(name, {
          mse: f.mse,
          sqnrDb: f.sqnrDb,
          residualEntropy: f.residualEntropy,
          scaleRatio: f.scaleRatio.mean,
          clippedFraction: f.clippedFraction,
        });
      }
    } catch (e) {
      if (!(e instanceof CancelledError)) this.notify('overviewStatus', { text: l10n.t('Overview: {0}', oneLine(e)) });
    }
  }

  /** Looked up per cell: a panel brought to the front gets the threads from the next cell on. */
  private lane(signal: AbortSignal) {
    return this.pool.lane(this.visible() ? PRIORITY.visible : PRIORITY.background, signal);
  }

  dispose(): void {
    this.running?.abort();
  }
}
