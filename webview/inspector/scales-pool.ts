/**
 * A pool of web workers for the CPU's share of the panel's WebGPU detail (see ScalesFromChoices):
 * a block's rows are split between the workers, each scores its near-tie groups in float64, and the
 * scales come back in order. Off the UI thread, and in parallel on a many-core machine — on a real
 * GPU this share, not the GPU, bounds how fast a large tensor's detail appears.
 *
 * The worker script is fetched from the extension and started from a blob: URL (a webview's
 * scripts live on another origin than the page, which `new Worker(url)` refuses).
 */
import { sliceChoices, type SearchChoices } from '../../src/compute/backend';
import type { QuantizableFloat } from '../../src/core/dtypes';
import { groupsPerRow } from '../../src/core/quant/matrix';
import type { QuantSettings } from '../../src/core/quant/settings';
import type { ScalesFromChoices } from '../../src/compute/webgpu/quantize';

export interface ScalesRequest {
  id: number;
  values: Float32Array;
  rows: number;
  cols: number;
  settings: QuantSettings;
  dtype: QuantizableFloat;
  absmax: Float32Array;
  found: SearchChoices | undefined;
}

type Reply = { id: number; scales: Float64Array; error?: undefined } | { id: number; error: string };

export class ScalesPool {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (s: Float64Array) => void; reject: (e: Error) => void }>();

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.onmessage = (e: MessageEvent<Reply>) => {
        const p = this.waiting.get(e.data.id);
        if (!p) return;
        this.waiting.delete(e.data.id);
        if (e.data.error !== undefined) p.reject(new Error(e.data.error));
        else p.resolve(e.data.scales);
      };
      w.onerror = (e) => {
        for (const p of this.waiting.values()) p.reject(new Error(`a scales worker failed: ${e.message}`));
        this.waiting.clear();
      };
    }
  }

  /** Starts `size` workers from the script at `url`. */
  static async start(url: string, size: number): Promise<ScalesPool> {
    const source = await (await fetch(url)).text();
    const blob = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    return new ScalesPool(Array.from({ length: size }, () => new Worker(blob)));
  }

  get size(): number {
    return this.workers.length;
  }

  /** ScalesFromChoices on the workers: contiguous row ranges, one per worker. */
  readonly scales: ScalesFromChoices = async (values, rows, cols, s, dtype, absmax, found) => {
    const gpr = groupsPerRow(cols, s.groupSize);
    const parts = Math.min(this.workers.length, rows);
    const per = Math.ceil(rows / parts);
    const jobs: Promise<Float64Array>[] = [];
    for (let i = 0, r0 = 0; r0 < rows; i++, r0 += per) {
      const n = Math.min(per, rows - r0);
      const g0 = r0 * gpr;
      const g1 = (r0 + n) * gpr;
      const req: ScalesRequest = {
        id: this.nextId++,
        values: values.slice(r0 * cols, (r0 + n) * cols),
        rows: n,
        cols,
        settings: s,
        dtype,
        absmax: absmax.slice(g0, g1),
        found: found && sliceChoices(found, g0, g1),
      };
      jobs.push(
        new Promise<Float64Array>((resolve, reject) => {
          this.waiting.set(req.id, { resolve, reject });
          this.workers[i].postMessage(req, [req.values.buffer, req.absmax.buffer]);
        }),
      );
    }
    const out = new Float64Array(rows * gpr);
    let at = 0;
    for (const part of await Promise.all(jobs)) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  };

  dispose(): void {
    for (const w of this.workers) w.terminate();
    for (const p of this.waiting.values()) p.reject(new Error('the scales pool was closed'));
    this.waiting.clear();
  }
}
