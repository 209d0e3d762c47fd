// `npm run demo`: quantize the bundled real model (stories260K) with the default settings, in each
// output format, measure the GGUF's perplexity in llama.cpp, and print what changed per tensor. Outputs go to demo-output/ (git-ignored).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, copyFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const bin = path.join(root, 'bin', 'weightlens.js');
const out = path.join(root, 'demo-output');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// Work on a copy beside the outputs so the sample folder stays clean.
for (const f of readdirSync(path.join(root, 'samples', 'stories260K'))) {
  if (f !== 'README.md') copyFileSync(path.join(root, 'samples', 'stories260K', f), path.join(out, f));
}
const model = path.join(out, 'model.safetensors');
const run = (...args) => execFileSync(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

console.log(`$ weightlens inspect ${path.relative(root, model)}`);
console.log(run('inspect', model).split('\n').slice(0, 5).join('\n'), '\n  ...\n');
console.log(`$ weightlens quantize ${path.relative(root, model)}            (defaults: DARE-Q, preset clip, 4-bit, groups of 128)`);
console.log(run('quantize', model));
console.log(`$ weightlens quantize ${path.relative(root, model)} --method rtn   (round-to-nearest, for comparison)`);
console.log(run('quantize', model, '--method', 'rtn'));
console.log(
  `$ weightlens quantize ${path.relative(root, model)} --format compressed-tensors   (int4 pack-quantized + config.json, for vLLM / transformers)`,
);
console.log(run('quantize', model, '--format', 'compressed-tensors'));

console.log(`$ weightlens quantize ${path.relative(root, model)} --format gguf   (Q4_0 for llama.cpp, groups of 32)`);
console.log(run('quantize', model, '--format', 'gguf'));
console.log(
  `$ weightlens eval ${path.relative(root, model)} --compare ${path.relative(root, path.join(out, 'model.dareq-w4g32.gguf'))}   (perplexity in llama.cpp)`,
);
try {
  console.log(run('eval', model, '--compare', path.join(out, 'model.dareq-w4g32.gguf'), '--quiet'));
} catch {
  console.log('(skipped: node-llama-cpp has no prebuilt binary on this machine)\n');
}

const dareq = JSON.parse(readFileSync(path.join(out, 'model.dareq-w4g128.report.json'), 'utf8'));
const rtn = JSON.parse(readFileSync(path.join(out, 'model.rtn-w4g128.report.json'), 'utf8'));
const rows = dareq.tensors.map((t, i) => ({ t, r: rtn.tensors[i] }));
const pad = (s, n) => String(s).padEnd(n);
console.log('Per tensor: SQNR in dB (higher is better), RTN vs DARE-Q, and what DARE-Q chose');
console.log(`${pad('tensor', 42)} ${pad('RTN', 7)} ${pad('DARE-Q', 7)} ${pad('gain', 6)} ${pad('scale/absmax', 13)} clipped`);
for (const { t, r } of rows) {
  console.log(
    `${pad(t.name.replace('model.layers.', 'L'), 42)} ${pad(r.sqnrDb.toFixed(2), 7)} ${pad(t.sqnrDb.toFixed(2), 7)} ${pad((t.sqnrDb - r.sqnrDb).toFixed(2), 6)} ${pad(t.scaleRatio.mean.toFixed(3), 13)} ${(t.clippedFraction * 100).toFixed(2)}%`,
  );
}
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(
  `\nmean SQNR: RTN ${mean(rtn.tensors.map((t) => t.sqnrDb)).toFixed(2)} dB, DARE-Q ${mean(dareq.tensors.map((t) => t.sqnrDb)).toFixed(2)} dB`,
);
console.log(`outputs and JSON reports are in ${path.relative(root, out)}/`);
