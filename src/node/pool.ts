/**
 * Quantization jobs on worker threads, so neither the CLI's progress nor the extension host's UI
 * waits on the math. With one thread (or no worker script) jobs run in-process, which keeps small
 * runs and tests simple and deterministic; results are identical either way.
 */
import { Worker } from 'node:worker_threads';
import { runQuantJob, type QuantJob, type QuantJobResult } from '../core/quant/job';
import { deserializeError, type SerializedError } from './pool-protocol';

type Reply = { id: number; ok: true; result: QuantJobResult } | { id: number; ok: false; error: SerializedError };

interface Pending {
  resolve: (r: QuantJobResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number | undefined;
}

export class JobPool {
  private readonly slots: Slot[] = [];
  private readonly queue: { id: number; job: QuantJob }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /**
   * @param threads worker threads (at least one when a worker script is given).
   * @param workerScript dist/worker.js; without it jobs run in-process. The extension host always
   *   passes it, so quantization never runs on its main thread, even on one core.
   */
  constructor(
    readonly threads: number,
    workerScript?: string,
  ) {
    if (workerScript) {
      for (let i = 0; i < Math.max(1, threads); i++) this.slots.push(this.spawn(workerScript));
    }
  }

  get inProcess(): boolean {
    return this.slots.length === 0;
  }

  /** How many jobs to keep in flight to keep every thread busy while the next chunk is read. */
  get depth(): number {
    return this.inProcess ? 1 : this.slots.length * 2;
  }

  run(job: QuantJob): Promise<QuantJobResult> {
    if (this.closed) return Promise.reject(new Error('internal: job pool is closed'));
    if (this.inProcess) {
      return new Promise((resolve, reject) => {
        // Defer to a macrotask so progress and cancellation get a turn between jobs.
        setImmediate(() => {
          try {
            resolve(runQuantJob(job));
          } catch (e) {
            reject(e as Error);
          }
        });
      });
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, job });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('internal: job pool closed with work pending');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(script: string): Slot {
    const worker = new Worker(script);
    const slot: Slot = { worker, busy: undefined };
    worker.on('message', (reply: Reply) => {
      slot.busy = undefined;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (p) {
        if (reply.ok) p.resolve(reply.result);
        else p.reject(deserializeError(reply.error));
      }
      this.dispatch();
    });
    const fail = (e: Error) => {
      if (this.closed) return;
      const id = slot.busy;
      if (id !== undefined) {
        this.pending.get(id)?.reject(new Error(`worker thread failed: ${e.message}`));
        this.pending.delete(id);
      }
      // Replace the dead worker so the remaining jobs still run.
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = this.spawn(script);
      this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed && code !== 0) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy !== undefined) continue;
      const next = this.queue.shift();
      if (!next) return;
      slot.busy = next.id;
      const raw = next.job.raw;
      // Transfer the chunk's buffer instead of copying it when the chunk owns its whole buffer.
      const transfer = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? [raw.buffer as ArrayBuffer] : [];
      slot.worker.postMessage(next, transfer);
    }
  }
}
