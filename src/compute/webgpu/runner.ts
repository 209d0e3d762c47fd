/**
 * What every WebGPU runner shares: its kernels' pipeline cache, a buffer pool, the device-lost
 * watch, error scopes and read-back — written once here, not per runner.
 */
import { PipelineCache } from './pipelines';
import { BufferPool } from './pool';
import type { UniformLayout } from './uniforms';

export abstract class GpuRunner<Entry extends string> {
  protected readonly pool: BufferPool;
  protected readonly pipelines: PipelineCache<Entry>;
  private lost: string | undefined;

  constructor(
    protected readonly device: GPUDevice,
    source: string,
    label: string,
    /** Invocations per workgroup (the preamble's `WG`). */
    protected readonly workgroupSize: number,
  ) {
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device, source, label, { WG: workgroupSize });
    void device.lost.then((info) => {
      this.lost = `the GPU device was lost (${info.reason}: ${info.message})`;
    });
  }

  /** Throws once the device is gone: callers then fall back to the CPU. */
  protected checkAlive(): void {
    if (this.lost) throw new Error(this.lost);
  }

  /**
   * Runs `work` inside validation and out-of-memory scopes and turns what they caught into errors.
   * A synchronous `work` runs with no await between the pushes and the pops, so two blocks in
   * flight never pop each other's scopes; an asynchronous one must be serialized by the caller.
   */
  protected async checked<T>(work: () => T | Promise<T>): Promise<T> {
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    // Both scopes are popped whatever `work` does, so the stack stays balanced; a scope's error
    // wins over the work's own (it is the cause).
    const popBoth = () => Promise.all([device.popErrorScope(), device.popErrorScope()]);
    let result: T;
    try {
      const r = work();
      result = r instanceof Promise ? await r : r;
    } catch (e) {
      const [validation, oom] = await popBoth();
      throw scopeError(validation, oom) ?? e;
    }
    const [validation, oom] = await popBoth();
    const error = scopeError(validation, oom);
    if (error) throw error;
    return result;
  }

  /** A uniform buffer (from the pool: release it) holding `values` packed by `layout`. */
  protected uniform<N extends string>(layout: UniformLayout<N>, values: Readonly<Record<N, number>>): GPUBuffer {
    const b = this.pool.acquire(layout.byteSize, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.device.queue.writeBuffer(b, 0, layout.pack(values));
    return b;
  }

  /** Maps read-back buffers (already copied into by a submitted encoder) and returns their bytes. */
  protected async mapped(...buffers: [GPUBuffer, number][]): Promise<ArrayBuffer[]> {
    await Promise.all(buffers.map(([b, bytes]) => b.mapAsync(GPUMapMode.READ, 0, bytes)));
    return buffers.map(([b, bytes]) => {
      const out = b.getMappedRange(0, bytes).slice(0);
      b.unmap();
      return out;
    });
  }

  /** Copies `bytes` of `src` to the host. */
  protected async readBack(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const rb = this.pool.acquire(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, rb, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      return (await this.mapped([rb, bytes]))[0];
    } finally {
      this.pool.release(rb);
    }
  }

  /** Workgroups for `count` units: at most `limit` per dimension, the rest in a second one. */
  protected workgroups(count: number, limit = this.device.limits.maxComputeWorkgroupsPerDimension): { nx: number; ny: number } {
    const nx = Math.max(1, Math.min(count, limit, this.device.limits.maxComputeWorkgroupsPerDimension));
    return { nx, ny: Math.max(1, Math.ceil(count / nx)) };
  }

  dispose(): void {
    this.pool.destroy();
  }
}

function scopeError(validation: GPUError | null, oom: GPUError | null): Error | undefined {
  if (validation) return new Error(`WebGPU validation error: ${validation.message}`);
  if (oom) return new Error(`the GPU ran out of memory (${oom.message})`);
  return undefined;
}
