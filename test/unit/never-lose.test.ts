/**
 * Never lose a user's file: every case a fault tester found (paths that name the input by another
 * spelling, --force on folders, f16 overflow, FIFOs, free space, huge headers, NaN in plans, loose
 * flags, stale temporaries), run through the real CLI as a user would. Each test prints how long the
 * refusal took.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { decodeFloats } from '../../src/core/dtypes';
import { resolveSettings } from '../../src/core/quant/settings';
import { generateModel } from '../../src/node/generate-model';
import { quantize } from '../../src/node/quantize';
import { buildSafetensors, normals, rawSafetensors, tempDir } from '../helpers/safetensors';

const BIN = path.resolve(__dirname, '../../../bin/weightlens.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(...args: string[]): Run {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 30 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

function refused(t: TestContext, what: string, r: Run, pattern: RegExp): void {
  assert.equal(r.code, 1, `${what}: exit 1 (stdout ${r.stdout}; stderr ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line: ${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern, what);
  t.diagnostic(`${what}: refused in ${r.ms.toFixed(0)} ms (whole process)`);
}

/** Every file under `dir` (links as links) with its content hash: what "nothing changed" compares. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isSymbolicLink()) out[rel] = `-> ${await fsp.readlink(p)}`;
      else if (e.isDirectory()) {
        out[rel + '/'] = 'dir';
        await walk(p);
      } else
        out[rel] = createHash('sha256')
          .update(await fsp.readFile(p))
          .digest('hex');
    }
  };
  await walk(dir);
  return out;
}

async function smallModel(dir: string, dtype: 'BF16' | 'F16' | 'F32' = 'BF16'): Promise<string> {
  const p = path.join(dir, 'in.safetensors');
  await fsp.writeFile(
    p,
    buildSafetensors([
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype, shape: [8, 32], values: normals(256, 2) },
      { name: 'model.layers.0.mlp.down_proj.weight', dtype, shape: [8, 32], values: normals(256, 3) },
      { name: 'model.norm.weight', dtype, shape: [8], values: normals(8, 5) },
    ]),
  );
  return p;
}

// 1. Paths that name the input by another spelling.

test('--force never overwrites the input through a symlink, a hard link or a real path', async (t) => {
  const root = await tempDir();
  const dir = path.join(root, 'models');
  await fsp.mkdir(dir);
  const input = await smallModel(dir);
  await fsp.symlink(dir, path.join(root, 'link-to-models'));
  await fsp.symlink(input, path.join(root, 'link-to-input.safetensors'));
  await fsp.link(input, path.join(root, 'hard.safetensors'));
  const before = await snapshot(root);
  const cases: [string, string[]][] = [
    ["--out <symlink to the input's folder>/in.safetensors", [input, '--out', path.join(root, 'link-to-models', 'in.safetensors')]],
    ['the input through a symlink, --out its real path', [path.join(root, 'link-to-input.safetensors'), '--out', input]],
    ['--out a symlink to the input', [input, '--out', path.join(root, 'link-to-input.safetensors')]],
    ['--out a hard link of the input', [input, '--out', path.join(root, 'hard.safetensors')]],
    ['--out the input spelled with ..', [input, '--out', path.join(dir, '..', 'models', 'in.safetensors')]],
    ['--report the input through a symlink', [input, '--report', path.join(root, 'link-to-models', 'in.safetensors')]],
  ];
  for (const [what, args] of cases)
    refused(t, what, cli('quantize', ...args, '--method', 'rtn', '--force', '--quiet'), /would overwrite the input/);
  assert.deepEqual(await snapshot(root), before, 'nothing changed');
});

test('--force never replaces a Weightlens output folder that holds the input', async (t) => {
  const root = await tempDir();
  const sharded = await generateModel(path.join(root, 'src'), { layers: 2, hidden: 64, intermediate: 128, vocab: 64, shards: 2 });
  const prev = path.join(root, 'prev');
  assert.equal(cli('quantize', sharded, '--method', 'rtn', '--out', prev, '--quiet').code, 0);
  await fsp.symlink(prev, path.join(root, 'prev-link'));
  const before = await snapshot(prev);
  const input = path.join(prev, 'model.safetensors.index.json');
  refused(
    t,
    'the folder holding the input',
    cli('quantize', input, '--method', 'rtn', '--bits', '8', '--force', '--quiet', '--out', prev),
    /would replace the folder holding the input/,
  );
  refused(
    t,
    'the same through a link',
    cli('quantize', input, '--method', 'rtn', '--bits', '8', '--force', '--quiet', '--out', path.join(root, 'prev-link')),
    /would replace the folder holding the input/,
  );
  assert.deepEqual(await snapshot(prev), before, 'nothing changed');
});

test("--out <symlink to a parent>/<the input's folder> --force writes inside that folder and replaces nothing", async () => {
  const root = await tempDir();
  const dir = path.join(root, 'victim');
  await fsp.mkdir(dir);
  const input = await smallModel(dir);
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'mine');
  await fsp.symlink(root, path.join(root, 'parent-link'));
  const before = await snapshot(dir);
  const r = cli('quantize', input, '--method', 'rtn', '--force', '--quiet', '--out', path.join(root, 'parent-link', 'victim'));
  assert.equal(r.code, 0, r.stderr);
  const after = await snapshot(dir);
  for (const [k, v] of Object.entries(before)) assert.equal(after[k], v, `${k} unchanged`);
  assert.ok(after['in.rtn-w4g128.safetensors'], 'the output, under its default name, inside the folder');
});

// 2. --force and folders of other files.

test('--out / --report naming a folder of other files write inside it; --force never replaces such a folder', async (t) => {
  const root = await tempDir();
  const input = await smallModel(root);
  const other = path.join(root, 'project');
  await fsp.mkdir(path.join(other, 'src'), { recursive: true });
  await fsp.writeFile(path.join(other, 'src', 'main.py'), 'print(1)');
  await fsp.writeFile(path.join(other, 'README.md'), '# mine');
  const before = await snapshot(other);
  const r = cli('quantize', input, '--method', 'rtn', '--force', '--quiet', '--out', other, '--report', other);
  assert.equal(r.code, 0, r.stderr);
  const after = await snapshot(other);
  for (const [k, v] of Object.entries(before)) assert.equal(after[k], v, `${k} unchanged`);
  assert.ok(after['in.rtn-w4g128.safetensors'] && after['in.rtn-w4g128.report.json'], `output and report inside: ${Object.keys(after)}`);
  // compressed-tensors: the output is a folder; a previous one of ours is replaced with --force...
  const ct = path.join(root, 'ct');
  assert.equal(cli('quantize', input, '--method', 'rtn', '--format', 'compressed-tensors', '--out', ct, '--quiet').code, 0);
  const r2 = cli('quantize', input, '--method', 'rtn', '--bits', '8', '--format', 'compressed-tensors', '--out', ct, '--force', '--quiet');
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(readFileSync(path.join(ct, 'config.json'), 'utf8'), /"num_bits": 8/);
  // ...but once a user keeps their own file in it, it is theirs: the output goes inside it instead.
  await fsp.writeFile(path.join(ct, 'my-notes.txt'), 'mine');
  const r3 = cli('quantize', input, '--method', 'rtn', '--format', 'compressed-tensors', '--out', ct, '--force', '--quiet');
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(readFileSync(path.join(ct, 'my-notes.txt'), 'utf8'), 'mine');
  assert.ok(existsSync(path.join(ct, 'in.rtn-w4g128-ct', 'config.json')));
  // A folder of other files under the very name the output would take inside: refused.
  const nested = path.join(root, 'nested');
  await fsp.mkdir(path.join(nested, 'in.rtn-w4g128.safetensors'), { recursive: true });
  await fsp.writeFile(path.join(nested, 'in.rtn-w4g128.safetensors', 'keep.txt'), 'keep');
  refused(
    t,
    'a folder of other files at the output name',
    cli('quantize', input, '--method', 'rtn', '--force', '--quiet', '--out', nested),
    /is a folder that is not a Weightlens output; refusing to replace it/,
  );
  assert.equal(readFileSync(path.join(nested, 'in.rtn-w4g128.safetensors', 'keep.txt'), 'utf8'), 'keep');
});

// 3. f16 overflow.

test('f16 weights at ±65504: every preset and format writes finite values and reports a finite error', async () => {
  const dir = await tempDir();
  const vals = Float64Array.from(normals(8 * 32, 7, 1000));
  vals[3] = 65504;
  vals[40] = -65504;
  vals[100] = 65504;
  vals[101] = -65504;
  const input = path.join(dir, 'f16.safetensors');
  await fsp.writeFile(input, buildSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [8, 32], values: vals }]));
  const runs: [string, string[]][] = [
    ['rtn', ['--method', 'rtn']],
    ['paper', ['--preset', 'paper']],
    ['reference', ['--preset', 'reference']],
    ['clip-alpha-min 1', ['--clip-alpha-min', '1']],
    ['default', []],
    ['rtn 8-bit', ['--method', 'rtn', '--bits', '8']],
  ];
  for (const [what, args] of runs) {
    const out = path.join(dir, `${what.replace(/\W+/g, '_')}.safetensors`);
    const report = path.join(dir, `${what.replace(/\W+/g, '_')}.json`);
    const r = cli('quantize', input, ...args, '--out', out, '--report', report, '--quiet', '--threads', '1');
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /Infinity|NaN/, what);
    const bytes = readFileSync(out);
    const n = Number(bytes.readBigUInt64LE(0));
    const values = decodeFloats('F16', new Uint8Array(bytes.subarray(8 + n)));
    for (const v of values) assert.ok(Number.isFinite(v), `${what}: finite values only`);
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    assert.ok(Number.isFinite(rep.tensors[0].mse) && rep.tensors[0].mse > 0, `${what}: mse ${rep.tensors[0].mse}`);
    assert.ok(Number.isFinite(rep.tensors[0].sqnrDb), `${what}: sqnr ${rep.tensors[0].sqnrDb}`);
  }
  // compressed-tensors: the stored f16 scale times every code (as the runtime computes it) is finite.
  const ct = path.join(dir, 'ct');
  assert.equal(cli('quantize', input, '--method', 'rtn', '--format', 'compressed-tensors', '--out', ct, '--quiet').code, 0);
  const bytes = readFileSync(path.join(ct, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const sc = header['model.layers.0.mlp.up_proj.weight_scale'];
  const scales = decodeFloats('F16', new Uint8Array(bytes.subarray(8 + n + sc.data_offsets[0], 8 + n + sc.data_offsets[1])));
  for (const s of scales) {
    // Sign-aware scales are negative where the largest weight is positive: the magnitude is what is bounded.
    assert.ok(Number.isFinite(s) && s !== 0);
    assert.ok(Math.abs(Math.fround(-8 * s)) <= 65504 && Math.abs(7 * s) <= 65504, `scale ${s}: -8 s and 7 s fit in f16`);
  }
});

// 4. FIFOs and other non-regular files.

test('a FIFO as PATH, shard or --plan is refused at once, never opened', async (t) => {
  const dir = await tempDir();
  const fifo = path.join(dir, 'pipe.safetensors');
  spawnSync('mkfifo', [fifo]);
  if (!existsSync(fifo)) {
    t.skip('skipped: mkfifo is not available');
    return;
  }
  for (const cmd of [
    ['inspect', fifo],
    ['quantize', fifo],
    ['plan', fifo],
  ])
    refused(t, `${cmd[0]} of a FIFO`, cli(...cmd), /pipe\.safetensors: is a FIFO \(named pipe\), not a regular file; refusing to read it/);
  const input = await smallModel(dir);
  refused(t, '--plan a FIFO', cli('quantize', input, '--plan', fifo), /pipe\.safetensors: is a FIFO/);
  await fsp.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': 'pipe.safetensors' } }));
  refused(t, 'a FIFO named as a shard', cli('inspect', path.join(dir, 'model.safetensors.index.json')), /pipe\.safetensors: is a FIFO/);
  // A symlink loop and a folder named as a shard say so (not "does not exist").
  await fsp.symlink('loop-b.safetensors', path.join(dir, 'loop-a.safetensors'));
  await fsp.symlink('loop-a.safetensors', path.join(dir, 'loop-b.safetensors'));
  refused(t, 'a symlink loop', cli('inspect', path.join(dir, 'loop-a.safetensors')), /loop-a\.safetensors: is a symbolic link loop/);
  await fsp.mkdir(path.join(dir, 'sub.safetensors'));
  await fsp.writeFile(
    path.join(dir, 'two.safetensors.index.json'),
    JSON.stringify({ weight_map: { 'a.weight': 'sub.safetensors', 'b.weight': 'loop-a.safetensors' } }),
  );
  refused(
    t,
    'a folder named as a shard',
    cli('inspect', path.join(dir, 'two.safetensors.index.json')),
    /sub\.safetensors: is a folder: a shard must be a \.safetensors file/,
  );
});

// 6. Free space.

test('an output that cannot fit on the disk is refused before the first byte', async (t) => {
  const dir = await tempDir();
  const st = await fsp.statfs(dir);
  const free = st.bavail * st.bsize;
  // A valid header whose one tensor is 4x the free space; the data is a sparse hole.
  const rows = 1024;
  const cols = Math.ceil((4 * free) / 2 / rows / 64) * 64;
  const header = JSON.stringify({
    'model.layers.0.mlp.up_proj.weight': { dtype: 'BF16', shape: [rows, cols], data_offsets: [0, rows * cols * 2] },
  });
  const input = path.join(dir, 'huge.safetensors');
  await fsp.writeFile(input, rawSafetensors(header));
  try {
    await fsp.truncate(input, 8 + Buffer.byteLength(header) + rows * cols * 2);
  } catch (e) {
    t.skip(`skipped: this file system cannot hold a sparse file of ${rows * cols * 2} bytes (${(e as Error).message})`);
    return;
  }
  const r = cli('quantize', input, '--method', 'rtn', '--out', path.join(dir, 'out.safetensors'));
  refused(
    t,
    `an output of ${((rows * cols * 2) / 1e9).toFixed(0)} GB`,
    r,
    /out\.safetensors: not enough free space: the output needs [\d.]+ [GT]B, the device has [\d.]+ [KMGT]?B free; nothing was written/,
  );
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['huge.safetensors']);
});

// 7. Huge headers.

test('inspect of a valid header of a million tensors (93 MB) works', async (t) => {
  const dir = await tempDir();
  const n = 1_000_000;
  const parts: string[] = [];
  for (let i = 0; i < n; i++)
    parts.push(`"model.layers.${i % 64}.t${i}.weight":{"dtype":"F32","shape":[1],"data_offsets":[${i * 4},${i * 4 + 4}]}`);
  const input = path.join(dir, 'many.safetensors');
  await fsp.writeFile(input, rawSafetensors(`{${parts.join(',')}}`, new Uint8Array(n * 4)));
  const r = cli('inspect', input);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1000000 tensors/);
  assert.match(r.stdout, /model\.layers\.63\.t999999\.weight/);
  t.diagnostic(`inspect of ${n} tensors: ${(r.ms / 1000).toFixed(1)} s (whole process)`);
});

// 8. NaN in plans.

test('plan refuses NaN weights as quantize does, naming the tensor and row', async (t) => {
  const dir = await tempDir();
  const input = await generateModel(dir, { layers: 2, hidden: 64, intermediate: 128, vocab: 64 });
  const bytes = readFileSync(input);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const name = 'model.layers.1.mlp.up_proj.weight';
  const at = 8 + n + header[name].data_offsets[0] + 2 * (3 * 64 + 5); // row 3, bf16
  bytes.writeUInt16LE(0x7fc0, at); // NaN
  await fsp.writeFile(input, bytes);
  const pattern = /model\.safetensors: tensor "model\.layers\.1\.mlp\.up_proj\.weight": contains NaN or Inf in row 3; refusing to plan it/;
  refused(t, 'plan with NaN', cli('plan', input, '--backend', 'cpu'), pattern);
  refused(t, 'plan --budget with NaN', cli('plan', input, '--backend', 'cpu', '--budget', '1GB'), pattern);
});

// 9. Loose flags and raw errors.

test('flags: strict numbers, negatives, repeats, flags the run would ignore, searches worse than RTN', async (t) => {
  const dir = await tempDir();
  const input = await smallModel(dir);
  const q = (...a: string[]) => cli('quantize', input, '--quiet', ...a);
  refused(t, '--group-size 1e20', q('--group-size', '1e20'), /--group-size must be an integer written in decimal \(got "1e20"\)/);
  refused(t, '--bits 0x4', q('--bits', '0x4'), /--bits must be an integer written in decimal \(got "0x4"\)/);
  refused(t, '--bits 4e0', q('--bits', '4e0'), /--bits must be an integer written in decimal/);
  refused(t, '--bits -1', q('--bits', '-1'), /bits must be an integer from 2 to 8 \(got -1\)/);
  refused(t, '--lambda-entropy -0.5', q('--lambda-entropy', '-0.5'), /lambda-entropy must be a finite number >= 0 \(got -0\.5\)/);
  refused(t, '--bits twice', q('--bits', '4', '--bits', '8'), /--bits is given more than once; give it once/);
  refused(t, '--normalize and --no-normalize', q('--normalize', '--no-normalize'), /--normalize is given more than once/);
  refused(
    t,
    'a DARE-Q flag with rtn',
    q('--method', 'rtn', '--grid', '50'),
    /--grid applies to DARE-Q's scale search only; round-to-nearest \(--method rtn\) has none/,
  );
  refused(t, '--grid 1', q('--grid', '1'), /grid 1 with the clip range tries only clip-alpha-min x the round-to-nearest scale/);
  refused(t, 'both lambdas 0', q('--lambda-weight', '0', '--lambda-entropy', '0'), /lambda-weight and lambda-entropy are both 0/);
  // With a plan, --bits is refused and the summary names the plan's bits.
  const planned = await generateModel(path.join(dir, 'gen'), { layers: 4, hidden: 64, intermediate: 128, vocab: 64 });
  const plan = path.join(dir, 'plan.json');
  assert.equal(cli('plan', planned, '--backend', 'cpu', '--out', plan).code, 0);
  refused(t, '--bits with --plan', cli('quantize', planned, '--plan', plan, '--bits', '8'), /--bits does not apply with --plan/);
  const r = cli('quantize', planned, '--quiet', '--plan', plan, '--out', path.join(dir, 'p.safetensors'));
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(readFileSync(path.join(dir, 'p.report.json'), 'utf8'));
  const bits = [...new Set(rep.tensors.map((x: { bits: number }) => x.bits))].sort().join('/');
  assert.match(r.stdout, new RegExp(`\\(dareq ${bits || 'no'}-bit by the EWQ plan`));
  // plan --out refuses to replace a file without --force, and never the model.
  refused(
    t,
    'plan --out over an existing file',
    cli('plan', planned, '--backend', 'cpu', '--out', plan),
    /plan\.json: output already exists/,
  );
  assert.equal(cli('plan', planned, '--backend', 'cpu', '--out', plan, '--force').code, 0);
  refused(t, 'plan --out the model', cli('plan', input, '--backend', 'cpu', '--out', input, '--force'), /would overwrite the input/);
  refused(t, 'plan --analyze-csv the model', cli('plan', input, '--backend', 'cpu', '--analyze-csv', input), /would overwrite the input/);
});

test('compressed-tensors and fake-quant write errors are one formatted line, and a failed run removes the folders it created', async (t) => {
  const root = await tempDir();
  const input = await smallModel(root);
  // A path through a regular file cannot be created: the same formatted line for both formats.
  await fsp.writeFile(path.join(root, 'file'), 'x');
  for (const format of ['compressed-tensors', 'fake']) {
    refused(
      t,
      `${format} under a file`,
      cli('quantize', input, '--method', 'rtn', '--format', format, '--out', path.join(root, 'file', 'sub', 'out')),
      /writing the output failed: a part of the path is not a folder \(ENOTDIR\); nothing was left behind/,
    );
  }
  // A run that fails after creating --out's folders removes them again.
  const bad = path.join(root, 'bad.safetensors');
  await fsp.writeFile(
    bad,
    buildSafetensors([{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [4, 4], values: [NaN, ...new Array(15).fill(1)] }]),
  );
  refused(
    t,
    'NaN after mkdir',
    cli('quantize', bad, '--method', 'rtn', '--out', path.join(root, 'new', 'deeper', 'out.safetensors')),
    /contains NaN or Inf in row 0/,
  );
  assert.ok(!existsSync(path.join(root, 'new')), 'the folders created for --out are gone');
});

// 10. Stale temporaries.

test('every run sweeps the temporaries of dead processes in its output folder, whatever their names', async () => {
  const dir = await tempDir();
  const input = await smallModel(dir);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const stale = [`.other.safetensors.weightlens-tmp-${dead}-abc123`, `.x-ct.weightlens-tmp-${dead}-zz9`];
  for (const s of stale) await fsp.writeFile(path.join(dir, s), 'partial');
  // A live process's temporary (this test's own parent) is kept.
  const live = `.busy.safetensors.weightlens-tmp-${process.pid}-abc123`;
  await fsp.writeFile(path.join(dir, live), 'in progress');
  await quantize({
    input,
    settings: resolveSettings({ method: 'rtn' }),
    format: 'fake',
    out: path.join(dir, 'new-name.safetensors'),
    version: 'test',
  });
  const left = await fsp.readdir(dir);
  for (const s of stale) assert.ok(!left.includes(s), `${s} swept`);
  assert.ok(left.includes(live), 'a live run keeps its temporary');
});

test('a previous output moved aside by a killed run is put back', async () => {
  const dir = await tempDir();
  const input = await smallModel(dir);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  await fsp.writeFile(path.join(dir, `.previous.safetensors.weightlens-old-${dead}-abc123`), 'the old output');
  await quantize({
    input,
    settings: resolveSettings({ method: 'rtn' }),
    format: 'fake',
    out: path.join(dir, 'elsewhere.safetensors'),
    version: 'test',
  });
  assert.equal(readFileSync(path.join(dir, 'previous.safetensors'), 'utf8'), 'the old output');
});

test('a FIFO that slips past the check (swapped in later) is opened without blocking and refused', async () => {
  // The quantize run opens its input with O_NONBLOCK: even a FIFO that passed no check returns at once.
  const { FileByteSource } = await import('../../src/node/file-source');
  const dir = await tempDir();
  const fifo = path.join(dir, 'late.safetensors');
  spawnSync('mkfifo', [fifo]);
  if (!existsSync(fifo)) return;
  // No writer ever opens the FIFO: a blocking open would hang this test.
  await assert.rejects(FileByteSource.open(fifo), /late\.safetensors: is a FIFO/);
});
