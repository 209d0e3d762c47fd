/**
 * WebGPU vs CPU parity of EWQ's softmax entropy (shaders/ewq_entropy.wgsl): per-workgroup
 * partials on the GPU, merged in float64 on the host, must rank blocks exactly as the float64 CPU
 * path does — blocks whose entropies differ in the 8th digit included (the numerical trap).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebGpuEntropy } from '../../src/compute/webgpu/entropy';
import type { NodeGpu } from '../../src/compute/webgpu/node-device';
import { gpuOrSkip, openTestGpu } from '../helpers/gpu';
import { softmaxEntropy } from '../../src/core/ewq/entropy';
import { asStored, normals } from '../helpers/safetensors';

let gpu: NodeGpu | undefined;
let entropy: WebGpuEntropy | undefined;
const ready = openTestGpu().then((g) => {
  gpu = g;
  if (g) entropy = new WebGpuEntropy(g.device);
  return g;
});

test('EWQ entropy on WebGPU equals the float64 CPU value (the small remainder to f32 precision, not H)', async (t) => {
  if (!(await gpuOrSkip(ready, t)) || !gpu || !entropy) return;
  for (const [n, std, seed] of [
    [100_000, 0.02, 1],
    [4097, 0.5, 2],
    [1, 1, 3],
    [300_000, 3, 4],
  ] as const) {
    const x = asStored('F32', normals(n, seed, std));
    for (const eps of [0.01, 0]) {
      const cpu = softmaxEntropy(x, eps);
      const web = await entropy.entropy(x, eps);
      // With eps the GPU sums only the remainder X = -log(eps) - H (1e-5..1e-1): f32 keeps ~6 of its
      // digits, so H is right to ~1e-6 * X — 1e-10 for a real matrix. Without eps, H itself is summed.
      const tol = eps > 0 ? 1e-6 * (-Math.log(eps) - cpu) + 1e-12 : 1e-6 * Math.abs(cpu);
      t.diagnostic(
        `n ${n}, std ${std}, eps ${eps}: CPU ${cpu.toFixed(12)}, WebGPU ${web.toFixed(12)}, |diff| ${Math.abs(cpu - web).toExponential(2)}`,
      );
      assert.ok(Math.abs(cpu - web) <= tol, `n ${n}, eps ${eps}: ${web} vs ${cpu}`);
    }
  }
});

test('blocks whose entropies differ in the 8th digit are ranked as on the CPU', async (t) => {
  if (!(await gpuOrSkip(ready, t)) || !gpu || !entropy) return;
  // Real matrices: p ~ 1/n, so H ~ -log(0.01) = 4.60517 for all; a slightly wider spread lowers it.
  const blocks = [0, 3, 1, 5, 2, 4].map((k) => asStored('F32', normals(65536, 11 + k, 0.02 * (1 + k * 2e-3))));
  const cpu = blocks.map((b) => softmaxEntropy(b, 0.01));
  const web: number[] = [];
  for (const b of blocks) web.push(await entropy.entropy(b, 0.01));
  const order = (h: number[]) =>
    h
      .map((v, i) => [v, i])
      .sort((a, b) => a[0] - b[0])
      .map((p) => p[1]);
  const gaps = [...cpu]
    .sort()
    .slice(1)
    .map((v, i) => v - [...cpu].sort()[i]);
  t.diagnostic(`entropies ${cpu.map((h) => h.toFixed(10)).join(' ')}; smallest gap ${Math.min(...gaps).toExponential(2)}`);
  assert.ok(Math.max(...cpu) - Math.min(...cpu) < 1e-5, 'the blocks differ only past the 5th decimal');
  assert.deepEqual(order(web), order(cpu));
});

test('an EWQ plan with the entropy partials on WebGPU equals the CPU plan', async (t) => {
  if (!(await gpuOrSkip(ready, t)) || !gpu || !entropy) return;
  const path = await import('node:path');
  const { generateModel } = await import('../../src/node/generate-model');
  const { openModel } = await import('../../src/node/open-model');
  const { planModel } = await import('../../src/node/ewq');
  const { tempDir } = await import('../helpers/safetensors');
  const input = await generateModel(path.join(await tempDir(), 'm'), {
    layers: 6,
    hidden: 64,
    intermediate: 176,
    vocab: 64,
    heads: 4,
    kvHeads: 2,
  });
  const opened = await openModel(input);
  try {
    const o = { variant: '8-4' as const, thresholdFactor: 1, entropyEpsilon: 0.01, format: 'compressed-tensors' as const, groupSize: 32 };
    const cpu = await planModel(opened, o);
    const web = await planModel(opened, { ...o, entropyBackend: Object.assign(entropy, { description: gpu.description }) });
    assert.deepEqual(
      web.blocks.map((b) => b.precision),
      cpu.blocks.map((b) => b.precision),
    );
    for (let i = 0; i < cpu.blocks.length; i++) {
      const h = cpu.blocks[i].entropy!;
      assert.ok(
        Math.abs(web.blocks[i].entropy! - h) <= 1e-6 * (-Math.log(0.01) - h) + 1e-12,
        `block ${i}: ${web.blocks[i].entropy} vs ${h}`,
      );
    }
    t.diagnostic(`precisions ${cpu.blocks.map((b) => b.precision).join(' ')}`);
  } finally {
    await opened.close();
  }
});

test.after(() => entropy?.dispose());
