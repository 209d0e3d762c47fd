/**
 * The WebGPU runner of the DARE-Q search (shaders/dareq_search.wgsl) on any GPUDevice — Dawn in
 * Node, navigator.gpu in the webview. Pipelines are compiled once per workgroup size and cached;
 * buffers are pooled by size; groups beyond maxComputeWorkgroupsPerDimension go to a second
 * dispatch dimension, and inputs beyond maxStorageBufferBindingSize are split by rows.
 */
import shaderSource from '../../../shaders/dareq_search.wgsl';
import { groupLength, groupsPerRow } from '../../core/quant/matrix';
import { qRange, type QuantSettings } from '../../core/quant/settings';
import { encodeDispatch, PipelineCache } from './pipelines';
import { BufferPool } from './pool';
import { choicesFromGpu, concatChoices, GPU_MAX_BINS, type ScaleSearchBackend, type SearchChoices } from '../backend';

const WG = 64;

export class WebGpuSearch implements ScaleSearchBackend {
  readonly name = 'webgpu' as const;
  private readonly pipelines: PipelineCache<'main'>;
  private readonly pool: BufferPool;
  /** Groups the GPU could not decide alone, and the candidates the CPU scores for them (reported). */
  undecided = 0;
  rescored = 0;
  groups = 0;
  candidates = 0;
  private lost: string | undefined;

  /**
   * @param dispatchLimit at most this many workgroups per dispatch dimension (defaults to the
   *   device's maxComputeWorkgroupsPerDimension; tests lower it to exercise the 2-D split).
   */
  constructor(
    private readonly device: GPUDevice,
    readonly description: string,
    private readonly dispatchLimit = device.limits.maxComputeWorkgroupsPerDimension,
    /** At most this many bytes per binding (defaults to the device's limits; tests lower it to exercise the row split). */
    private readonly bindingLimit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
  ) {
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device, shaderSource, 'dareq_search.wgsl', { WG });
    void device.lost.then((info) => {
      this.lost = `the GPU device was lost (${info.reason}: ${info.message})`;
    });
  }

  async search(values: Float32Array, rows: number, cols: number, s: QuantSettings): Promise<SearchChoices | undefined> {
    if (this.lost) throw new Error(this.lost);
    if (s.method !== 'dareq' || s.bins > GPU_MAX_BINS) return undefined;
    const limits = this.device.limits;
    const gpr = groupsPerRow(cols, s.groupSize);
    const g = groupLength(s.groupSize, cols);
    // Each binding (the rows, and every candidate's lower bound per group) must fit the limits.
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, this.bindingLimit);
    const maxRows = Math.max(1, Math.floor(binding / Math.max(cols * 4, gpr * s.grid * 4)));
    // Two blocks in flight: the next block's upload and dispatch are queued while this one's
    // results are read back, so transfers overlap compute (each block has its own pooled buffers).
    const pending: Promise<SearchChoices>[] = [];
    const parts: SearchChoices[] = [];
    for (let r0 = 0; r0 < rows; r0 += maxRows) {
      const n = Math.min(maxRows, rows - r0);
      pending.push(this.searchRows(values.subarray(r0 * cols, (r0 + n) * cols), n, cols, g, gpr, s));
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

  private async searchRows(values: Float32Array, rows: number, cols: number, g: number, gpr: number, s: QuantSettings): Promise<SearchChoices> {
    const device = this.device;
    const total = rows * gpr;
    const { qmin, qmax } = qRange(s.bits, s.ternary);
    const maxX = Math.min(this.dispatchLimit, device.limits.maxComputeWorkgroupsPerDimension);
    const nx = Math.min(total, maxX);
    const ny = Math.ceil(total / nx);
    const params = new ArrayBuffer(80);
    const u = new Uint32Array(params);
    const f = new Float32Array(params);
    u.set([rows, cols, g, gpr, s.grid, s.bins, 0, nx]);
    f.set([qmin, qmax, s.lambdaWeight, s.lambdaEntropy, s.clipAlphaMin], 8);
    u[13] = (s.range === 'clip' ? 1 : 0) | (s.rounding === 'half-even' ? 2 : 0) | (s.histogram === 'density' ? 4 : 0) | (s.normalize ? 8 : 0);
    u[14] = total;
    const uniform = this.pool.acquire(80, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const input = this.pool.acquire(values.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const outBytes = total * 16;
    const output = this.pool.acquire(outBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const readback = this.pool.acquire(outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const lbBytes = total * s.grid * 4;
    const lb = this.pool.acquire(lbBytes, GPUBufferUsage.STORAGE);
    const maskBytes = total * Math.ceil(s.grid / 32) * 4;
    const mask = this.pool.acquire(maskBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const maskReadback = this.pool.acquire(maskBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(uniform, 0, params);
      device.queue.writeBuffer(input, 0, values.buffer, values.byteOffset, values.byteLength);
      const pipeline = await this.pipelines.get('main');
      device.pushErrorScope('out-of-memory');
      device.pushErrorScope('validation');
      const enc = encodeDispatch(
        device,
        pipeline,
        [
          { binding: 0, resource: { buffer: uniform, size: 80 } },
          { binding: 1, resource: { buffer: input, size: values.byteLength } },
          { binding: 2, resource: { buffer: output, size: outBytes } },
          { binding: 3, resource: { buffer: lb, size: lbBytes } },
          { binding: 4, resource: { buffer: mask, size: maskBytes } },
        ],
        nx,
        ny,
      );
      enc.copyBufferToBuffer(output, 0, readback, 0, outBytes);
      enc.copyBufferToBuffer(mask, 0, maskReadback, 0, maskBytes);
      device.queue.submit([enc.finish()]);
      // Both popped at once: another block's scopes must not interleave with this one's.
      const [validation, oom] = await Promise.all([device.popErrorScope(), device.popErrorScope()]);
      if (validation) throw new Error(`WebGPU validation error: ${validation.message}`);
      if (oom) throw new Error(`the GPU ran out of memory (${oom.message})`);
      await Promise.all([readback.mapAsync(GPUMapMode.READ, 0, outBytes), maskReadback.mapAsync(GPUMapMode.READ, 0, maskBytes)]);
      const result = new Float32Array(readback.getMappedRange(0, outBytes).slice(0));
      const bits = new Uint32Array(maskReadback.getMappedRange(0, maskBytes).slice(0));
      readback.unmap();
      maskReadback.unmap();
      return choicesFromGpu(result, bits, total, s.grid);
    } finally {
      for (const b of [uniform, input, output, readback, lb, mask, maskReadback]) this.pool.release(b);
    }
  }

  dispose(): void {
    this.pool.destroy();
  }
}
