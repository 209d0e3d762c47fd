/**
 * Golden bytes: every method, preset and output format writes exactly the files it wrote when
 * test/fixtures/golden-outputs.json was recorded. Refactors must not change a single byte; a
 * change that is meant to change outputs re-records the file (WEIGHTLENS_UPDATE_GOLDEN=1) and
 * says why in its commit.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/safetensors';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const SAMPLE = path.join(ROOT, 'samples/stories260K');
const GOLDEN = path.join(ROOT, 'test/fixtures/golden-outputs.json');

/** Each case: a name and the CLI arguments after `quantize MODEL`. */
const CASES: Record<string, string[]> = {
  'rtn fake 4 g128': ['--method', 'rtn'],
  'rtn fake 8 per-channel': ['--method', 'rtn', '--bits', '8', '--group-size', '0'],
  'clip fake 4 g128': [],
  'clip fake 3 g32': ['--bits', '3', '--group-size', '32'],
  // With an entropy term: at λH 0 coarse-to-fine returns the exhaustive search's choice.
  'clip fake 4 coarse-to-fine lambda-entropy 0.01': ['--search', 'coarse-to-fine', '--lambda-entropy', '0.01'],
  'clip fake 4 lambda-entropy 0.1 bins 64 grid 40': ['--lambda-entropy', '0.1', '--bins', '64', '--grid', '40'],
  'paper fake 4 per-channel': ['--preset', 'paper', '--group-size', '0'],
  'reference fake 4 g64': ['--preset', 'reference', '--group-size', '64'],
  'clip compressed-tensors 4 g128': ['--format', 'compressed-tensors'],
  'clip compressed-tensors 8 g32': ['--format', 'compressed-tensors', '--bits', '8', '--group-size', '32'],
  'rtn compressed-tensors 4 per-channel': ['--format', 'compressed-tensors', '--method', 'rtn', '--group-size', '0'],
  'clip gguf q4_0': ['--format', 'gguf', '--group-size', '32'],
  'rtn gguf q8_0': ['--format', 'gguf', '--method', 'rtn', '--bits', '8', '--group-size', '32'],
  'gguf f16': ['--format', 'gguf', '--bits', '16', '--group-size', '32'],
  'ewq plan fake': ['--plan', '{plan}'],
  'ewq plan compressed-tensors': ['--plan', '{plan}', '--format', 'compressed-tensors'],
};

/** sha256 of every file a run wrote (reports excluded: they hold timings), by relative path. */
async function hashTree(p: string, base = p): Promise<Record<string, string>> {
  const st = await fsp.stat(p);
  if (!st.isDirectory())
    return {
      [path.relative(path.dirname(base), p)]: createHash('sha256')
        .update(await fsp.readFile(p))
        .digest('hex'),
    };
  const out: Record<string, string> = {};
  for (const name of (await fsp.readdir(p)).sort()) Object.assign(out, await hashTree(path.join(p, name), base));
  return out;
}

async function runCase(dir: string, args: string[], plan: string): Promise<Record<string, string>> {
  const out = path.join(dir, 'out');
  await fsp.rm(out, { recursive: true, force: true });
  const full = [
    'quantize',
    path.join(dir, 'model/model.safetensors'),
    '--threads',
    '1',
    '--quiet',
    '--backend',
    'cpu',
    '--out',
    out,
    '--report',
    path.join(dir, 'report.json'),
    '--force',
    ...args.map((a) => (a === '{plan}' ? plan : a)),
  ];
  await run(process.execPath, [CLI, ...full]);
  const hashes = await hashTree(out);
  return Object.fromEntries(Object.entries(hashes).map(([k, v]) => [k.replace(/^out/, '.'), v]));
}

test('golden bytes: every method, preset and format writes the recorded bytes', async () => {
  const dir = await tempDir();
  // The sample with its sidecars (config.json, tokenizer) so GGUF and compressed-tensors have them.
  await fsp.cp(SAMPLE, path.join(dir, 'model'), { recursive: true });
  const plan = path.join(dir, 'plan.json');
  await run(process.execPath, [CLI, 'plan', path.join(dir, 'model/model.safetensors'), '--budget', '400KB', '--out', plan]);
  // The plan names the model by its path, which differs per run: hash the rest.
  const planJson = { ...JSON.parse(await fsp.readFile(plan, 'utf8')), model: undefined };
  const planHash = createHash('sha256').update(JSON.stringify(planJson)).digest('hex');

  const actual: Record<string, Record<string, string>> = { 'ewq plan': { 'plan.json': planHash } };
  for (const [name, args] of Object.entries(CASES)) actual[name] = await runCase(dir, args, plan);

  if (process.env.WEIGHTLENS_UPDATE_GOLDEN === '1') {
    await fsp.writeFile(GOLDEN, JSON.stringify(actual, null, 2) + '\n');
    return;
  }
  const expected = JSON.parse(await fsp.readFile(GOLDEN, 'utf8')) as typeof actual;
  assert.deepEqual(Object.keys(actual), Object.keys(expected), 'the golden cases changed: re-record with WEIGHTLENS_UPDATE_GOLDEN=1');
  for (const name of Object.keys(expected))
    assert.deepEqual(actual[name], expected[name], `${name}: the output bytes differ from the recorded ones`);
});
