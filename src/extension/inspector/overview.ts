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
import type { Model } from '../../core/model';
import type { QuantSettings } from '../../core/quant/settings';
import { emptyStats, finishStats, mergeStats } from '../../core/quant/stats';
import type { MatrixView } from '../../core/select';
import type { OpenModel } from '../../node/open-model';
import { PRIORITY, type JobPool } from '../../node/pool';
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

export class OverviewComputer {
  private readonly cache = new Map<string, Map<string, CellStats>>();
  private running: AbortController | undefined;
  private queue: string[] = [];
  private readonly layout: OverviewLayout;

  constructor(
    private readonly opened: OpenModel,
    private readonly targets: ReadonlyMap<string, MatrixView>,
    /** The host's shared pool: cells run at the visible panel's priority, or in the background. */
    private readonly pool: JobPool,
    private readonly visible: () => boolean,
    private readonly notify: NotifyWebview,
  ) {
    this.layout = overviewLayout(opened.model, targets);
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
    this.queue = this.layout.cells.map((c) => c.tensor).filter((t) => !cells!.has(t));
    if (!this.queue.length) return;
    const ctl = new AbortController();
    this.running = ctl;
    void this.run(settings, key, cells, ctl.signal);
  }

  /** Moves a row's cells to the front of the queue (the webview reports what is on screen). */
  prioritize(row: string): void {
    const mine = new Set(this.layout.cells.filter((c) => c.row === row).map((c) => c.tensor));
    this.queue = [...this.queue.filter((t) => mine.has(t)), ...this.queue.filter((t) => !mine.has(t))];
  }

  private async run(settings: QuantSettings, key: string, cells: Map<string, CellStats>, signal: AbortSignal): Promise<void> {
    try {
      while (this.queue.length && !signal.aborted) {
        // Looked up per cell: a panel brought to the front gets the threads from the next cell on.
        const pool = this.pool.lane(this.visible() ? PRIORITY.visible : PRIORITY.background, signal);
        const name = this.queue.shift()!;
        const t = this.opened.model.tensors.find((x) => x.name === name)!;
        const acc = emptyStats(settings.bits);
        await streamTensor(this.opened, pool, t, this.targets.get(name)!, settings, { output: 'fake', signal }, (r) =>
          mergeStats(acc, r.stats),
        );
        const f = finishStats(acc);
        const cell: CellStats = {
          mse: f.mse,
          sqnrDb: f.sqnrDb,
          residualEntropy: f.residualEntropy,
          scaleRatio: f.scaleRatio.mean,
          clippedFraction: f.clippedFraction,
        };
        cells.set(name, cell);
        if (!signal.aborted) this.notify('cell', { key, tensor: name, stats: cell });
      }
    } catch (e) {
      if (!(e instanceof CancelledError)) this.notify('overviewStatus', { text: l10n.t('Overview: {0}', oneLine(e)) });
    }
  }

  dispose(): void {
    this.running?.abort();
  }
}
