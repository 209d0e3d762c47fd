/**
 * The WebGPU runner of EWQ's entropy partials (shaders/ewq_entropy.wgsl): per-workgroup partials
 * on the GPU, merged here in float64 with the same functions the CPU path uses (mergePass1,
 * compensated sums), so the digits that rank blocks survive (docs/methods.md §2).
 */
import shaderSource from '../../../shaders/ewq_entropy.wgsl';
import { CompensatedSum, finishEntropy, mergePass1, type MaxSumExp } from '../../core/ewq/entropy';
import { encodeDispatch } from './pipelines';
import { GpuRunner } from './runner';
import { ENTROPY_PARAMS } from './uniforms';

const WG = 256;
/** Elements per workgroup: enough work per group, few partials to merge. */
const PER = 4096;

export class WebGpuEntropy extends GpuRunner<'pass1' | 'pass2'> {
  constructor(device: GPUDevice) {
    super(device, shaderSource, 'ewq_entropy.wgsl', WG);
  }

  /** Elements per upload, within the device's binding limits. */
  private get maxChunk(): number {
    const l = this.device.limits;
    return Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, 1 << 28) / 4 / PER) * PER;
  }

  private async run(entry: 'pass1' | 'pass2', values: Float32Array, max = 0, sumExp = 0, eps = 0): Promise<Float32Array> {
    this.checkAlive();
    const device = this.device;
    const n = values.length;
    const groups = Math.max(1, Math.ceil(n / PER));
    const { nx, ny } = this.workgroups(groups);
    const pipeline = await this.pipelines.get(entry);
    const uniform = this.uniform(ENTROPY_PARAMS, { n, per: PER, nx, max, sumExp, eps });
    const input = this.pool.acquire(n * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const output = this.pool.acquire(groups * 8, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const readback = this.pool.acquire(groups * 8, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(input, 0, values.buffer, values.byteOffset, n * 4);
      await this.checked(() => {
        const entries = [
          { binding: 0, resource: { buffer: uniform, size: ENTROPY_PARAMS.byteSize } },
          { binding: 1, resource: { buffer: input } },
          { binding: 2, resource: { buffer: output } },
        ];
        const enc = encodeDispatch(device, pipeline, entries, nx, ny);
        enc.copyBufferToBuffer(output, 0, readback, 0, groups * 8);
        device.queue.submit([enc.finish()]);
      });
      return new Float32Array((await this.mapped([readback, groups * 8]))[0]);
    } finally {
      for (const b of [uniform, input, output, readback]) this.pool.release(b);
    }
  }

  /** Pass 1 over one chunk of a tensor: its max and sum of exp(x - max), merged in float64. */
  async pass1(values: Float32Array): Promise<MaxSumExp> {
    let acc: MaxSumExp = { max: -Infinity, sumExp: 0, count: 0 };
    for (let a = 0; a < values.length; a += this.maxChunk) {
      const part = values.subarray(a, Math.min(values.length, a + this.maxChunk));
      const out = await this.run('pass1', part);
      for (let g = 0; g * PER < part.length; g++)
        acc = mergePass1(acc, { max: out[2 * g], sumExp: out[2 * g + 1], count: Math.min(PER, part.length - g * PER) });
    }
    return acc;
  }

  /** Pass 2 over one chunk, given the whole tensor's max and sum: its partial, summed in float64. */
  async pass2(values: Float32Array, max: number, sumExp: number, eps: number): Promise<number> {
    const s = new CompensatedSum();
    for (let a = 0; a < values.length; a += this.maxChunk) {
      const part = values.subarray(a, Math.min(values.length, a + this.maxChunk));
      const out = await this.run('pass2', part, max, sumExp, eps);
      for (let g = 0; g * PER < part.length; g++) s.add(out[2 * g]);
    }
    return s.value;
  }

  /** Both passes over an in-memory tensor. */
  async entropy(values: Float32Array, eps: number): Promise<number> {
    const p1 = await this.pass1(values);
    return finishEntropy(p1, await this.pass2(values, p1.max, p1.sumExp, eps), eps);
  }
}
