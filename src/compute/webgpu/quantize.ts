/**
 * The WebGPU runner of shaders/quantize_apply.wgsl on any GPUDevice: a block of rows in, per group
 * its stored scale and error terms out (plus, on request, codes, dequantized values, packed words and
 * heatmap tile sums). The scales are chosen in between, in float64 on the host, from the exact
 * group absmax and the search's choices (src/core/quant/scales.ts), so codes and dequantized values
 * are bit for bit the CPU's.
 */
import shaderSource from '../../../shaders/quantize_apply.wgsl';
import type { QuantizableFloat } from '../../core/dtypes';
import { groupLength, groupsPerRow } from '../../core/quant/matrix';
import { scalesFromChoices } from '../../core/quant/scales';
import { qRange, type QuantSettings } from '../../core/quant/settings';
import type { TileGrid } from '../../core/quant/tiles';
import { gpuRuns, gpuSearches, type SearchChoices } from '../backend';
import { encodeDispatch } from './pipelines';
import { GpuRunner } from './runner';
import type { WebGpuSearch } from './search';
import { APPLY_PARAMS, type FieldsOf } from './uniforms';

const WG = 64;
const DTYPE_CODE: Partial<Record<QuantizableFloat, number>> = { F32: 0, F16: 1, BF16: 2 };
type Entry = 'group_stats' | 'apply' | 'tiles' | 'pack' | 'moments';
/** The bindings each entry point uses (layout 'auto' holds only those). */
const BINDINGS: Record<Entry, number[]> = {
  group_stats: [0, 1, 2],
  apply: [0, 1, 2, 3, 4, 5],
  tiles: [0, 1, 4, 6],
  pack: [0, 5, 7],
  moments: [0, 1, 8],
};

export interface BlockResult {
  /** Per group: the stored scale, the exact absmax, and f32 sums of w^2 and e^2, entropy, clipped count. */
  scales: Float64Array;
  absmax: Float32Array;
  sumW2: Float32Array;
  sumE2: Float32Array;
  entropy: Float32Array;
  clipped: Float32Array;
  codes?: Int32Array;
  dequantized?: Float32Array;
  packed?: Uint32Array;
  /** Per tile of the grid: [sum |W|, sum |e|, sum e^2, count] over this block's rows. */
  tiles?: Float32Array;
  /** Per row or per group (as asked): [absmax, mean, variance, kurtosis] of the weights. */
  moments?: Float32Array;
}

/**
 * Turns the search's choices into the block's stored scales (scalesFromChoices): the CPU's share
 * of the GPU path, the near-tie groups' contenders scored in float64. The panel hands it to a pool
 * of web workers so that share runs in parallel and off the UI thread.
 */
export type ScalesFromChoices = (
  values: Float32Array,
  rows: number,
  cols: number,
  s: QuantSettings,
  dtype: QuantizableFloat,
  absmax: Float32Array,
  found: SearchChoices | undefined,
) => Promise<Float64Array>;

export interface BlockOptions {
  /** Default: scalesFromChoices on this thread. */
  scales?: ScalesFromChoices;
  tiles?: { grid: TileGrid; rowBase: number };
  codes?: boolean;
  dequantized?: boolean;
  packed?: boolean;
  /** The weights' moments per row (output channel) or per quantization group. */
  moments?: 'rows' | 'groups';
}

export class WebGpuQuantizer extends GpuRunner<Entry> {
  constructor(
    device: GPUDevice,
    /** Ranks DARE-Q's candidates on the same device (the other half of the GPU path). */
    private readonly search: WebGpuSearch,
  ) {
    super(device, shaderSource, 'quantize_apply.wgsl', WG);
  }

  /** Whether these settings and dtype run on this runner (else use the CPU path). */
  supports(s: QuantSettings, dtype: QuantizableFloat): boolean {
    return gpuRuns(s, dtype);
  }

  /** Rows per block so that every binding fits the device's limits. */
  maxRows(cols: number): number {
    const l = this.device.limits;
    return Math.max(1, Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, 1 << 28) / (cols * 4)));
  }

  /** One entry point over `units` workgroups, with its own uniform buffer (never rewritten in flight). */
  private async dispatch(
    entry: Entry,
    buffers: Record<number, GPUBuffer>,
    units: number,
    params: Omit<FieldsOf<typeof APPLY_PARAMS>, 'nx'>,
  ): Promise<void> {
    const { nx, ny } = this.workgroups(units);
    const pipeline = await this.pipelines.get(entry);
    const uniform = this.uniform(APPLY_PARAMS, { ...params, nx });
    try {
      const entries = BINDINGS[entry].map((binding) => ({ binding, resource: { buffer: binding === 0 ? uniform : buffers[binding] } }));
      this.device.queue.submit([encodeDispatch(this.device, pipeline, entries, nx, ny).finish()]);
    } finally {
      // Released after the submit: a later writeBuffer to it is ordered after this dispatch.
      this.pool.release(uniform);
    }
  }

  /** Quantizes rows * cols values (one block: at most maxRows(cols) rows). */
  async quantizeBlock(
    values: Float32Array,
    rows: number,
    cols: number,
    s: QuantSettings,
    dtype: QuantizableFloat,
    o: BlockOptions = {},
  ): Promise<BlockResult> {
    this.checkAlive();
    if (!this.supports(s, dtype)) throw new Error(`the WebGPU path does not run ${dtype} with ${s.bins} bins`);
    const device = this.device;
    const gpr = groupsPerRow(cols, s.groupSize);
    const groups = rows * gpr;
    const n = rows * cols;
    const { qmin, qmax } = qRange(s.bits, s.ternary);
    const noTiles = { tileRows: 0, tileCols: 0, rowStep: 0, colStep: 0, rowBase: 0 };
    const params = {
      rows,
      cols,
      group: groupLength(s.groupSize, cols),
      groupsPerRow: gpr,
      bins: s.bins,
      dtype: DTYPE_CODE[dtype]!,
      flags: s.rounding === 'half-even' ? 2 : 0,
      qmin,
      qmax,
      bits: s.bits,
      ...noTiles,
    };
    const S = GPUBufferUsage.STORAGE;
    const bufs: GPUBuffer[] = [];
    const take = (bytes: number, usage: number) => {
      const b = this.pool.acquire(Math.max(16, bytes), usage);
      bufs.push(b);
      return b;
    };
    const W = take(n * 4, S | GPUBufferUsage.COPY_DST);
    const G = take(groups * 8, S | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
    const E = take(groups * 16, S | GPUBufferUsage.COPY_SRC);
    const DEQ = take(n * 4, S | GPUBufferUsage.COPY_SRC);
    const CODES = take(n * 4, S | GPUBufferUsage.COPY_SRC);
    try {
      // One scope over the whole block (callers run blocks one at a time: see webview gpu.ts serial).
      return await this.checked(async () => {
        device.queue.writeBuffer(W, 0, values.buffer, values.byteOffset, n * 4);
        await this.dispatch('group_stats', { 1: W, 2: G }, groups, params);
        const gs = new Float32Array(await this.readBack(G, groups * 8));
        const absmax = new Float32Array(groups);
        const sumW2 = new Float32Array(groups);
        for (let g = 0; g < groups; g++) {
          absmax[g] = gs[2 * g];
          sumW2[g] = gs[2 * g + 1];
        }
        const found = gpuSearches(s) ? await this.search.search(values.subarray(0, n), rows, cols, s) : undefined;
        const scales = o.scales
          ? await o.scales(values, rows, cols, s, dtype, absmax, found)
          : scalesFromChoices(values, rows, cols, s, dtype, absmax, found);
        const scaleWords = new Float32Array(groups * 2);
        for (let g = 0; g < groups; g++) scaleWords[2 * g] = scales[g];
        device.queue.writeBuffer(G, 0, scaleWords);
        await this.dispatch('apply', { 1: W, 2: G, 3: E, 4: DEQ, 5: CODES }, groups, params);
        const result: BlockResult = {
          scales,
          absmax,
          sumW2,
          sumE2: new Float32Array(groups),
          entropy: new Float32Array(groups),
          clipped: new Float32Array(groups),
        };
        if (o.tiles) {
          const g = o.tiles.grid;
          const T = take(g.rows * g.cols * 16, S | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
          device.queue.writeBuffer(T, 0, new Float32Array(g.rows * g.cols * 4));
          const tiles = { tileRows: g.rows, tileCols: g.cols, rowStep: g.rowStep, colStep: g.colStep, rowBase: o.tiles.rowBase };
          await this.dispatch('tiles', { 1: W, 4: DEQ, 6: T }, g.rows * g.cols, { ...params, ...tiles });
          result.tiles = new Float32Array(await this.readBack(T, g.rows * g.cols * 16));
        }
        if (o.packed) {
          if (32 % s.bits !== 0) throw new Error(`cannot pack ${s.bits}-bit codes into int32 words`);
          const words = rows * Math.ceil(cols / (32 / s.bits));
          const PACKED = take(words * 4, S | GPUBufferUsage.COPY_SRC);
          await this.dispatch('pack', { 5: CODES, 7: PACKED }, Math.ceil(words / WG), params);
          result.packed = new Uint32Array(await this.readBack(PACKED, words * 4));
        }
        if (o.moments) {
          const units = o.moments === 'rows' ? rows : groups;
          const M = take(units * 16, S | GPUBufferUsage.COPY_SRC);
          // Per row: one group as wide as the row.
          const span = o.moments === 'rows' ? { group: cols, groupsPerRow: 1 } : {};
          await this.dispatch('moments', { 1: W, 8: M }, units, { ...params, ...span });
          result.moments = new Float32Array(await this.readBack(M, units * 16));
        }
        const e = new Float32Array(await this.readBack(E, groups * 16));
        for (let g = 0; g < groups; g++) {
          result.sumE2[g] = e[4 * g];
          result.entropy[g] = e[4 * g + 1];
          result.clipped[g] = e[4 * g + 2];
        }
        if (o.codes) result.codes = new Int32Array(await this.readBack(CODES, n * 4));
        if (o.dequantized) result.dequantized = new Float32Array(await this.readBack(DEQ, n * 4));
        return result;
      });
    } finally {
      for (const b of bufs) this.pool.release(b);
    }
  }
}
