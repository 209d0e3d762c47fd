/** The CLI contract, run as a user runs it: the built bin, real processes, exit codes, stdout/stderr. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildSafetensors, normals, rawSafetensors, tempDir } from '../helpers/safetensors';
import { hasGpuDevice } from '../../src/compute/webgpu/node-device';

const BIN = path.resolve(__dirname, '../../../bin/weightlens.js');
const SAMPLE = path.resolve(__dirname, '../../../samples/stories260K/model.safetensors');

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit 1 (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\s+at .*:\d+:\d+/, 'no stack trace');
}

async function model(dir: string): Promise<string> {
  const p = path.join(dir, 'model.safetensors');
  await fsp.writeFile(
    p,
    buildSafetensors([
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [16, 8], values: normals(128, 1) },
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'BF16', shape: [8, 8], values: normals(64, 2) },
      { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [8, 12], values: normals(96, 3) },
      { name: 'model.layers.1.mlp.down_proj.weight', dtype: 'BF16', shape: [8, 12], values: normals(96, 4) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [8], values: normals(8, 5) },
    ]),
  );
  return p;
}

test('--help and --version work after a build', () => {
  const h = cli('--help');
  assert.equal(h.code, 0);
  assert.match(h.stdout, /weightlens inspect PATH/);
  const q = cli('quantize', '--help');
  assert.equal(q.code, 0);
  for (const flag of [
    '--method',
    '--preset',
    '--bits',
    '--group-size',
    '--lambda-weight',
    '--lambda-entropy',
    '--normalize',
    '--bins',
    '--grid',
    '--clip-alpha-min',
    '--search',
    '--format',
    '--include',
    '--exclude',
    '--out',
    '--report',
    '--backend',
    '--threads',
  ]) {
    assert.ok(q.stdout.includes(flag), flag);
  }
  assert.match(cli('--version').stdout, /^\d+\.\d+\.\d+/);
});

test(
  '--backend auto looks for a GPU only where a GPU device (or a named Vulkan driver) exists',
  { skip: process.platform !== 'linux' },
  async () => {
    // Without one the only adapters are software ones, which auto never takes, and Mesa's lavapipe
    // prints native warnings on stderr while Dawn turns it down: every one-line error would grow.
    const dev = await tempDir();
    assert.equal(hasGpuDevice({}, dev), false, 'no device');
    assert.equal(hasGpuDevice({ VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json' }, dev), true, 'a driver named');
    await fsp.mkdir(path.join(dev, 'dri'));
    await fsp.writeFile(path.join(dev, 'dri', 'card0'), '');
    assert.equal(hasGpuDevice({}, dev), false, 'a display card without a render node');
    await fsp.writeFile(path.join(dev, 'dri', 'renderD128'), '');
    assert.equal(hasGpuDevice({}, dev), true, 'a render node');
    const nv = await tempDir();
    await fsp.writeFile(path.join(nv, 'nvidiactl'), '');
    assert.equal(hasGpuDevice({}, nv), false, 'the control node alone');
    await fsp.writeFile(path.join(nv, 'nvidia0'), '');
    assert.equal(hasGpuDevice({}, nv), true, 'an NVIDIA GPU');
    await Promise.all([dev, nv].map((d) => fsp.rm(d, { recursive: true })));
  },
);

test('inspect --json prints the contract object', async () => {
  const dir = await tempDir();
  const p = await model(dir);
  const r = cli('inspect', p, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.files, ['model.safetensors']);
  assert.deepEqual(j.metadata, {});
  assert.equal(j.tensors.length, 5);
  assert.deepEqual(j.tensors[1], {
    name: 'model.layers.0.self_attn.q_proj.weight',
    dtype: 'BF16',
    shape: [8, 8],
    bytes: 128,
    file: 'model.safetensors',
  });
  assert.equal(j.totalParams, 128 + 64 + 96 + 96 + 8);
  assert.equal(j.totalBytes, (await fsp.stat(p)).size);
  assert.deepEqual(j.blocks, [
    { index: 0, execIndex: 2, params: 160, tensors: ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.down_proj.weight'] },
    { index: 1, execIndex: 3, params: 96, tensors: ['model.layers.1.mlp.down_proj.weight'] },
  ]);
});

test('inspect of the real sample model (stories260K) finds its 5 blocks', () => {
  const r = cli('inspect', SAMPLE, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.blocks.length, 5);
  assert.equal(
    j.totalParams,
    j.tensors.reduce((a: number, t: { shape: number[] }) => a + t.shape.reduce((x, y) => x * y, 1), 0),
  );
});

test('quantize writes the output and report, prints where, exits 0', async () => {
  const dir = await tempDir();
  const p = await model(dir);
  const r = cli('quantize', p, '--bits', '8', '--group-size', '4', '--lambda-entropy', '0.01', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*model\.dareq-w8g4-lh0\.01\.safetensors/, 'the tag names what differs from the defaults');
  const report = JSON.parse(await fsp.readFile(path.join(dir, 'model.dareq-w8g4-lh0.01.report.json'), 'utf8'));
  assert.equal(report.settings.bits, 8);
  assert.equal(report.settings.lambdaEntropy, 0.01);
  assert.equal(report.tensors.length, 3);
  const r2 = cli(
    'quantize',
    p,
    '--method',
    'rtn',
    '--format',
    'compressed-tensors',
    '--out',
    path.join(dir, 'ct'),
    '--report',
    path.join(dir, 'r.json'),
  );
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok((await fsp.stat(path.join(dir, 'ct', 'model.safetensors'))).isFile());
  assert.ok((await fsp.stat(path.join(dir, 'r.json'))).isFile());
  // The approximate search: named in the report and in the output's metadata.
  const r3 = cli(
    'quantize',
    p,
    '--search',
    'coarse-to-fine',
    '--out',
    path.join(dir, 'c.safetensors'),
    '--report',
    path.join(dir, 'c.json'),
    '--threads',
    '1',
  );
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(JSON.parse(await fsp.readFile(path.join(dir, 'c.json'), 'utf8')).settings.search, 'coarse-to-fine');
  const header = await fsp.readFile(path.join(dir, 'c.safetensors'));
  const meta = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString('utf8')).__metadata__;
  assert.equal(meta['weightlens.search'], 'coarse-to-fine');
});

test('bad flags: exit 1, one line, nothing written', async () => {
  const dir = await tempDir();
  const p = await model(dir);
  assertOneLineError(cli('quantize', p, '--bits', '9'), /bits must be an integer from 2 to 8/);
  assertOneLineError(cli('quantize', p, '--bits', 'four'), /--bits must be an integer/);
  assertOneLineError(cli('quantize', p, '--method', 'gptq'), /--method must be one of rtn, dareq/);
  assertOneLineError(cli('quantize', p, '--search', 'greedy'), /--search must be one of exhaustive, coarse-to-fine/);
  assertOneLineError(cli('quantize', p, '--frobnicate'), /Unknown option '--frobnicate'/);
  assertOneLineError(cli('quantize', p, '--format', 'compressed-tensors', '--bits', '3'), /4- and 8-bit/);
  assertOneLineError(cli('quantize'), /exactly one PATH/);
  assertOneLineError(cli('frob'), /unknown command "frob"/);
  assertOneLineError(cli('quantize', p, '--include', '['), /--include is not a valid regular expression/);
  assert.deepEqual(await fsp.readdir(dir), ['model.safetensors']);
});

test('bad input: exit 1, one line naming the file (and tensor), nothing written', async () => {
  const dir = await tempDir();
  const bad = path.join(dir, 'broken.safetensors');
  await fsp.writeFile(bad, rawSafetensors('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', new Uint8Array(8)));
  assertOneLineError(cli('quantize', bad), /broken\.safetensors: tensor "w": data_offsets \[0, 16\] are out of bounds/);
  assertOneLineError(cli('inspect', bad), /out of bounds/);
  assertOneLineError(cli('inspect', path.join(dir, 'missing.safetensors')), /missing\.safetensors: no such file/);
  const nan = path.join(dir, 'nan.safetensors');
  const vals = normals(64, 1);
  vals[19] = NaN;
  await fsp.writeFile(nan, buildSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [8, 8], values: vals }]));
  assertOneLineError(
    cli('quantize', nan),
    /nan\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight": contains NaN or Inf in row 2/,
  );
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['broken.safetensors', 'nan.safetensors']);
});

test('a weights file given where a text input goes (--plan, --text) is refused by its size, in one line', async () => {
  const dir = await tempDir();
  const input = await model(dir);
  // A sparse 300 MB file: no disk used, and the old code read it whole into a string.
  const big = path.join(dir, 'model-00001-of-00004.safetensors');
  await fsp.writeFile(big, '');
  await fsp.truncate(big, 300e6);
  const tooLarge =
    /model-00001-of-00004\.safetensors: is 300\.0 MB, too large for a text input \(at most 256\.0 MB\): is it the file you meant\?/;
  assertOneLineError(cli('quantize', input, '--plan', big), tooLarge);
  assertOneLineError(cli('eval', input, '--text', big), tooLarge);
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['model-00001-of-00004.safetensors', 'model.safetensors']);
});

test('plan --json prints the contract object; --out writes a plan that quantize --plan applies', async () => {
  const dir = await tempDir();
  const model = path.join(dir, 'model.safetensors');
  await fsp.copyFile(SAMPLE, model);
  const r = cli('plan', model, '--json', '--out', path.join(dir, 'plan.json'));
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ['mu', 'sigma', 'threshold', 'blocks', 'totalBytes', 'fits']) assert.ok(k in j, k);
  assert.equal(j.blocks.length, 5);
  for (const b of j.blocks) for (const k of ['index', 'execIndex', 'params', 'entropy', 'precision', 'bytes']) assert.ok(k in b, k);
  assert.equal(j.fits, true);
  assert.ok(j.threshold < j.mu);
  const q = cli('quantize', model, '--plan', path.join(dir, 'plan.json'), '--format', 'compressed-tensors', '--threads', '1');
  assert.equal(q.code, 0, q.stderr);
  const out = path.join(dir, 'model.dareq-ewq-g128-ct');
  const qc = JSON.parse(await fsp.readFile(path.join(out, 'config.json'), 'utf8')).quantization_config;
  const used = [
    ...new Set(j.blocks.filter((b: { precision: string }) => b.precision !== 'raw').map((b: { precision: string }) => b.precision)),
  ];
  assert.equal(Object.keys(qc.config_groups).length, used.length, 'one config group per bit width');
  const report = JSON.parse(await fsp.readFile(path.join(dir, 'model.dareq-ewq-g128-ct.report.json'), 'utf8'));
  assert.equal(report.settings.plan, path.join(dir, 'plan.json'));
});

test('plan: a budget nothing fits exits 1 and says so; --fast plans from the header; bad flags', async () => {
  const r = cli('plan', SAMPLE, '--budget', '10KB');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /no plan fits, even with every block ternary/);
  const f = cli('plan', SAMPLE, '--fast', '--json');
  assert.equal(f.code, 0, f.stderr);
  const j = JSON.parse(f.stdout);
  assert.equal(j.source, 'fastewq');
  assert.equal(j.mu, null);
  assert.equal(j.blocks.length, 5);
  assertOneLineError(cli('plan', SAMPLE, '--budget', 'lots'), /--budget must be a size like 3\.5GB/);
  assertOneLineError(cli('plan', SAMPLE, '--variant', '2-1'), /--variant must be one of 8-4, 4-3/);
  assertOneLineError(cli('plan', SAMPLE, '--fast', '--analyze-csv', 'x.csv'), /--analyze-csv needs the full EWQ analysis/);
});

test('fastewq train reports held-out accuracy only when it measured one; analyze-csv appends rows', async () => {
  const dir = await tempDir();
  const csv = path.join(dir, 'data.csv');
  assert.equal(cli('plan', SAMPLE, '--analyze-csv', csv, '--name', 'stories').code, 0);
  assert.equal(cli('plan', SAMPLE, '--analyze-csv', csv, '--name', 'stories-again').code, 0);
  const lines = (await fsp.readFile(csv, 'utf8')).trim().split('\n');
  assert.equal(lines[0], 'model_name,num_blocks,exec_index,num_parameters,quantization_type,quantized');
  assert.equal(lines.length, 11);
  const t = cli('fastewq', 'train', csv, '--out', path.join(dir, 'm.json'));
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /no held-out rows given .* so no accuracy is claimed/);
  const m = JSON.parse(await fsp.readFile(path.join(dir, 'm.json'), 'utf8'));
  assert.equal(m.evaluation.accuracy, null);
  const e = cli('fastewq', 'evaluate', csv, '--model', path.join(dir, 'm.json'));
  assert.match(e.stdout, /accuracy of the quantize\/keep decision on 10 rows: \d+\.\d%/);
});

test('progress: percentage, amount, elapsed time and ETA; quiet for runs under a second', async () => {
  const { makeProgress } = await import('../../src/cli/progress');
  let t = 0;
  const lines: string[] = [];
  const p = makeProgress({ out: () => {}, err: (s) => lines.push(s), errIsTty: false }, false, () => t);
  t = 500;
  p.update({ fraction: 0.1, done: 10, total: 100, what: 'a' }, 'tokens');
  assert.deepEqual(lines, [], 'nothing in the first second');
  t = 4000;
  p.update({ fraction: 0.25, done: 25, total: 100, what: 'model.layers.0.mlp.up_proj.weight' }, 'weights');
  assert.deepEqual(lines, ['[ 25.0%] 25 / 100 weights  4 s elapsed, ETA 12 s  model.layers.0.mlp.up_proj.weight\n']);
  t = 125_000;
  p.update({ fraction: 0.5, done: 0.5, total: 1, what: 'b' }, 'share');
  assert.equal(lines[1], '[ 50.0%] 2 min 5 s elapsed, ETA 2 min 5 s  b\n');
});

test('a folder stands for the model in it (as HF lays models out), and an ambiguous or empty one is refused in one line', async () => {
  const dir = await tempDir();
  const folder = path.join(dir, 'my-model');
  await fsp.mkdir(folder);
  await model(folder);
  const inspect = cli('inspect', folder);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.match(inspect.stdout, /^\S*my-model[/\\]model\.safetensors: 1 file\(s\)/);
  const q = cli('quantize', folder, '--method', 'rtn', '--format', 'compressed-tensors', '--quiet', '--threads', '1');
  assert.equal(q.code, 0, q.stderr);
  const ct = path.join(folder, 'model.rtn-w4g128-ct');
  assert.ok((await fsp.stat(path.join(ct, 'model.safetensors'))).isFile(), 'written beside the model it read');
  // Our own compressed-tensors output, named by its folder: quantized already, said as such.
  assertOneLineError(cli('quantize', ct), /model\.safetensors: is quantized already \(\S+\.weight_packed holds packed codes\)/);
  assert.equal(cli('compare', folder, ct, '--json').code, 0);

  const empty = path.join(dir, 'empty');
  await fsp.mkdir(empty);
  assertOneLineError(
    cli('quantize', empty),
    /empty: is a folder without a model: expected a \*\.safetensors\.index\.json or a \.safetensors in it/,
  );
  assertOneLineError(cli('inspect', empty), /empty: is a folder without a model: expected .* or a \.gguf in it/);
  const two = path.join(dir, 'two');
  await fsp.mkdir(two);
  await fsp.copyFile(path.join(folder, 'model.safetensors'), path.join(two, 'a.safetensors'));
  await fsp.copyFile(path.join(folder, 'model.safetensors'), path.join(two, 'b.safetensors'));
  assertOneLineError(cli('plan', two), /two: is a folder with 2 \.safetensors files: name the one to read/);
  assert.equal(cli('plan', path.join(two, 'a.safetensors'), '--fast', '--json').code, 0);
});
