/**
 * The panel showing a comparison (Compare Weights) instead of a quantization: the overview grid's
 * cells are the compared tensors' statistics, and a tensor's detail has the |A - B| heatmaps and the
 * per-channel error of B against this model — the same views, other numbers.
 */
import { rowMoments } from '../../core/quant/stats';
import { addTiles, emptyTiles, mergeTiles, tileGrid, tileMeans } from '../../core/quant/tiles';
import type { Comparison } from '../../node/compare';
import { forEachRowPair } from '../../node/compare';
import type { CellStats, DetailView, OverviewLayout } from '../../shared/protocol';
import { overviewLayout } from './overview';
import type { Model } from '../../core/model';
import type { InspectSummary } from '../../core/inspect';

export interface PanelComparison {
  /** The compared checkpoint (B); this panel's model is A. */
  readonly other: string;
  readonly name: string;
  readonly comparison: Comparison;
}

/** The grid of a comparison: the compared matrices (2-D, in both checkpoints) of this model. */
export function comparisonOverview(model: Model, c: Comparison): { layout: OverviewLayout; cells: Record<string, CellStats> } {
  const compared = new Map(c.tensors.filter((t) => t.shape[0] > 1).map((t) => [t.name, t]));
  const targets = new Map([...compared.values()].map((t) => [t.name, { rows: t.shape[0], cols: t.shape[1], transposed: false }]));
  const layout = overviewLayout(model, targets);
  const cells: Record<string, CellStats> = {};
  for (const t of compared.values())
    cells[t.name] = { mse: t.mse, sqnrDb: t.sqnrDb, maxAbs: t.maxAbs, relative: t.relative, cosine: t.cosine };
  return { layout, cells };
}

/** A tensor's detail for a comparison: heatmaps of |A|, |A - B|, (A - B)^2 and the error per channel. */
export async function comparisonDetail(modelPath: string, pc: PanelComparison, tensor: string, signal: AbortSignal): Promise<DetailView> {
  const started = performance.now();
  const t = pc.comparison.tensors.find((x) => x.name === tensor);
  if (!t) throw new Error(`${tensor} is not one of the compared tensors`);
  const [rows, cols] = t.shape;
  const grid = tileGrid(rows, cols);
  const tiles = emptyTiles(grid);
  const mse = new Float32Array(rows);
  const absmax = new Float32Array(rows);
  const kurtosis = new Float32Array(rows);
  let e2 = 0;
  let a2 = 0;
  await forEachRowPair(
    modelPath,
    pc.other,
    tensor,
    (a, b, r0, n, c) => {
      const part = emptyTiles(grid);
      addTiles(part, grid, a, b, n, c, r0);
      mergeTiles(tiles, part);
      for (let r = 0; r < n; r++) {
        let rowE2 = 0;
        for (let i = r * c; i < (r + 1) * c; i++) {
          const d = a[i] - b[i];
          rowE2 += d * d;
          a2 += a[i] * a[i];
        }
        e2 += rowE2;
        mse[r0 + r] = rowE2 / c;
        const m = rowMoments(a, r * c, c);
        absmax[r0 + r] = m.absmax;
        kurtosis[r0 + r] = m.kurtosis;
      }
    },
    signal,
  );
  const zeros = new Float32Array(rows);
  return {
    tensor,
    shape: [rows, cols],
    rows,
    cols,
    grid: { rows: grid.rows, cols: grid.cols, rowStep: grid.rowStep, colStep: grid.colStep },
    main: {
      method: 'compare',
      label: pc.name,
      tiles: tileMeans(tiles),
      channels: { mse, entropy: zeros, scaleRatio: zeros, clipped: zeros },
      sqnrDb: e2 === 0 ? null : 10 * Math.log10(a2 / e2),
      mse: e2 / (rows * cols),
    },
    weights: { absmax, kurtosis },
    backend: 'CPU (extension host)',
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * A compressed-tensors checkpoint as its user thinks of it: each `<m>.weight_packed` with its
 * scale, zero point and shape shown as one `<m>.weight` of type "int4 g128" (bytes of all parts),
 * and the totals by type recomputed. Other checkpoints are returned as they are.
 */
export function presentQuantized(
  summary: InspectSummary,
  packed: ReadonlyMap<string, { rows: number; cols: number; type: string; bytes: number }>,
): InspectSummary {
  if (packed.size === 0) return summary;
  const partOf = (name: string) => {
    const m = /^(.*)\.weight_(packed|scale|zero_point|shape)$/.exec(name);
    return m && packed.has(`${m[1]}.weight`) ? { module: `${m[1]}.weight`, main: m[2] === 'packed' } : undefined;
  };
  const tensors: InspectSummary['tensors'] = [];
  for (const t of summary.tensors) {
    const p = partOf(t.name);
    if (!p) tensors.push(t);
    else if (p.main) {
      const q = packed.get(p.module)!;
      tensors.push({ name: p.module, dtype: q.type, shape: [q.rows, q.cols], bytes: q.bytes, file: t.file });
    }
  }
  const rename = (names: string[]) =>
    names.flatMap((n) => {
      const p = partOf(n);
      return !p ? [n] : p.main ? [p.module] : [];
    });
  const byDtype: InspectSummary['byDtype'] = {};
  for (const t of tensors) {
    const d = (byDtype[t.dtype] ??= { params: 0, bytes: 0 });
    d.params += t.shape.reduce((a, x) => a * x, 1);
    d.bytes += t.bytes;
  }
  return {
    ...summary,
    tensors,
    byDtype,
    totalParams: tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0),
    blocks: summary.blocks.map((b) => ({ ...b, tensors: rename(b.tensors) })),
    other: rename(summary.other),
  };
}
