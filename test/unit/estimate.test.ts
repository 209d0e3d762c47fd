/** The overview's estimates: sampled groups give intervals that hold the exact statistics. */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { designSample, estimateTensor, groupAt, type GroupSample } from '../../src/core/quant/estimate';
import { resolveSettings, type SettingsInput } from '../../src/core/quant/settings';
import { selectTargets } from '../../src/core/select';
import { estimateTensorStats } from '../../src/node/estimate-tensor';
import { generateModel } from '../../src/node/generate-model';
import { openModel } from '../../src/node/open-model';
import { JobPool } from '../../src/node/pool';
import { quantize } from '../../src/node/quantize';
import { buildSafetensors, tempDir } from '../helpers/safetensors';
import { mulberry32, fillNormals } from '../../src/core/random';

const SAMPLE = path.resolve(__dirname, '../../../samples/stories260K/model.safetensors');

test('sample design: draws proportional to Σw² (a heavy group drawn more often), every group once when the budget covers them', () => {
  const w2 = new Float64Array(1000).fill(1);
  for (const k of [17, 500, 990]) w2[k] = 50;
  const d = designSample(w2, 100, 7);
  assert.equal(d.draws.length, 100);
  assert.equal(d.probs[d.draws.indexOf(17)], 50 / 1147);
  assert.ok(!d.exact);
  // Each heavy group holds 50/1147 of the total: about 4.4 of the 100 draws.
  for (const k of [17, 500, 990]) {
    const times = d.draws.filter((x) => x === k).length;
    assert.ok(times === 4 || times === 5, `${k} drawn ${times} times`);
  }
  assert.deepEqual(
    [...d.draws].sort((a, b) => a - b),
    d.draws,
    'in storage order',
  );
  assert.deepEqual(designSample(w2, 100, 7), d, 'same seed, same sample');
  const all = designSample(w2, 1000, 7);
  assert.ok(all.exact);
  assert.deepEqual(all.draws, [...Array(1000).keys()]);
  assert.deepEqual(
    [groupAt(5, 300, 128), groupAt(2, 300, 128)],
    [
      { row: 1, col: 256, n: 44 },
      { row: 0, col: 256, n: 44 },
    ],
  );
});

test('the estimator: exact when every group is quantized; the interval narrows as the sample grows and holds the truth', () => {
  const rand = mulberry32(3);
  const groups: GroupSample[] = Array.from({ length: 4000 }, (_, k) => {
    const w2 = (1 + rand()) * (k % 97 === 0 ? 400 : 1);
    return { n: 128, w2, e2: w2 * (0.01 + 0.004 * rand()), entropy: 4, ratio: 0.9, clipped: 0 };
  });
  const w2 = Float64Array.from(groups, (g) => g.w2);
  const run = (count: number) => {
    const d = designSample(w2, count, 1);
    return estimateTensor(
      d.draws.map((k) => groups[k]),
      d,
      4000 * 128,
    );
  };
  const exact = run(4000);
  assert.equal(exact.sqnrDb.lo, exact.sqnrDb.hi);
  assert.equal(exact.groups, 4000);
  const small = run(200);
  const large = run(1600);
  assert.ok(small.sqnrDb.hi - small.sqnrDb.lo > large.sqnrDb.hi - large.sqnrDb.lo);
  for (const e of [small, large]) {
    assert.ok(e.sqnrDb.lo <= exact.sqnrDb.value && exact.sqnrDb.value <= e.sqnrDb.hi, JSON.stringify(e.sqnrDb));
    assert.ok(Math.abs(e.mse / exact.mse - 1) < 0.1, `${e.mse} vs ${exact.mse}`);
  }
});

/** Exact per-tensor statistics of a quantize run, by name. */
async function exactStats(
  input: string,
  settings: SettingsInput,
  dir: string,
): Promise<Map<string, { sqnrDb: number | null; mse: number }>> {
  const r = await quantize({
    input,
    settings: resolveSettings(settings),
    format: 'fake',
    out: path.join(dir, 'exact.safetensors'),
    version: 'test',
    force: true,
  });
  return new Map(r.report.tensors.map((t) => [t.name, { sqnrDb: t.sqnrDb, mse: t.mse }]));
}

async function checkModel(input: string, settings: SettingsInput, dir: string, expectSampled: boolean, budget = 4096): Promise<void> {
  const exact = await exactStats(input, settings, dir);
  const opened = await openModel(input);
  const pool = new JobPool(1);
  let sampled = 0;
  try {
    const s = resolveSettings(settings);
    for (const [name, view] of selectTargets(opened.model.tensors, {})) {
      const t = opened.model.tensors.find((x) => x.name === name)!;
      // A small budget, so most tensors are estimated from a sample (the overview's budget is larger).
      const est = await estimateTensorStats(opened, pool, t, view, s, { firstWeights: budget, maxWeights: 4 * budget });
      const want = exact.get(name)!;
      const tol = 1e-9 * Math.abs(want.sqnrDb ?? 1);
      assert.ok(
        est.sqnrDb.lo - tol <= want.sqnrDb! && want.sqnrDb! <= est.sqnrDb.hi + tol,
        `${name}: exact SQNR ${want.sqnrDb} outside [${est.sqnrDb.lo}, ${est.sqnrDb.hi}] (${est.groups} of ${est.of} groups)`,
      );
      // The MSE is an estimate without a stated interval; it lands near the exact value.
      // (Heavy-tailed errors: a few outlier groups carry much of it, so only within a factor of 2.)
      assert.ok(Math.abs(Math.log(est.mse / want.mse)) < Math.log(2), `${name}: MSE ${est.mse} far from ${want.mse}`);
      if (est.groups < est.of) sampled++;
    }
  } finally {
    await pool.close();
    await opened.close();
  }
  assert.equal(sampled > 0, expectSampled, `${sampled} tensors estimated from a sample`);
}

test('generated model with outlier rows: every tensor exact statistics inside the estimate intervals (DARE-Q, groups of 128)', async () => {
  const dir = await tempDir();
  const input = await generateModel(path.join(dir, 'gen'), {
    layers: 2,
    hidden: 512,
    intermediate: 1408,
    vocab: 512,
    outlierRows: 0.02,
    seed: 5,
  });
  await checkModel(input, { groupSize: 128 }, dir, true);
});

test('RTN per channel and 8-bit groups of 32 on the same kind of model', async () => {
  const dir = await tempDir();
  const input = await generateModel(path.join(dir, 'gen'), {
    layers: 1,
    hidden: 512,
    intermediate: 1408,
    vocab: 512,
    outlierRows: 0.02,
    seed: 9,
  });
  await checkModel(input, { method: 'rtn', groupSize: 0 }, dir, true);
  await checkModel(input, { bits: 8, groupSize: 32 }, dir, true);
});

test('sparse outlier weights (a few huge values per tensor) stay inside the intervals', async () => {
  const dir = await tempDir();
  const rows = 768;
  const cols = 1024;
  const values = new Float32Array(rows * cols);
  const rand = mulberry32(11);
  fillNormals(values, rand, 0.02);
  for (let i = 0; i < 200; i++) values[Math.floor(rand() * values.length)] *= 40 + 60 * rand();
  const input = path.join(dir, 'outliers.safetensors');
  await fsp.writeFile(input, buildSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [rows, cols], values }]));
  await checkModel(input, { groupSize: 64 }, dir, true);
});

test('the bundled sample: its small tensors are computed whole (exact), the rest estimated within the intervals', async () => {
  const dir = await tempDir();
  await checkModel(SAMPLE, { groupSize: 32 }, dir, true, 1024);
});
