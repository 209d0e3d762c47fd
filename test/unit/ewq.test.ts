/** EWQ and FastEWQ: entropy precision, block decisions, budget planning, exact plan sizes, the classifier. */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parsePlanFile, settingsFromPlan } from '../../src/core/ewq/apply';
import { blockEntropy, decide } from '../../src/core/ewq/decide';
import { softmaxEntropy } from '../../src/core/ewq/entropy';
import { buildModelFile, csvRow, loadForest, parseCsv, predict, type TrainingRow } from '../../src/core/ewq/fast';
import { fitBudget } from '../../src/core/ewq/plan';
import { MemoryByteSource } from '../../src/core/bytesource';
import { loadSingleFile } from '../../src/core/model';
import { resolveSettings } from '../../src/core/quant/settings';
import { planModel } from '../../src/node/ewq';
import { openModel } from '../../src/node/open-model';
import { quantize } from '../../src/node/quantize';
import { buildSafetensors, normals, tempDir, type TestTensor } from '../helpers/safetensors';

/** The float64 reference, written plainly: -sum p log(p + eps). */
function referenceEntropy(x: ArrayLike<number>, eps: number): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  let h = 0;
  for (let i = 0; i < x.length; i++) {
    const p = Math.exp(x[i] - m) / s;
    h -= eps > 0 ? p * Math.log(p + eps) : p > 0 ? p * Math.log(p) : 0;
  }
  return h;
}

/** Blocks whose one matrix is the same normal vector at slightly different scales: known, close entropies. */
const SIGMAS = [0.0203, 0.0201, 0.0206, 0.0202, 0.0205, 0.0204];
function closeBlocks(): TestTensor[] {
  const base = normals(128 * 256, 5, 1);
  return SIGMAS.map((s, i) => ({
    name: `model.layers.${i}.mlp.up_proj.weight`,
    dtype: 'F32' as const,
    shape: [128, 256],
    values: base.map((v) => Math.fround(v * s)),
  }));
}

test('softmax entropy matches the float64 reference, eps 0.01 and eps 0', () => {
  for (const eps of [0.01, 0]) {
    const x = Float32Array.from(normals(10000, 2, 0.05));
    const got = softmaxEntropy(x, eps);
    const ref = referenceEntropy(x, eps);
    assert.ok(Math.abs(got - ref) <= 1e-11 * Math.abs(ref), `${got} vs ${ref}`);
  }
});

test('blocks whose entropies differ in the 7th digit are ranked and decided as the float64 reference does', async () => {
  const dir = await tempDir();
  const tensors = closeBlocks();
  const file = path.join(dir, 'model.safetensors');
  await fsp.writeFile(file, buildSafetensors(tensors));
  const ref = tensors.map((t) => referenceEntropy(Float32Array.from(t.values!), 0.01));
  const spread = Math.max(...ref) - Math.min(...ref);
  assert.ok(spread < 1e-5 && spread > 0, `entropies within the 6th digit of each other (spread ${spread})`);
  const opened = await openModel(file);
  try {
    const plan = await planModel(opened, {
      variant: '8-4',
      thresholdFactor: 1,
      entropyEpsilon: 0.01,
      format: 'compressed-tensors',
      groupSize: 128,
    });
    const got = plan.blocks.map((b) => b.entropy!);
    const rank = (h: number[]) => h.map((_, i) => i).sort((a, b) => h[a] - h[b]);
    assert.deepEqual(rank(got), rank(ref));
    // A larger weight scale makes the softmax peakier: lower entropy.
    assert.deepEqual(rank(got), rank(SIGMAS.map((s) => -s)));
    got.forEach((h, i) => assert.ok(Math.abs(h - ref[i]) < 1e-12, `block ${i}: ${h} vs ${ref[i]}`));
    const d = decide(
      ref.map((h, i) => ({ index: i, execIndex: i + 2, params: 1, entropy: h })),
      1,
      '8-4',
    );
    assert.deepEqual(
      plan.blocks.map((b) => b.precision),
      d.precisions,
    );
  } finally {
    await opened.close();
  }
});

test('decisions: below T -> low, between T and mu -> middle, at or above mu -> raw; the 4-3 variant', () => {
  const blocks = [4.0, 4.5, 5.0, 5.5, 6.0].map((h, i) => ({ index: i, execIndex: i + 2, params: 1, entropy: h }));
  const d = decide(blocks, 1, '8-4');
  assert.equal(d.mu, 5);
  assert.ok(Math.abs(d.sigma - Math.sqrt(0.5)) < 1e-15);
  assert.deepEqual(d.precisions, ['int4', 'int8', 'raw', 'raw', 'raw']);
  assert.deepEqual(decide(blocks, 1, '4-3').precisions, ['int3', 'int4', 'raw', 'raw', 'raw']);
  assert.deepEqual(decide(blocks, 0.5, '8-4').precisions, ['int4', 'int4', 'raw', 'raw', 'raw']);
  assert.equal(
    blockEntropy([
      { numel: 3, entropy: 1 },
      { numel: 1, entropy: 5 },
    ]),
    2,
  );
});

test('budget planning: fits (then promotes), needs promotion from uniform 8-bit, needs demotion, cannot fit', () => {
  // 4 blocks; sizes per precision; entropy order ascending = [0, 1, 2, 3].
  const sizes: Record<string, number> = { raw: 100, int8: 50, int4: 25, int3: 19, int2: 13, ternary: 13 };
  const size = (_: number, p: string) => sizes[p];
  const order = [0, 1, 2, 3];
  const initial = ['int4', 'int8', 'raw', 'raw'] as const;
  // No budget: the decision as it is.
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', undefined), { precisions: [...initial], fits: true });
  // Fits with room: highest-entropy quantized block (1) promoted to raw first, then block 0 one step.
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', 355), { precisions: ['int8', 'raw', 'raw', 'raw'], fits: true });
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', 275), { precisions: ['int4', 'int8', 'raw', 'raw'], fits: true });
  // The decision (275) does not fit 260: uniform 8-bit (200) fits; promote highest entropy first.
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', 260), { precisions: ['int8', 'int8', 'int8', 'raw'], fits: true });
  // Uniform 8-bit does not fit 120: uniform 4-bit (100) does, promote the top block one step (125 > 120: no).
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', 120), { precisions: ['int4', 'int4', 'int4', 'int4'], fits: true });
  // Uniform 4-bit does not fit 90: demote lowest-entropy blocks towards 2-bit / ternary.
  assert.deepEqual(fitBudget([...initial], order, size, 0, '8-4', 90), { precisions: ['int2', 'int4', 'int4', 'int4'], fits: true });
  // Even all ternary (52) plus fixed tensors (10) cannot fit 60.
  const r = fitBudget([...initial], order, size, 10, '8-4', 60);
  assert.equal(r.fits, false);
  assert.deepEqual(r.precisions, ['ternary', 'ternary', 'ternary', 'ternary']);
});

async function smallModel(): Promise<{ dir: string; file: string }> {
  const dir = await tempDir();
  const tensors: TestTensor[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [64, 32], values: normals(2048, 1) }];
  for (let l = 0; l < 4; l++) {
    const s = 0.02 + 0.01 * ((l * 3) % 4);
    tensors.push(
      { name: `model.layers.${l}.input_layernorm.weight`, dtype: 'BF16', shape: [32], values: normals(32, 10 + l, 1) },
      { name: `model.layers.${l}.self_attn.q_proj.weight`, dtype: 'BF16', shape: [32, 32], values: normals(1024, 20 + l, s) },
      { name: `model.layers.${l}.mlp.down_proj.weight`, dtype: 'BF16', shape: [32, 80], values: normals(2560, 30 + l, s) },
    );
  }
  tensors.push({ name: 'lm_head.weight', dtype: 'BF16', shape: [64, 32], values: normals(2048, 2) });
  const file = path.join(dir, 'model.safetensors');
  await fsp.writeFile(file, buildSafetensors(tensors));
  return { dir, file };
}

test("a plan's byte count equals the size of the tensors actually written; mixed precision is one config group per bit width", async () => {
  const { dir, file } = await smallModel();
  const opened = await openModel(file);
  const plan = await planModel(opened, {
    variant: '8-4',
    thresholdFactor: 0.5,
    entropyEpsilon: 0.01,
    format: 'compressed-tensors',
    groupSize: 16,
  });
  await opened.close();
  const precisions = new Set(plan.blocks.map((b) => b.precision));
  assert.ok(precisions.size >= 2, `a mixed plan (${[...precisions]})`);
  const planPath = path.join(dir, 'plan.json');
  await fsp.writeFile(planPath, JSON.stringify({ blocks: plan.blocks, groupSize: plan.groupSize }));
  const parsed = parsePlanFile(await fsp.readFile(planPath, 'utf8'), planPath);
  const settings = resolveSettings({ groupSize: 16 });
  const res = await quantize({
    input: file,
    settings,
    format: 'compressed-tensors',
    settingsFor: settingsFromPlan(parsed.blocks, settings),
    out: path.join(dir, 'ct'),
    version: 'test',
  });
  const bytes = new Uint8Array(await fsp.readFile(path.join(res.outputPath, 'model.safetensors')));
  const written = await loadSingleFile('m', 'm', new MemoryByteSource('m', bytes));
  const total = written.tensors.reduce((a, t) => a + t.byteLength, 0);
  assert.equal(plan.totalBytes, total);
  for (const b of plan.blocks) {
    const prefix = `model.layers.${b.index}.`;
    const blockBytes = written.tensors.filter((t) => t.name.startsWith(prefix)).reduce((a, t) => a + t.byteLength, 0);
    assert.equal(b.bytes, blockBytes, `block ${b.index} (${b.precision})`);
  }
  const qc = JSON.parse(await fsp.readFile(path.join(res.outputPath, 'config.json'), 'utf8')).quantization_config;
  const groups = Object.values(qc.config_groups) as { weights: { num_bits: number }; targets: string[] }[];
  const bitsUsed = [...new Set(plan.blocks.filter((b) => b.precision !== 'raw').map((b) => (b.precision === 'int8' ? 8 : 4)))].sort();
  assert.deepEqual(groups.map((g) => g.weights.num_bits).sort(), bitsUsed);
  for (const g of groups) for (const t of g.targets) assert.match(t, /^model\.layers\.\d+\./);
  // Raw blocks are copied: their linear weights stay as they were.
  const raw = plan.blocks.find((b) => b.precision === 'raw');
  if (raw) assert.ok(written.tensors.some((t) => t.name === `model.layers.${raw.index}.self_attn.q_proj.weight`));
});

test('ternary blocks: codes in {-1, 0, 1}', async () => {
  const { dir, file } = await smallModel();
  const settings = resolveSettings({ method: 'rtn', groupSize: 0 });
  const res = await quantize({
    input: file,
    settings,
    format: 'fake',
    settingsFor: settingsFromPlan([{ precision: 'ternary', tensors: ['model.layers.0.self_attn.q_proj.weight'] }], settings),
    out: path.join(dir, 't.safetensors'),
    version: 'test',
  });
  const t = res.report.tensors.find((x) => x.name === 'model.layers.0.self_attn.q_proj.weight')!;
  assert.equal(t.codeHistogram.length, 4);
  assert.equal(t.codeHistogram[3], 0, 'no code above 1');
  assert.equal(
    t.codeHistogram.reduce((a, b) => a + b),
    32 * 32,
  );
  assert.equal(res.report.tensors.length, 1, 'tensors in no planned block are copied');
});

test('FastEWQ: CSV round trip; training, saving, loading and predicting give the same decisions', () => {
  const rows: TrainingRow[] = [];
  for (let m = 0; m < 6; m++) {
    const n = 10 + m * 4;
    for (let e = 2; e < n + 2; e++)
      rows.push({
        model: `m${m}`,
        numBlocks: n,
        execIndex: e,
        params: 1000 * (m + 1),
        type: e / (n + 1) < 0.3 ? '8-bit' : e / (n + 1) > 0.85 ? '4-bit' : 'raw',
      });
  }
  const text = ['model_name,num_blocks,exec_index,num_parameters,quantization_type,quantized', ...rows.map(csvRow)].join('\n');
  assert.deepEqual(parseCsv(text, 'x.csv'), rows);
  assert.throws(() => parseCsv('a,b\n1,2', 'bad.csv'), /bad\.csv: the first line must be/);
  const heldOut = rows.filter((r) => r.model === 'm5');
  const train = rows.filter((r) => r.model !== 'm5');
  const file = buildModelFile(train, heldOut, 'held-out model m5');
  assert.deepEqual(
    file.trainedOn.map((t) => t.model),
    ['m0', 'm1', 'm2', 'm3', 'm4'],
  );
  assert.equal(file.evaluation.heldOutRows, heldOut.length);
  assert.ok(file.evaluation.accuracy! >= 0.8, `learns a positional rule (${file.evaluation.accuracy})`);
  const reloaded = loadForest(JSON.parse(JSON.stringify(file)));
  const direct = loadForest(file);
  assert.deepEqual(predict(reloaded, heldOut), predict(direct, heldOut));
});
