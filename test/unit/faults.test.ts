/**
 * Faults: the output disk filling up, the input vanishing, a killed or terminated process, two runs
 * at once. In every case the input is intact, nothing partial is left under the final name, and the
 * error says what happened.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { resolveSettings } from '../../src/core/quant/settings';
import { generateModel } from '../../src/node/generate-model';
import { quantize } from '../../src/node/quantize';
import { tempDir } from '../helpers/safetensors';

const BIN = path.resolve(__dirname, '../../../bin/weightlens.js');
const sha = async (p: string) =>
  createHash('sha256')
    .update(await fsp.readFile(p))
    .digest('hex');

async function model(layers = 2, hidden = 256): Promise<string> {
  return generateModel(await tempDir(), { layers, hidden, intermediate: 704, vocab: 256 });
}

function tryMount(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('an output larger than the free space is refused before its first byte: one line, nothing left, input intact', async (t) => {
  const input = await model();
  const before = await sha(input);
  const small = await tempDir('wl-full-');
  if (!tryMount(small, '512k')) {
    t.skip('skipped: cannot mount a small tmpfs here (needs root); the disk-full path is untested on this machine');
    return;
  }
  try {
    const out = path.join(small, 'out.safetensors');
    await assert.rejects(
      quantize({
        input,
        settings: resolveSettings({ method: 'rtn' }),
        format: 'fake',
        out,
        report: path.join(await tempDir(), 'r.json'),
        version: 'test',
      }),
      (e: Error) =>
        /out\.safetensors: not enough free space: the output needs \d[\d.]* [KM]B, the device has \d[\d.]* KB free; nothing was written/.test(
          e.message,
        ) && !e.message.includes('\n'),
    );
    assert.deepEqual(await fsp.readdir(small), [], 'no partial or temporary file');
    assert.equal(await sha(input), before);
  } finally {
    execFileSync('umount', [small]);
  }
});

test('the input vanishing during a run fails it and writes nothing', async () => {
  const input = await model();
  const dir = path.dirname(input);
  let removed = false;
  await assert.rejects(
    quantize({
      input,
      settings: resolveSettings({ method: 'rtn' }),
      format: 'fake',
      version: 'test',
      onProgress: () => {
        if (!removed) {
          removed = true;
          rmSync(input);
        }
      },
    }),
    /input file vanished during the run; no output was written/,
  );
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['config.json']);
});

function runCli(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, done, stderr: () => stderr };
}

async function waitForTemp(dir: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await fsp.readdir(dir)).some((f) => f.includes('weightlens-tmp'))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the run never started writing');
}

test('a killed process leaves nothing under the final name; the next run cleans its temporary file', async () => {
  const input = await model(4, 512);
  const dir = path.dirname(input);
  const before = await sha(input);
  const run = runCli(['quantize', input, '--threads', '1', '--quiet']);
  await waitForTemp(dir);
  run.child.kill('SIGKILL');
  await run.done;
  const left = await fsp.readdir(dir);
  assert.ok(!left.includes('model.dareq-w4g128.safetensors'), 'no output under the final name');
  assert.ok(
    left.some((f) => f.startsWith('.model.dareq-w4g128.safetensors.weightlens-tmp-')),
    'only a hidden temporary file',
  );
  assert.equal(await sha(input), before);
  // The next run for the same output removes the dead process's temporary file.
  await quantize({
    input,
    settings: resolveSettings({ method: 'rtn', groupSize: 128, bits: 4 }),
    format: 'fake',
    out: path.join(dir, 'model.dareq-w4g128.safetensors'),
    version: 'test',
  });
  assert.ok(!(await fsp.readdir(dir)).some((f) => f.includes('weightlens-tmp')));
});

test('SIGTERM cancels cleanly: no file, a one-line message, exit code 130', async () => {
  const input = await model(4, 512);
  const dir = path.dirname(input);
  const run = runCli(['quantize', input, '--threads', '2', '--quiet']);
  await waitForTemp(dir);
  run.child.kill('SIGTERM');
  const code = await run.done;
  assert.equal(code, 130);
  assert.match(run.stderr(), /^error: quantization cancelled; no output was written\n$/);
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['config.json', 'model.safetensors']);
});

test('two quantizations of different files at once both complete', async () => {
  const [a, b] = await Promise.all([model(2, 128), model(2, 192)]);
  const [ra, rb] = await Promise.all([
    quantize({ input: a, settings: resolveSettings(), format: 'fake', version: 'test' }),
    quantize({ input: b, settings: resolveSettings(), format: 'compressed-tensors', version: 'test' }),
  ]);
  assert.ok(existsSync(ra.outputPath) && existsSync(rb.outputPath));
  assert.equal(ra.report.summary.tensorsQuantized, 14);
  assert.equal(rb.report.summary.tensorsQuantized, 14);
});
