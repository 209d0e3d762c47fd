/** The generated checkpoints the benchmarks and suites stand on: written in pieces, the same numbers as made whole. */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeFloats } from '../../src/core/dtypes';
import { readTensor } from '../../src/core/model';
import { fillNormals, mulberry32, Mulberry32 } from '../../src/core/random';
import { generateModel } from '../../src/node/generate-model';
import { openModel } from '../../src/node/open-model';
import { tempDir } from '../helpers/safetensors';

const WORKER = path.resolve(__dirname, '../../../dist/generate-worker.js');

test('Mulberry32 draws what mulberry32 draws, and skip(n) lands where n draws do', () => {
  const a = new Mulberry32(42);
  const b = mulberry32(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.next(), b());
  const c = a.clone();
  for (let i = 0; i < 12345; i++) c.next();
  const d = a.clone();
  d.skip(12345);
  assert.equal(d.next(), c.next());
  // Past 2^32 draws the counter wraps: two skips equal one of their sum.
  const e = a.clone();
  e.skip(3_000_000_000);
  e.skip(2_500_000_000);
  const f = a.clone();
  f.skip(5_500_000_000);
  assert.equal(e.next(), f.next());
});

test('a generated matrix in several pieces holds the numbers of filling it whole (normals, then outlier rows)', async () => {
  const dir = await tempDir();
  try {
    // q_proj is 1100 x 1100 (two pieces); down_proj 1100 x 1001: odd rows of an odd width, two pieces.
    const o = {
      layers: 1,
      hidden: 1100,
      intermediate: 1001,
      vocab: 10,
      heads: 10,
      kvHeads: 5,
      dtype: 'F32' as const,
      outlierRows: 0.05,
      seed: 9,
    };
    const opened = await openModel(await generateModel(dir, o));
    try {
      // The reference: the generator as it was, every tensor filled whole from one stream.
      const rand = mulberry32(o.seed);
      for (const t of opened.model.tensors) {
        const numel = t.shape.reduce((x, y) => x * y, 1);
        const want = new Float32Array(numel);
        if (t.shape.length === 1) for (let i = 0; i < numel; i++) want[i] = 1 + 0.1 * (rand() - 0.5);
        else {
          const [rows, cols] = t.shape;
          fillNormals(want, rand, 1 / Math.sqrt(cols));
          for (let r = 0; r < rows; r++) {
            if (rand() >= o.outlierRows) continue;
            const k = 8 + 24 * rand();
            for (let c = 0; c < cols; c++) want[r * cols + c] *= k;
          }
        }
        const got = decodeFloats('F32', await readTensor(opened.source(t.file), t));
        assert.deepEqual(got, want, t.name);
      }
      assert.ok(
        opened.model.tensors.some((t) => t.numel > 1 << 20 && t.shape[1] % 2 === 1),
        'an odd-width tensor of several pieces',
      );
    } finally {
      await opened.close();
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('on worker threads the same files as on this one, sharded, in every dtype', async () => {
  const dir = await tempDir();
  try {
    for (const dtype of ['BF16', 'F32'] as const) {
      // Two matrices of two pieces each, the rest small: pieces arrive out of turn on two threads.
      const o = { layers: 2, hidden: 1100, intermediate: 1001, vocab: 10, heads: 10, kvHeads: 5, dtype, shards: 3, seed: 4 };
      await generateModel(path.join(dir, `${dtype}-here`), o);
      await generateModel(path.join(dir, `${dtype}-workers`), o, { workerScript: WORKER, threads: 2 });
      const files = (await fsp.readdir(path.join(dir, `${dtype}-here`))).sort();
      assert.deepEqual((await fsp.readdir(path.join(dir, `${dtype}-workers`))).sort(), files);
      assert.equal(files.filter((f) => f.endsWith('.safetensors')).length, 3);
      for (const f of files) {
        const a = await fsp.readFile(path.join(dir, `${dtype}-here`, f));
        const b = await fsp.readFile(path.join(dir, `${dtype}-workers`, f));
        assert.ok(a.equals(b), `${dtype} ${f}`);
      }
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
