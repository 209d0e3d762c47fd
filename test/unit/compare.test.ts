/**
 * `weightlens compare`: checkpoints of every format matched by name, read back exactly, and the
 * error statistics right — against the quantize report, across formats holding the same values, and
 * across llama.cpp's q/k row order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { compareCheckpoints, formatComparison, shortName } from '../../src/node/compare';
import { buildSafetensors, tempDir } from '../helpers/safetensors';
import { hfLayoutSample } from '../helpers/hf-layout';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/weightlens.js');
const SAMPLE = path.join(ROOT, 'samples/stories260K/model.safetensors');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("compressed-tensors read back: compare(original, output) gives the quantize report's MSE and SQNR per tensor; the fake-quant output holds the same values", async () => {
  const dir = await tempDir();
  const ct = path.join(dir, 'ct');
  const fake = path.join(dir, 'fake.safetensors');
  for (const [fmt, out] of [
    ['compressed-tensors', ct],
    ['fake', fake],
  ]) {
    const r = cli('quantize', SAMPLE, '--format', fmt, '--out', out, '--report', `${out}.json`, '--quiet', '--threads', '1');
    assert.equal(r.code, 0, r.stderr);
  }
  const report = JSON.parse(readFileSync(`${ct}.json`, 'utf8'));
  const c = await compareCheckpoints(SAMPLE, ct);
  assert.equal(c.formatB, 'compressed-tensors');
  assert.equal(c.summary.tensors, 47);
  for (const t of report.tensors) {
    const x = c.tensors.find((y) => y.name === t.name)!;
    assert.ok(Math.abs(x.mse - t.mse) <= 1e-9 * t.mse, `${t.name}: mse ${x.mse} vs report ${t.mse}`);
    assert.ok(Math.abs(x.sqnrDb! - t.sqnrDb) < 1e-6, `${t.name}: sqnr`);
    assert.match(x.typeB, /^int4 g128$|^int4 per-channel$/);
  }
  // Both with the sample's config (its q/k layout) beside them.
  await fsp.copyFile(path.join(path.dirname(SAMPLE), 'config.json'), path.join(dir, 'config.json'));
  const same = await compareCheckpoints(fake, ct);
  assert.equal(same.qkReordered, null);
  for (const t of same.tensors) assert.equal(t.sqnrDb, null, `${t.name}: fake-quant and compressed-tensors hold the same values`);
  assert.ok(c.summary.bitsB < 9 && c.summary.bitsA === 32);
});

test('GGUF read back and matched by name: the F32 export equals the original, from llama2.c and from HF q/k layouts', async () => {
  const dir = await tempDir();
  const gguf = path.join(dir, 'f32.gguf');
  assert.equal(cli('quantize', SAMPLE, '--format', 'gguf', '--bits', '32', '--out', gguf, '--quiet').code, 0);
  const c = await compareCheckpoints(SAMPLE, gguf);
  assert.equal(c.summary.tensors, 47);
  assert.deepEqual([c.onlyInA, c.onlyInB], [[], []]);
  assert.equal(c.qkReordered, null, 'both sides interleaved');
  for (const t of c.tensors) assert.equal(t.sqnrDb, null, t.name);
  // An HF-layout copy (q/k permuted, no rope_style): its GGUF has llama.cpp's order; compare puts it back.
  const hfDir = path.join(dir, 'hf');
  await fsp.mkdir(hfDir);
  await hfLayoutSample(hfDir);
  const hfGguf = path.join(dir, 'hf.gguf');
  assert.equal(
    cli('quantize', path.join(hfDir, 'model.safetensors'), '--format', 'gguf', '--bits', '32', '--out', hfGguf, '--quiet').code,
    0,
  );
  const d = await compareCheckpoints(path.join(hfDir, 'model.safetensors'), hfGguf);
  assert.equal(d.qkReordered, 'b');
  for (const t of d.tensors) assert.equal(t.sqnrDb, null, `${t.name}: identical once the q/k rows are back in HF order`);
  // The rows as stored do differ: the re-ordering is real.
  const { openCheckpoint } = await import('../../src/node/checkpoint');
  const [x, y] = [await openCheckpoint(path.join(hfDir, 'model.safetensors')), await openCheckpoint(hfGguf)];
  const q = 'model.layers.0.self_attn.q_proj.weight';
  assert.notDeepEqual([...(await x.readRows(q, 0, 64))], [...(await y.readRows(q, 0, 64))]);
  await x.close();
  await y.close();
});

test('statistics: MSE, SQNR, max, relative error and cosine of a hand-made pair; unmatched and mis-shaped tensors listed', async () => {
  const dir = await tempDir();
  const a = path.join(dir, 'a.safetensors');
  const b = path.join(dir, 'b.safetensors');
  await fsp.writeFile(
    a,
    buildSafetensors([
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 2], values: [1, 2, 3, 4] },
      { name: 'only.a', dtype: 'F32', shape: [2], values: [1, 1] },
      { name: 'model.norm.weight', dtype: 'F32', shape: [4], values: [1, 1, 1, 1] },
    ]),
  );
  await fsp.writeFile(
    b,
    buildSafetensors([
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 2], values: [1, 2, 3, 2] },
      { name: 'only.b', dtype: 'F32', shape: [2], values: [1, 1] },
      { name: 'model.norm.weight', dtype: 'F32', shape: [2], values: [1, 1] },
    ]),
  );
  const c = await compareCheckpoints(a, b);
  const t = c.tensors[0];
  assert.equal(t.mse, 1); // (4-2)^2 / 4
  assert.equal(t.maxAbs, 2);
  assert.ok(Math.abs(t.sqnrDb! - 10 * Math.log10(30 / 4)) < 1e-12);
  assert.ok(Math.abs(t.relative - Math.sqrt(4 / 30)) < 1e-12);
  assert.ok(Math.abs(t.cosine - 22 / Math.sqrt(30 * 18)) < 1e-12);
  assert.deepEqual(c.onlyInA, ['only.a']);
  assert.deepEqual(c.onlyInB, ['only.b']);
  assert.deepEqual(
    c.shapeMismatch.map((m) => m.name),
    ['model.norm.weight'],
  );
  assert.equal(shortName('model.layers.3.self_attn.q_proj.weight'), 'L3 · q_proj');
  assert.equal(shortName('model.embed_tokens.weight'), 'embed_tokens');
  for (const line of formatComparison(c).split('\n'))
    assert.ok(line.length <= 100 || line.startsWith('A ') || line.startsWith('B '), `a readable width: ${line}`);
});

test('asymmetric runs (--asymmetric, RTN, HQQ and DARE-Q): the compressed-tensors checkpoint, read back as compressed-tensors dequantizes it, holds exactly the fake-quant values', async () => {
  const { packZeroPoints, unpackZeroPoints } = await import('../../src/core/formats/compressed-tensors');
  // Zero points pack along the rows: 8 rows of int4 per word, a short last word padded.
  const zp = Int32Array.from({ length: 11 * 3 }, (_, i) => ((i * 7) % 16) - 8);
  assert.deepEqual([...unpackZeroPoints(packZeroPoints(zp, 11, 3, 4), 11, 3, 4)], [...zp]);
  for (const extra of [[], ['--group-size', '32'], ['--method', 'rtn'], ['--method', 'hqq', '--group-size', '32']]) {
    const dir = await tempDir();
    const ct = path.join(dir, 'ct');
    const fake = path.join(dir, 'fake.safetensors');
    for (const [fmt, out] of [
      ['compressed-tensors', ct],
      ['fake', fake],
    ]) {
      const r = cli('quantize', SAMPLE, '--asymmetric', ...extra, '--format', fmt, '--out', out, '--report', `${out}.json`, '--quiet');
      assert.equal(r.code, 0, r.stderr);
    }
    const config = JSON.parse(readFileSync(path.join(ct, 'config.json'), 'utf8')).quantization_config;
    assert.equal(config.config_groups.group_0.weights.symmetric, false);
    const { openModel } = await import('../../src/node/open-model');
    const opened = await openModel(path.join(ct, 'model.safetensors'));
    const z = opened.model.tensors.find((t) => t.name === 'model.layers.0.mlp.down_proj.weight_zero_point')!;
    const groups = extra.includes('32') ? Math.ceil(172 / 32) : 2;
    assert.deepEqual([z.dtype, ...z.shape], ['I32', Math.ceil(64 / 8), groups], 'packed along the rows: [ceil(out / 8), groups]');
    await opened.close();
    await fsp.copyFile(path.join(path.dirname(SAMPLE), 'config.json'), path.join(dir, 'config.json'));
    const same = await compareCheckpoints(fake, ct);
    assert.ok(same.tensors.some((t) => /asym/.test(t.typeB)));
    for (const t of same.tensors)
      assert.equal(t.sqnrDb, null, `${extra.join(' ')} ${t.name}: fake-quant and compressed-tensors hold the same values`);
  }
});

test('asymmetric compressed-tensors (weight_zero_point, as llm-compressor writes it): (q - zero point) x scale', async () => {
  const dir = await tempDir();
  const packed = new Int32Array(2);
  // Row 0 codes [-8, 7, 0, 1] (stored + 8), row 1 codes [2, 2, -1, 3]; int4: 8 codes per word.
  const codes = [
    [-8, 7, 0, 1],
    [2, 2, -1, 3],
  ];
  codes.forEach((row, r) => row.forEach((q, c) => (packed[r] |= (q + 8) << (4 * c))));
  await fsp.writeFile(
    path.join(dir, 'model.safetensors'),
    buildSafetensors([
      { name: 'model.layers.0.mlp.up_proj.weight_packed', dtype: 'I32', shape: [2, 1], values: packed },
      { name: 'model.layers.0.mlp.up_proj.weight_scale', dtype: 'F32', shape: [2, 2], values: [0.5, 0.25, 2, 1] },
      { name: 'model.layers.0.mlp.up_proj.weight_zero_point', dtype: 'I8', shape: [2, 2], values: [1, -2, 0, 3] },
      { name: 'model.layers.0.mlp.up_proj.weight_shape', dtype: 'I64', shape: [2], values: [2, 4] },
    ]),
  );
  await fsp.writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({
      quantization_config: {
        format: 'pack-quantized',
        config_groups: { group_0: { targets: ['Linear'], weights: { num_bits: 4, group_size: 2, symmetric: false } } },
      },
    }),
  );
  const ref = path.join(dir, 'ref.safetensors');
  const expected = [(-8 - 1) * 0.5, (7 - 1) * 0.5, (0 + 2) * 0.25, (1 + 2) * 0.25, (2 - 0) * 2, (2 - 0) * 2, (-1 - 3) * 1, (3 - 3) * 1];
  await fsp.writeFile(
    ref,
    buildSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 4], values: expected }]),
  );
  const c = await compareCheckpoints(ref, dir);
  assert.equal(c.tensors.length, 1);
  assert.equal(c.tensors[0].sqnrDb, null, 'exactly the expected values');
  assert.equal(c.tensors[0].typeB, 'int4 g2 asym');
});

test('the CLI: compare --json, the readable table, one-line errors', async () => {
  const dir = await tempDir();
  const q8 = path.join(dir, 'q8.gguf');
  assert.equal(cli('quantize', SAMPLE, '--format', 'gguf', '--bits', '8', '--out', q8, '--quiet').code, 0);
  const r = cli('compare', SAMPLE, q8, '--json', '--quiet');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.summary.tensors, 47);
  assert.ok(j.summary.sqnrDb > 30);
  const text = cli('compare', SAMPLE, q8, '--quiet').stdout;
  assert.match(
    text,
    /^A .*model\.safetensors \(safetensors, 32\.00 bits\/weight\)\nB .*q8\.gguf \(gguf, \d+\.\d\d bits\/weight\)\n47 tensors, 260,032 weights: SQNR \d+\.\d\d dB/,
  );
  assert.match(text, /Q8_0 +L0 · q_proj/);
  const bad = cli('compare', SAMPLE);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: compare takes two checkpoints/);
  const missing = cli('compare', SAMPLE, path.join(dir, 'nope.gguf'));
  assert.match(missing.stderr, /^error: .*nope\.gguf: no such file\n$/);
});

test('the compare diff view: summary first, one aligned line per tensor on both sides, short names first, within 100 columns', async () => {
  const { renderCompareDocuments } = await import('../../src/extension/stats-document');
  const dir = await tempDir();
  const q8 = path.join(dir, 'q8.gguf');
  assert.equal(cli('quantize', SAMPLE, '--format', 'gguf', '--bits', '8', '--out', q8, '--quiet').code, 0);
  const c = await compareCheckpoints(SAMPLE, q8);
  const docs = renderCompareDocuments(c);
  const left = docs.original.trimEnd().split('\n');
  const right = docs.quantized.trimEnd().split('\n');
  assert.equal(left.length, right.length);
  assert.match(right[2], new RegExp(`^# SQNR ${c.summary.sqnrDb!.toFixed(2)} dB over all, MSE \\S+$`));
  assert.match(right[3], /^# worst: L\d · \w+ [\d.]+ dB/);
  const head = right.findIndex((l) => l.startsWith('tensor'));
  assert.match(right[head], /^tensor +sqnr_db +mse +max\|A-B\| +rel_err +cosine +type +bits +shape$/);
  for (let i = head + 1; i < right.length; i++) {
    const name = right[i].split(/ {2,}/)[0];
    assert.equal(left[i].split(/ {2,}/)[0], name, 'the same tensor on both sides');
    assert.ok(right[i].length <= 100 && left[i].length <= 100);
  }
  assert.ok(
    right.some((l) => /^L0 · q_proj +\d+\.\d\d .* Q8_0 +8\.50 +64x64$/.test(l)),
    'Q8_0: 8.5 bits per weight',
  );
});

test('output names say what differs from the defaults, so runs with other settings never collide', async () => {
  const { settingsTag, resolveSettings } = await import('../../src/core/quant/settings');
  assert.equal(settingsTag(resolveSettings()), 'dareq-w4g128');
  assert.equal(settingsTag(resolveSettings({ preset: 'paper' })), 'dareq-w4g128-paper');
  assert.equal(settingsTag(resolveSettings({ lambdaEntropy: 0.25, bits: 8 })), 'dareq-w8g128-lh0.25');
  assert.equal(settingsTag(resolveSettings({ search: 'coarse-to-fine', grid: 50 })), 'dareq-w4g128-k50-c2f');
  assert.equal(
    settingsTag(resolveSettings({ preset: 'reference' })),
    'dareq-w4g128-reference',
    "the preset's own K, B and lambdas are not differences",
  );
  assert.equal(settingsTag(resolveSettings({ method: 'rtn', groupSize: 0 })), 'rtn-w4');
});

test('the inspector shows a compressed-tensors checkpoint by module: quantized type, logical shape, bytes of all parts', async () => {
  const { presentQuantized } = await import('../../src/extension/inspector/compare-view');
  const { inspectModel } = await import('../../src/core/inspect');
  const { openModel } = await import('../../src/node/open-model');
  const { openCheckpoint } = await import('../../src/node/checkpoint');
  const dir = await tempDir();
  const ct = path.join(dir, 'ct');
  assert.equal(cli('quantize', SAMPLE, '--format', 'compressed-tensors', '--method', 'rtn', '--out', ct, '--quiet').code, 0);
  const file = path.join(ct, 'model.safetensors');
  const opened = await openModel(file);
  const cp = await openCheckpoint(file);
  const packed = new Map([...cp.tensors.values()].filter((t) => /^int\d/.test(t.type)).map((t) => [t.name, t]));
  await cp.close();
  const raw = inspectModel(opened.model);
  const s = presentQuantized(raw, packed);
  await opened.close();
  assert.equal(packed.size, 35);
  assert.ok(!s.tensors.some((t) => /weight_(packed|scale|shape)$/.test(t.name)), 'parts folded into their module');
  const q = s.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
  assert.deepEqual([q.dtype, q.shape], ['int4 per-channel', [64, 64]], 'group 128 on rows of 64: one scale per row');
  const rawBytes = (n: string) => raw.tensors.find((t) => t.name === n)!.bytes;
  assert.equal(
    q.bytes,
    rawBytes('model.layers.0.self_attn.q_proj.weight_packed') + rawBytes('model.layers.0.self_attn.q_proj.weight_scale'),
  );
  assert.equal(s.tensors.length, 47, 'as many tensors as the original model');
  assert.ok(s.byDtype['int4 per-channel'] && s.byDtype.F32 && !s.byDtype.I32 && !s.byDtype.I64);
  assert.ok(s.blocks[0].tensors.includes('model.layers.0.self_attn.q_proj.weight'));
  assert.equal(s.totalParams, 260_032);
});

test("GPT-2's Conv1D weights (stored [in, out]) match their compressed-tensors copy (stored by output channel)", async () => {
  const dir = await tempDir();
  const input = path.join(dir, 'gpt2.safetensors');
  const vals = Float64Array.from({ length: 64 * 96 }, (_, i) => Math.sin(i * 0.37) * 0.05);
  await fsp.writeFile(
    input,
    buildSafetensors([{ name: 'transformer.h.0.attn.c_attn.weight', dtype: 'F32', shape: [64, 96], values: vals }]),
  );
  const ct = path.join(dir, 'ct');
  const r = cli('quantize', input, '--format', 'compressed-tensors', '--method', 'rtn', '--out', ct, '--report', `${ct}.json`, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(`${ct}.json`, 'utf8'));
  const c = await compareCheckpoints(input, ct);
  assert.deepEqual(c.shapeMismatch, []);
  assert.deepEqual(c.tensors[0].shape, [96, 64], 'output channels as rows');
  assert.ok(
    Math.abs(c.tensors[0].mse - report.tensors[0].mse) <= 1e-9 * report.tensors[0].mse,
    "the report's error, so the values line up",
  );
});
