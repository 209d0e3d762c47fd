/**
 * Quantization jobs on worker threads, so neither the CLI's progress nor the extension host's UI
 * waits on the math. With one thread (or no worker script) jobs run in-process, which keeps small
 * runs and tests simple and deterministic; results are identical either way.
 *
 * The extension host keeps one pool for the whole process (src/extension/jobs.ts): the overview,
 * a detail and a quantize run share its threads through lanes, each with a priority (the visible
 * panel's work first) and a signal that drops its queued jobs when that work is cancelled.
 */
import { Worker } from 'node:worker_threads';
import { CancelledError } from '../core/errors';
import { runQuantJob, type QuantJob, type QuantJobResult } from '../core/quant/job';
import { Channel, Transfer } from '../shared/channel';

/** What a worker thread answers (src/node/worker.ts). */
export interface WorkerProtocol {
  events: Record<string, never>;
  requests: { quantize: { body: QuantJob; reply: QuantJobResult } };
}
type PoolChannel = Channel<WorkerProtocol, { events: Record<string, never>; requests: Record<string, never> }>;

/** What a consumer of the pool sees: run jobs, and how many to keep in flight. */
export interface JobRunner {
  run(job: QuantJob): Promise<QuantJobResult>;
  /** How many jobs to keep in flight to keep every thread busy while the next chunk is read. */
  readonly depth: number;
  readonly threads: number;
  readonly inProcess: boolean;
}

/** Lower runs first. */
export const PRIORITY = { visible: 0, quantize: 1, background: 2 } as const;

interface Queued {
  job: QuantJob;
  priority: number;
  signal?: AbortSignal;
  resolve: (r: QuantJobResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  channel: PoolChannel;
  busy: boolean;
}

export class JobPool implements JobRunner {
  private readonly slots: Slot[] = [];
  private queue: Queued[] = [];
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
    if (workerScript) for (let i = 0; i < Math.max(1, threads); i++) this.slots.push(this.spawn(workerScript));
  }

  get inProcess(): boolean {
    return this.slots.length === 0;
  }

  get depth(): number {
    return this.inProcess ? 1 : this.slots.length * 2;
  }

  /** Jobs waiting for a thread (for tests and the log). */
  get queued(): number {
    return this.queue.length;
  }

  run(job: QuantJob, priority: number = PRIORITY.quantize, signal?: AbortSignal): Promise<QuantJobResult> {
    if (this.closed) return Promise.reject(new Error('internal: job pool is closed'));
    if (signal?.aborted) return Promise.reject(new CancelledError('cancelled'));
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
    return new Promise((resolve, reject) => {
      const q: Queued = { job, priority, signal, resolve, reject };
      // After the last job of the same or a higher priority: FIFO within a priority.
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1].priority > priority) at--;
      this.queue.splice(at, 0, q);
      this.watch(q);
      this.dispatch();
    });
  }

  /** A view of the pool whose jobs run at `priority` and leave the queue when `signal` aborts. */
  lane(priority: number, signal?: AbortSignal): JobRunner {
    return {
      run: (job) => this.run(job, priority, signal),
      depth: this.depth,
      threads: this.threads,
      inProcess: this.inProcess,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('internal: job pool closed with work pending');
    for (const q of this.queue) q.reject(err);
    this.queue = [];
    for (const s of this.slots) s.channel.dispose(err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /**
   * Queued jobs by signal, with one abort listener per signal however many jobs wait on it (one per
   * job would pile up thousands over a long run), removed when the last of them leaves the queue.
   */
  private readonly waiting = new Map<AbortSignal, { jobs: Set<Queued>; onAbort: () => void }>();

  private watch(q: Queued): void {
    const signal = q.signal;
    if (!signal) return;
    let w = this.waiting.get(signal);
    if (!w) {
      const entry = {
        jobs: new Set<Queued>(),
        onAbort: () => {
          for (const job of [...entry.jobs]) this.drop(job);
        },
      };
      w = entry;
      this.waiting.set(signal, w);
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    w.jobs.add(q);
  }

  /** The job left the queue (dispatched or dropped): its signal's listener goes with the last one. */
  private unwatch(q: Queued): void {
    const w = q.signal && this.waiting.get(q.signal);
    if (!w) return;
    w.jobs.delete(q);
    if (w.jobs.size === 0) {
      q.signal!.removeEventListener('abort', w.onAbort);
      this.waiting.delete(q.signal!);
    }
  }

  private drop(q: Queued): void {
    const i = this.queue.indexOf(q);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.unwatch(q);
    q.reject(new CancelledError('cancelled'));
  }

  private spawn(script: string): Slot {
    const worker = new Worker(script);
    const channel: PoolChannel = new Channel(
      { post: (m, transfer) => worker.postMessage(m, transfer as never) },
      { events: {}, requests: {} },
    );
    worker.on('message', (m: unknown) => channel.receive(m));
    const slot: Slot = { worker, channel, busy: false };
    const fail = (e: Error) => {
      if (this.closed) return;
      channel.dispose(new Error(`worker thread failed: ${e.message}`));
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
      if (slot.busy) continue;
      const next = this.queue.shift();
      if (!next) return;
      this.unwatch(next);
      slot.busy = true;
      const raw = next.job.raw;
      // Transfer the chunk's buffer instead of copying it when the chunk owns its whole buffer.
      const transfer = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? [raw.buffer as ArrayBuffer] : [];
      slot.channel
        .request('quantize', next.job, transfer)
        .then(next.resolve, next.reject)
        .finally(() => {
          slot.busy = false;
          this.dispatch();
        });
    }
  }
}

/** The worker thread's side: answers `quantize` requests (src/node/worker.ts). */
export function serveJobs(port: {
  postMessage(m: unknown, t?: Transferable[]): void;
  on(e: 'message', l: (m: unknown) => void): void;
}): void {
  const channel = new Channel<{ events: Record<string, never>; requests: Record<string, never> }, WorkerProtocol>(
    { post: (m, transfer) => port.postMessage(m, transfer) },
    {
      events: {},
      requests: {
        quantize: (job) => {
          // The job's bytes arrived by transfer or copy: this thread owns them.
          const result = runQuantJob(job, true);
          return new Transfer(result, [
            result.data.buffer as ArrayBuffer,
            result.scales.buffer as ArrayBuffer,
            ...(result.zeros ? [result.zeros.buffer as ArrayBuffer] : []),
          ]);
        },
      },
    },
  );
  port.on('message', (m) => channel.receive(m));
}
