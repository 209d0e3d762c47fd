/** The shared worker pool: results equal in-process ones, the visible panel's work first, cancelled work leaves the queue. */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { encodeFloats } from '../../src/core/dtypes';
import { CancelledError } from '../../src/core/errors';
import { runQuantJob, type QuantJob } from '../../src/core/quant/job';
import { resolveSettings } from '../../src/core/quant/settings';
import { JobPool, PRIORITY } from '../../src/node/pool';
import { openModel } from '../../src/node/open-model';
import { CHUNK_WEIGHTS, rowsPerJobOf, StreamChain } from '../../src/node/stream-tensor';
import { buildSafetensors, normals, tempDir } from '../helpers/safetensors';

const WORKER = path.resolve(__dirname, '../../../dist/worker.js');

function job(tensor: string, rows = 64, cols = 256, dtype: 'F32' | 'BF16' = 'F32'): QuantJob {
  return {
    file: 'm.safetensors',
    tensor,
    dtype,
    raw: encodeFloats(dtype, normals(rows * cols, tensor.length, 0.02)),
    rows,
    cols,
    transposed: false,
    rowBase: 0,
    settings: resolveSettings({ groupSize: 64 }),
    output: 'fake',
  };
}

test('a job on a worker thread returns what it returns in-process, byte for byte', async () => {
  const pool = new JobPool(1, WORKER);
  try {
    // BF16: the worker writes the result into the job's own bytes, in-process a new buffer.
    for (const dtype of ['F32', 'BF16'] as const) {
      const j = job('w', 64, 256, dtype);
      const input = Buffer.from(j.raw);
      const expected = runQuantJob(job('w', 64, 256, dtype));
      const got = await pool.run(j);
      assert.deepEqual(Buffer.from(got.data), Buffer.from(expected.data), dtype);
      assert.deepEqual(Array.from(got.scales), Array.from(expected.scales), dtype);
      assert.notDeepEqual(Buffer.from(got.data), input, `${dtype}: the output is quantized`);
    }
  } finally {
    await pool.close();
  }
});

test('queued jobs run by priority (the visible panel first), FIFO within one', async () => {
  const pool = new JobPool(1, WORKER);
  try {
    const order: string[] = [];
    const run = (name: string, priority: number) => pool.run(job(name), priority).then(() => void order.push(name));
    // The first takes the only thread; the rest queue and run by priority.
    const all = [
      run('busy', PRIORITY.background),
      run('bg1', PRIORITY.background),
      run('quantize', PRIORITY.quantize),
      run('bg2', PRIORITY.background),
      run('visible', PRIORITY.visible),
    ];
    assert.equal(pool.queued, 4);
    await Promise.all(all);
    assert.deepEqual(order, ['busy', 'visible', 'quantize', 'bg1', 'bg2']);
  } finally {
    await pool.close();
  }
});

test("a cancelled lane's queued jobs leave the queue at once; other lanes go on", async () => {
  const pool = new JobPool(1, WORKER);
  try {
    const ctl = new AbortController();
    const overview = pool.lane(PRIORITY.background, ctl.signal);
    const detail = pool.lane(PRIORITY.visible);
    const running = overview.run(job('first'));
    const queued = [overview.run(job('a')), overview.run(job('b'))];
    const kept = detail.run(job('detail'));
    assert.equal(pool.queued, 3);
    ctl.abort();
    assert.equal(pool.queued, 1);
    for (const q of queued) await assert.rejects(q, (e) => e instanceof CancelledError);
    await running; // a job already on a thread finishes
    assert.ok((await kept).scales.length > 0);
    await assert.rejects(overview.run(job('late')), (e) => e instanceof CancelledError);
    // Jobs that left the queue leave no listener on the lane's signal (a long run queues thousands).
    const live = new AbortController();
    const lane = pool.lane(PRIORITY.background, live.signal);
    await Promise.all(Array.from({ length: 12 }, (_, i) => lane.run(job(`j${i}`, 4, 64))));
    assert.equal(getEventListeners(live.signal, 'abort').length, 0);
  } finally {
    await pool.close();
  }
});

test('a tensor splits into equal jobs, a multiple of the threads, none over the chunk size', () => {
  // One chunk's worth on two threads: two jobs, not one job and an idle thread.
  assert.equal(rowsPerJobOf(2048, 2048, 2), 1024);
  // 2.75 chunks on two threads: four jobs of 512 rows, not 744 + 744 + 560.
  assert.equal(rowsPerJobOf(2048, 5632, 2), 512);
  assert.equal(rowsPerJobOf(2048, 2048, 1), 2048);
  assert.equal(rowsPerJobOf(3, 4096, 8), 1);
  for (const [rows, cols, threads] of [
    [4096, 14336, 8],
    [32000, 4096, 2],
    [14336, 4096, 16],
    [1000, 777, 3],
    [1, 1 << 24, 4],
  ]) {
    const per = rowsPerJobOf(rows, cols, threads);
    const jobs = Math.ceil(rows / per);
    assert.ok(per * cols <= CHUNK_WEIGHTS || per === 1, `${rows} x ${cols}: ${per} rows per job`);
    assert.ok(jobs >= Math.min(rows, threads), `${rows} x ${cols} on ${threads}: ${jobs} jobs`);
  }
});

/** A runner that records when each job is submitted and answers each in-process, on the next turn. */
function recordingRunner(threads: number, log: string[]) {
  return {
    threads,
    depth: threads * 2,
    inProcess: false,
    inFlight: 0,
    most: 0,
    run(j: QuantJob) {
      log.push(`submit ${j.tensor}@${j.rowBase}`);
      this.inFlight++;
      this.most = Math.max(this.most, this.inFlight);
      return new Promise<ReturnType<typeof runQuantJob>>((resolve) =>
        setImmediate(() => {
          this.inFlight--;
          resolve(runQuantJob(j));
        }),
      );
    },
  };
}

/** A model of 64 x 128 f32 tensors under these names, opened. */
async function openF32Model(names: string[], rows = 64, cols = 128) {
  const file = path.join(await tempDir(), 'm.safetensors');
  const tensors = names.map((name, i) => ({ name, dtype: 'F32' as const, shape: [rows, cols], values: normals(rows * cols, i + 1) }));
  await fsp.writeFile(file, buildSafetensors(tensors));
  return openModel(file);
}

test("a run's next tensor is submitted while this one's results are written; order, bytes and the bound on jobs in flight hold", async () => {
  const rows = 64;
  const cols = 128;
  const names = ['a', 'copied', 'b', 'c'];
  const opened = await openF32Model(names, rows, cols);
  try {
    const settings = resolveSettings({ groupSize: 64 });
    const view = { rows, cols, transposed: false };
    const spec = (name: string) => ({
      t: opened.model.tensors.find((t) => t.name === name)!,
      view,
      settings,
      o: { output: 'fake' as const },
    });
    const log: string[] = [];
    const runner = recordingRunner(2, log);
    const chain = new StreamChain(
      opened,
      runner,
      names.map((n) => (n === 'copied' ? undefined : spec(n))),
    );
    const got = new Map<string, Uint8Array[]>();
    try {
      for (const [i, name] of names.entries()) {
        if (name === 'copied') continue;
        await chain.consume(i, async (r) => {
          got.set(name, [...(got.get(name) ?? []), r.data]);
          // A slow write: the chain keeps submitting the next tensor's jobs meanwhile.
          await new Promise((resolve) => setTimeout(resolve, 5));
          log.push(`wrote ${name}`);
        });
      }
    } finally {
      await chain.stop();
    }
    // Two jobs per tensor (one chunk on two threads), b's submitted before a's last result is written.
    assert.ok(log.indexOf('submit b@0') < log.lastIndexOf('wrote a'), log.join(', '));
    assert.ok(log.indexOf('submit c@0') < log.lastIndexOf('wrote b'), log.join(', '));
    assert.ok(runner.most <= runner.depth, `${runner.most} jobs in flight, window ${runner.depth}`);
    for (const name of ['a', 'b', 'c']) {
      const t = opened.model.tensors.find((x) => x.name === name)!;
      const raw = new Uint8Array(await opened.source(t.file).read(t.offset, t.byteLength));
      const whole = runQuantJob({
        file: 'm',
        tensor: name,
        dtype: 'F32',
        raw,
        rows,
        cols,
        transposed: false,
        rowBase: 0,
        settings,
        output: 'fake',
      });
      assert.deepEqual(Buffer.concat(got.get(name)!), Buffer.from(whole.data), `${name}: the results in row order`);
    }
  } finally {
    await opened.close();
  }
});

test('a failed write stops the chain: no job is submitted after it, and every submitted one settles', async () => {
  const rows = 64;
  const cols = 128;
  const opened = await openF32Model(['a', 'b', 'c', 'd'], rows, cols);
  try {
    const settings = resolveSettings({ groupSize: 64 });
    const log: string[] = [];
    const runner = recordingRunner(1, log);
    const chain = new StreamChain(
      opened,
      runner,
      opened.model.tensors.map((t) => ({ t, view: { rows, cols, transposed: false }, settings, o: { output: 'fake' as const } })),
    );
    await assert.rejects(
      chain.consume(0, () => {
        throw new Error('disk full');
      }),
      /disk full/,
    );
    await chain.stop();
    const submitted = log.length;
    assert.equal(runner.inFlight, 0, 'every submitted job settled');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(log.length, submitted, 'nothing submitted after the stop');
    assert.ok(!log.includes('submit d@0'), log.join(', '));
  } finally {
    await opened.close();
  }
});
