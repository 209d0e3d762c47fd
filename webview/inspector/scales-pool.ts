/**
 * A pool of web workers for the CPU's share of the panel's WebGPU detail (see ScalesFromChoices):
 * a block's rows are split between the workers, each scores its near-tie groups in float64, and the
 * scales come back in order. Off the UI thread, and in parallel on a many-core machine — on a real
 * GPU this share, not the GPU, bounds how fast a large tensor's detail appears. Each worker is
 * reached through the same Channel as everything else (src/shared/channel.ts).
 *
 * The worker script is fetched from the extension and started from a blob: URL (a webview's
 * scripts live on another origin than the page, which `new Worker(url)` refuses).
 */
import { sliceChoices, type SearchChoices } from '../../src/compute/backend';
import type { ScalesFromChoices } from '../../src/compute/webgpu/quantize';
import type { QuantizableFloat } from '../../src/core/dtypes';
import { groupsPerRow } from '../../src/core/quant/matrix';
import type { QuantSettings } from '../../src/core/quant/settings';
import { Channel } from '../../src/shared/channel';

export interface ScalesRequest {
  values: Float32Array;
  rows: number;
  cols: number;
  settings: QuantSettings;
  dtype: QuantizableFloat;
  absmax: Float32Array;
  found: SearchChoices | undefined;
}

/** What a scales worker answers (scales-worker.ts). */
export interface ScalesWorkerProtocol {
  events: Record<string, never>;
  requests: { scales: { body: ScalesRequest; reply: Float64Array } };
}
export type NoMessages = { events: Record<string, never>; requests: Record<string, never> };

export class ScalesPool {
  private constructor(private readonly workers: { worker: Worker; channel: Channel<ScalesWorkerProtocol, NoMessages> }[]) {}

  /** Starts `size` workers from the script at `url`. */
  static async start(url: string, size: number): Promise<ScalesPool> {
    const source = await (await fetch(url)).text();
    const blob = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    return new ScalesPool(
      Array.from({ length: size }, () => {
        const worker = new Worker(blob);
        const channel = new Channel<ScalesWorkerProtocol, NoMessages>(
          { post: (m, transfer) => worker.postMessage(m, transfer) },
          { events: {}, requests: {} },
        );
        worker.onmessage = (e) => channel.receive(e.data);
        worker.onerror = (e) => channel.failPending(new Error(`a scales worker failed: ${e.message}`));
        return { worker, channel };
      }),
    );
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
        values: values.slice(r0 * cols, (r0 + n) * cols),
        rows: n,
        cols,
        settings: s,
        dtype,
        absmax: absmax.slice(g0, g1),
        found: found && sliceChoices(found, g0, g1),
      };
      jobs.push(this.workers[i].channel.request('scales', req, [req.values.buffer, req.absmax.buffer]));
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
    for (const { worker, channel } of this.workers) {
      channel.dispose(new Error('the scales pool was closed'));
      worker.terminate();
    }
  }
}
