/**
 * The WebGPU runner of the DARE-Q search (shaders/dareq_search.wgsl) on any GPUDevice — Dawn in
 * Node, navigator.gpu in the webview. Groups beyond maxComputeWorkgroupsPerDimension go to a
 * second dispatch dimension, and inputs beyond maxStorageBufferBindingSize are split by rows.
 */
import shaderSource from '../../../shaders/dareq_search.wgsl';
import { groupLength, groupsPerRow } from '../../core/quant/matrix';
import { qRange, type QuantSettings } from '../../core/quant/settings';
import { choicesFromGpu, concatChoices, gpuRuns, gpuSearches, type ScaleSearchBackend, type SearchChoices } from '../backend';
import { encodeDispatch } from './pipelines';
import { GpuRunner } from './runner';
import { SEARCH_FLAGS, SEARCH_PARAMS } from './uniforms';

const WG = 64;

export class WebGpuSearch extends GpuRunner<'main'> implements ScaleSearchBackend {
  readonly name = 'webgpu' as const;
  /** Groups the GPU could not decide alone, and the candidates the CPU scores for them (reported). */
  undecided = 0;
  rescored = 0;
  groups = 0;
  candidates = 0;

  /**
   * @param dispatchLimit at most this many workgroups per dispatch dimension (defaults to the
   *   device's maxComputeWorkgroupsPerDimension; tests lower it to exercise the 2-D split).
   * @param bindingLimit at most this many bytes per binding (defaults to the device's limits;
   *   tests lower it to exercise the row split).
   */
  constructor(
    device: GPUDevice,
    readonly description: string,
    private readonly dispatchLimit = device.limits.maxComputeWorkgroupsPerDimension,
    private readonly bindingLimit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
  ) {
    super(device, shaderSource, 'dareq_search.wgsl', WG);
  }

  async search(values: Float32Array, rows: number, cols: number, s: QuantSettings): Promise<SearchChoices | undefined> {
    this.checkAlive();
    if (!gpuSearches(s) || !gpuRuns(s, 'F32')) return undefined;
    const limits = this.device.limits;
    const gpr = groupsPerRow(cols, s.groupSize);
    // Each binding (the rows, and every candidate's lower bound per group) must fit the limits.
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, this.bindingLimit);
    const maxRows = Math.max(1, Math.floor(binding / Math.max(cols * 4, gpr * s.grid * 4)));
    // Two blocks in flight: the next block's upload and dispatch are queued while this one's
    // results are read back, so transfers overlap compute (each block has its own pooled buffers).
    const pending: Promise<SearchChoices>[] = [];
    const parts: SearchChoices[] = [];
    for (let r0 = 0; r0 < rows; r0 += maxRows) {
      const n = Math.min(maxRows, rows - r0);
      pending.push(this.searchRows(values.subarray(r0 * cols, (r0 + n) * cols), n, cols, s));
      if (pending.length === 2) parts.push(await pending.shift()!);
    }
    for (const p of pending) parts.push(await p);
    const result = concatChoices(parts);
    this.groups += result.choices.length;
    this.candidates += result.choices.length * s.grid;
    this.undecided += result.undecided;
    this.rescored += result.rescored;
    return result;
  }

  private async searchRows(values: Float32Array, rows: number, cols: number, s: QuantSettings): Promise<SearchChoices> {
    const device = this.device;
    const gpr = groupsPerRow(cols, s.groupSize);
    const total = rows * gpr;
    const { qmin, qmax } = qRange(s.bits, s.ternary);
    const { nx, ny } = this.workgroups(total, this.dispatchLimit);
    const flags =
      (s.range === 'clip' ? SEARCH_FLAGS.clipRange : 0) |
      (s.rounding === 'half-even' ? SEARCH_FLAGS.halfEven : 0) |
      (s.histogram === 'density' ? SEARCH_FLAGS.density : 0) |
      (s.normalize ? SEARCH_FLAGS.normalize : 0) |
      (s.signAware && !s.ternary ? SEARCH_FLAGS.signAware : 0);
    const pipeline = await this.pipelines.get('main');
    const uniform = this.uniform(SEARCH_PARAMS, {
      rows,
      cols,
      group: groupLength(s.groupSize, cols),
      groupsPerRow: gpr,
      grid: s.grid,
      bins: s.bins,
      nx,
      qmin,
      qmax,
      lw: s.lambdaWeight,
      lh: s.lambdaEntropy,
      alpha: s.clipAlphaMin,
      flags,
      totalGroups: total,
    });
    const input = this.pool.acquire(values.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const outBytes = total * 16;
    const output = this.pool.acquire(outBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const readback = this.pool.acquire(outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const lbBytes = total * s.grid * 4;
    const lowerBounds = this.pool.acquire(lbBytes, GPUBufferUsage.STORAGE);
    const maskBytes = total * Math.ceil(s.grid / 32) * 4;
    const mask = this.pool.acquire(maskBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const maskReadback = this.pool.acquire(maskBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(input, 0, values.buffer, values.byteOffset, values.byteLength);
      await this.checked(() => {
        const enc = encodeDispatch(
          device,
          pipeline,
          [
            { binding: 0, resource: { buffer: uniform, size: SEARCH_PARAMS.byteSize } },
            { binding: 1, resource: { buffer: input, size: values.byteLength } },
            { binding: 2, resource: { buffer: output, size: outBytes } },
            { binding: 3, resource: { buffer: lowerBounds, size: lbBytes } },
            { binding: 4, resource: { buffer: mask, size: maskBytes } },
          ],
          nx,
          ny,
        );
        enc.copyBufferToBuffer(output, 0, readback, 0, outBytes);
        enc.copyBufferToBuffer(mask, 0, maskReadback, 0, maskBytes);
        device.queue.submit([enc.finish()]);
      });
      const [result, bits] = await this.mapped([readback, outBytes], [maskReadback, maskBytes]);
      return choicesFromGpu(new Float32Array(result), new Uint32Array(bits), total, s.grid);
    } finally {
      for (const b of [uniform, input, output, readback, lowerBounds, mask, maskReadback]) this.pool.release(b);
    }
  }
}
