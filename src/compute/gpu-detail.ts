/**
 * One side of the panel's tensor detail (heatmap tiles, per-channel charts, totals) computed on
 * WebGPU, block by block — the numbers src/extension/inspector/detail.ts gets from the CPU workers.
 * Codes and scales are the CPU's exactly; the error sums are f32 on the GPU (the parity suite
 * states the tolerances). Runs wherever a GPUDevice does: the inspector webview, Node, tests.
 */
import type { QuantizableFloat } from '../core/dtypes';
import { groupLength, groupsPerRow } from '../core/quant/matrix';
import { qRange, type QuantSettings } from '../core/quant/settings';
import { addGroupErrors, emptyRowErrors, writeRowErrors } from '../core/quant/stats';
import { tileMeans, type TileGrid } from '../core/quant/tiles';
import type { DetailSide } from '../shared/protocol';
import type { BlockResult, ScalesFromChoices, WebGpuQuantizer } from './webgpu/quantize';

export interface RowBlock {
  values: Float32Array;
  rowBase: number;
  rows: number;
}

/** One side's running sums over the blocks: tiles, per-channel charts, totals. */
class SideSums {
  private readonly gpr: number;
  private readonly g: number;
  private readonly qmax: number;
  private readonly sums: { absW: Float64Array; absE: Float64Array; sqE: Float64Array; count: Float64Array };
  private readonly channels: DetailSide['channels'];
  private sumW2 = 0;
  private sumE2 = 0;
  /** For the totals: Σ entropy x n, Σ chosen/absmax scale over non-zero groups and their count, Σ clipped. */
  private entropyWeighted = 0;
  private ratioSum = 0;
  private ratioGroups = 0;
  private clipped = 0;

  constructor(
    readonly s: QuantSettings,
    private readonly rows: number,
    private readonly cols: number,
    grid: TileGrid,
  ) {
    this.gpr = groupsPerRow(cols, s.groupSize);
    this.g = groupLength(s.groupSize, cols);
    this.qmax = qRange(s.bits, s.ternary).qmax;
    const nTiles = grid.rows * grid.cols;
    this.sums = {
      absW: new Float64Array(nTiles),
      absE: new Float64Array(nTiles),
      sqE: new Float64Array(nTiles),
      count: new Float64Array(nTiles),
    };
    this.channels = {
      mse: new Float32Array(rows),
      entropy: new Float32Array(rows),
      scaleRatio: new Float32Array(rows),
      clipped: new Float32Array(rows),
    };
  }

  add(r: BlockResult, b: RowBlock): void {
    const { sums, channels, gpr, g, cols, qmax } = this;
    for (let i = 0; i < sums.count.length; i++) {
      sums.absW[i] += r.tiles![4 * i];
      sums.absE[i] += r.tiles![4 * i + 1];
      sums.sqE[i] += r.tiles![4 * i + 2];
      sums.count[i] += r.tiles![4 * i + 3];
    }
    for (let row = 0; row < b.rows; row++) {
      const errors = emptyRowErrors();
      for (let gi = 0; gi < gpr; gi++) {
        const at = row * gpr + gi;
        this.sumW2 += r.sumW2[at];
        // An all-zero group has no error and no ratio (as on the CPU).
        const nonzero = r.absmax[at] > 0 ? { entropy: r.entropy[at], ratio: Math.abs(r.scales[at]) / (r.absmax[at] / qmax) } : undefined;
        const n = Math.min(g, cols - gi * g);
        addGroupErrors(errors, n, r.sumE2[at], r.clipped[at], nonzero);
        this.clipped += r.clipped[at];
        if (nonzero) {
          this.entropyWeighted += nonzero.entropy * n;
          this.ratioSum += nonzero.ratio;
          this.ratioGroups++;
        }
      }
      this.sumE2 += errors.e2;
      writeRowErrors(errors, cols, channels, b.rowBase + row);
    }
  }

  finish(): DetailSide {
    const { sumW2, sumE2 } = this;
    return {
      method: this.s.method,
      tiles: tileMeans(this.sums),
      channels: this.channels,
      sqnrDb: sumE2 === 0 ? null : 10 * Math.log10(sumW2 / sumE2),
      mse: sumE2 / Math.max(1, this.rows * this.cols),
      totals: {
        residualEntropy: this.entropyWeighted / Math.max(1, this.rows * this.cols),
        scaleRatio: this.ratioGroups ? this.ratioSum / this.ratioGroups : 1,
        clippedFraction: this.clipped / Math.max(1, this.rows * this.cols),
      },
    };
  }
}

/**
 * The detail's sides (DARE-Q and RTN beside it) in one pass over the blocks: each block is read
 * once and quantized with each side's settings — reading the tensor is what a large detail waits
 * on, so it must not be read once per side.
 */
export interface DetailSidesJob {
  rows: number;
  cols: number;
  dtype: QuantizableFloat;
  /** One side per settings (DARE-Q, and RTN beside it). */
  sides: readonly QuantSettings[];
  grid: TileGrid;
  /** Filled per row with the weights' absmax and kurtosis when given. */
  weights?: { absmax: Float32Array; kurtosis: Float32Array };
  /** The CPU's share of the scales (default: on this thread). */
  scales?: ScalesFromChoices;
}

export async function detailSidesOnGpu(
  q: WebGpuQuantizer,
  blocks: AsyncIterable<RowBlock> | Iterable<RowBlock>,
  job: DetailSidesJob,
): Promise<DetailSide[]> {
  const { rows, cols, sides, dtype, grid, weights, scales } = job;
  const sums = sides.map((s) => new SideSums(s, rows, cols, grid));
  for await (const b of blocks) {
    for (const [i, side] of sums.entries()) {
      const moments = weights && i === 0;
      const r = await q.quantizeBlock(b.values, b.rows, cols, side.s, dtype, {
        tiles: { grid, rowBase: b.rowBase },
        moments: moments ? 'rows' : undefined,
        scales,
      });
      if (moments) {
        for (let row = 0; row < b.rows; row++) {
          weights.absmax[b.rowBase + row] = r.moments![4 * row];
          weights.kurtosis[b.rowBase + row] = r.moments![4 * row + 3];
        }
      }
      side.add(r, b);
    }
  }
  return sums.map((s) => s.finish());
}

/** A [rows, cols] matrix in memory as blocks of at most `maxRows` rows. */
export function* rowBlocks(values: Float32Array, rows: number, cols: number, maxRows: number): Generator<RowBlock> {
  for (let r0 = 0; r0 < rows; r0 += maxRows) {
    const n = Math.min(maxRows, rows - r0);
    yield { values: values.subarray(r0 * cols, (r0 + n) * cols), rowBase: r0, rows: n };
  }
}
