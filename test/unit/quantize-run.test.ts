/** The streaming quantize run on real files: outputs, formats, sharding, layouts, safety. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, promises as fsp, openSync, utimesSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DECIDE_ON_CPU } from '../../src/compute/backend';
import { MemoryByteSource } from '../../src/core/bytesource';
import { decodeFloats } from '../../src/core/dtypes';
import { CancelledError } from '../../src/core/errors';
import { loadSingleFile, type Model } from '../../src/core/model';
import { quantizeMatrix } from '../../src/core/quant/matrix';
import { unpackRows } from '../../src/core/quant/pack';
import { resolveSettings } from '../../src/core/quant/settings';
import { quantize, type QuantizeRequest } from '../../src/node/quantize';
import { asStored, buildSafetensors, normals, tempDir, type TestTensor } from '../helpers/safetensors';

const WORKER = path.resolve(__dirname, '../../../dist/worker.js');

function llamaLike(dtype: 'F32' | 'BF16' | 'F16', hidden = 24, inter = 37): TestTensor[] {
  let seed = 1;
  const m = (name: string, shape: number[]): TestTensor => ({
    name,
    dtype,
    shape,
    values: normals(
      shape.reduce((a, b) => a * b, 1),
      seed++,
      0.05,
    ),
  });
  return [
    m('model.embed_tokens.weight', [50, hidden]),
    m('model.layers.0.input_layernorm.weight', [hidden]),
    m('model.layers.0.self_attn.q_proj.weight', [hidden, hidden]),
    m('model.layers.0.self_attn.q_proj.bias', [hidden]),
    m('model.layers.0.mlp.up_proj.weight', [inter, hidden]),
    m('model.layers.0.mlp.down_proj.weight', [hidden, inter]),
    m('model.layers.1.self_attn.o_proj.weight', [hidden, hidden]),
    { name: 'model.layers.1.counter', dtype: 'I64', shape: [2], values: [7, 9] },
    m('model.norm.weight', [hidden]),
    m('lm_head.weight', [50, hidden]),
  ];
}

async function writeModel(dir: string, tensors: TestTensor[], name = 'model.safetensors'): Promise<string> {
  const p = path.join(dir, name);
  await fsp.writeFile(p, buildSafetensors(tensors, { format: 'pt', origin: 'test' }));
  return p;
}

async function readModel(p: string): Promise<{ model: Model; bytes: Uint8Array }> {
  const bytes = new Uint8Array(await fsp.readFile(p));
  return { model: await loadSingleFile(p, path.basename(p), new MemoryByteSource(p, bytes)), bytes };
}

function tensorData(m: { model: Model; bytes: Uint8Array }, name: string): Uint8Array {
  const t = m.model.tensors.find((x) => x.name === name);
  assert.ok(t, `tensor ${name} missing`);
  return m.bytes.subarray(t.offset, t.offset + t.byteLength);
}

const sha = async (p: string) =>
  createHash('sha256')
    .update(await fsp.readFile(p))
    .digest('hex');

function req(input: string, extra: Partial<QuantizeRequest> = {}): QuantizeRequest {
  return { input, settings: resolveSettings(), format: 'fake', version: 'test', ...extra };
}

test('fake-quant output: same names, shapes and dtypes; linear weights quantized, the rest byte-identical; input untouched', async () => {
  const dir = await tempDir();
  const tensors = llamaLike('BF16');
  const input = await writeModel(dir, tensors);
  const before = await sha(input);
  const res = await quantize(req(input, { settings: resolveSettings({ groupSize: 16 }) }));
  assert.equal(res.outputPath, path.join(dir, 'model.dareq-w4g16.safetensors'));
  assert.equal(await sha(input), before, 'input unchanged');
  const inp = await readModel(input);
  const out = await readModel(res.outputPath);
  assert.deepEqual(
    out.model.tensors.map((t) => [t.name, t.dtype, t.shape]),
    inp.model.tensors.map((t) => [t.name, t.dtype, t.shape]),
  );
  assert.equal(out.model.metadata.origin, 'test', 'input metadata preserved');
  assert.equal(out.model.metadata['weightlens.method'], 'dareq');
  assert.equal(out.model.metadata['weightlens.group_size'], '16');
  const quantized = res.report.tensors.map((t) => t.name).sort();
  assert.deepEqual(quantized, [
    'model.layers.0.mlp.down_proj.weight',
    'model.layers.0.mlp.up_proj.weight',
    'model.layers.0.self_attn.q_proj.weight',
    'model.layers.1.self_attn.o_proj.weight',
  ]);
  for (const t of inp.model.tensors) {
    const same = Buffer.compare(Buffer.from(tensorData(inp, t.name)), Buffer.from(tensorData(out, t.name))) === 0;
    assert.equal(same, !quantized.includes(t.name), `${t.name} ${same ? 'unchanged' : 'changed'}`);
  }
  // The written values are exactly the in-memory quantizer's.
  const w = asStored('BF16', tensors[4].values!);
  quantizeMatrix(w, 37, 24, { settings: resolveSettings({ groupSize: 16 }), dtype: 'BF16', tensor: 'x' });
  assert.deepEqual(Array.from(decodeFloats('BF16', tensorData(out, 'model.layers.0.mlp.up_proj.weight'))), Array.from(w));
  // Report contract.
  const report = JSON.parse(await fsp.readFile(res.reportPath, 'utf8'));
  assert.equal(res.reportPath, path.join(dir, 'model.dareq-w4g16.report.json'));
  for (const t of report.tensors) {
    for (const k of ['name', 'bits', 'groupSize', 'mse', 'sqnrDb', 'residualEntropy', 'clippedFraction']) assert.ok(k in t, k);
    assert.deepEqual(Object.keys(t.scaleRatio).sort(), ['max', 'mean', 'min']);
    assert.ok(t.sqnrDb > 10 && t.sqnrDb < 40, `plausible SQNR ${t.sqnrDb}`);
  }
  for (const k of ['inputBytes', 'outputBytes', 'seconds', 'weightsPerSecond']) assert.equal(typeof report.summary[k], 'number');
  assert.equal(report.settings.method, 'dareq');
});

test('compressed-tensors output unpacked back equals the fake-quant output (bf16, group-wise, odd columns)', async () => {
  for (const groupSize of [0, 16]) {
    for (const bits of [4, 8]) {
      const dir = await tempDir();
      const input = await writeModel(dir, llamaLike('BF16'));
      await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 24 }));
      await fsp.writeFile(path.join(dir, 'tokenizer.json'), '{}');
      const settings = resolveSettings({ groupSize, bits });
      const fake = await quantize(req(input, { settings }));
      const ct = await quantize(req(input, { settings, format: 'compressed-tensors' }));
      assert.ok(ct.outputIsFolder);
      assert.ok(ct.outputPath.endsWith(`model.dareq-w${bits}${groupSize ? 'g16' : ''}-ct`));
      const config = JSON.parse(await fsp.readFile(path.join(ct.outputPath, 'config.json'), 'utf8'));
      assert.equal(config.model_type, 'llama', 'input config kept');
      const qc = config.quantization_config;
      assert.equal(qc.quant_method, 'compressed-tensors');
      assert.equal(qc.format, 'pack-quantized');
      assert.deepEqual(qc.ignore, ['lm_head']);
      const wcfg = qc.config_groups.group_0.weights;
      assert.equal(wcfg.num_bits, bits);
      assert.equal(wcfg.strategy, groupSize ? 'group' : 'channel');
      assert.equal(wcfg.group_size, groupSize || null);
      assert.equal(wcfg.symmetric, true);
      assert.equal(await fsp.readFile(path.join(ct.outputPath, 'tokenizer.json'), 'utf8'), '{}');
      const f = await readModel(fake.outputPath);
      const c = await readModel(path.join(ct.outputPath, 'model.safetensors'));
      for (const name of ['model.layers.0.mlp.down_proj', 'model.layers.0.mlp.up_proj', 'model.layers.0.self_attn.q_proj']) {
        const fk = f.model.tensors.find((t) => t.name === `${name}.weight`)!;
        const [rows, cols] = fk.shape;
        const packedT = c.model.tensors.find((t) => t.name === `${name}.weight_packed`)!;
        const scaleT = c.model.tensors.find((t) => t.name === `${name}.weight_scale`)!;
        const shapeT = c.model.tensors.find((t) => t.name === `${name}.weight_shape`)!;
        assert.equal(packedT.dtype, 'I32');
        assert.deepEqual(packedT.shape, [rows, Math.ceil((cols * bits) / 32)]);
        assert.equal(scaleT.dtype, 'BF16');
        const groups = groupSize ? Math.ceil(cols / groupSize) : 1;
        assert.deepEqual(scaleT.shape, [rows, groups]);
        assert.equal(shapeT.dtype, 'I64');
        const shapeBytes = tensorData(c, shapeT.name);
        const dv = new DataView(shapeBytes.buffer, shapeBytes.byteOffset, 16);
        assert.deepEqual([Number(dv.getBigInt64(0, true)), Number(dv.getBigInt64(8, true))], [rows, cols]);
        const pb = tensorData(c, packedT.name);
        const codes = unpackRows(new Int32Array(pb.slice().buffer), rows, cols, bits);
        const scales = decodeFloats('BF16', tensorData(c, scaleT.name));
        const fakeVals = decodeFloats('BF16', tensorData(f, fk.name));
        for (let r = 0; r < rows; r++) {
          for (let col = 0; col < cols; col++) {
            const sc = scales[r * groups + (groupSize ? Math.floor(col / groupSize) : 0)];
            // What a runtime computes: code * scale in bf16.
            const deq = decodeFloats('BF16', new Uint8Array(new Uint16Array([bf16(codes[r * cols + col] * sc)]).buffer))[0];
            // (=== : code 0 times a negative, sign-aware, scale is -0 in a runtime; fake-quant writes +0, the same value.)
            assert.ok(deq === fakeVals[r * cols + col], `${name}[${r},${col}]: ${deq} vs ${fakeVals[r * cols + col]}`);
          }
        }
      }
      assert.ok(!c.model.tensors.some((t) => t.name === 'model.layers.0.mlp.up_proj.weight'));
      assert.ok(c.model.tensors.some((t) => t.name === 'lm_head.weight'));
    }
  }
});

function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

test('compressed-tensors refuses bit widths it cannot store', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  await assert.rejects(
    quantize(req(input, { settings: resolveSettings({ bits: 3 }), format: 'compressed-tensors' })),
    /4- and 8-bit integer weights only, not 3-bit; use --format fake/,
  );
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['model.safetensors']);
});

test('a sharded model gives a sharded output folder with a correct index', async () => {
  const dir = await tempDir();
  const tensors = llamaLike('F16');
  await fsp.writeFile(path.join(dir, 'model-00001-of-00002.safetensors'), buildSafetensors(tensors.slice(0, 5)));
  await fsp.writeFile(path.join(dir, 'model-00002-of-00002.safetensors'), buildSafetensors(tensors.slice(5)));
  const weightMap = Object.fromEntries(
    tensors.map((t, i) => [t.name, i < 5 ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']),
  );
  const index = path.join(dir, 'model.safetensors.index.json');
  await fsp.writeFile(index, JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }));
  for (const format of ['fake', 'compressed-tensors'] as const) {
    const res = await quantize(req(index, { format }));
    assert.ok(res.outputIsFolder);
    const files = (await fsp.readdir(res.outputPath)).sort();
    assert.ok(
      files.includes('model-00001-of-00002.safetensors') &&
        files.includes('model-00002-of-00002.safetensors') &&
        files.includes('model.safetensors.index.json'),
    );
    const idx = JSON.parse(await fsp.readFile(path.join(res.outputPath, 'model.safetensors.index.json'), 'utf8'));
    let total = 0;
    for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
      const m = await readModel(path.join(res.outputPath, shard));
      total += m.model.tensors.reduce((a, t) => a + t.byteLength, 0);
      for (const t of m.model.tensors) assert.equal(idx.weight_map[t.name], shard);
    }
    assert.equal(Object.keys(idx.weight_map).length, format === 'fake' ? tensors.length : tensors.length + 4 * 2);
    assert.equal(idx.metadata.total_size, total);
  }
});

test('GPT-2 Conv1D weights ([in, out]) are quantized along output channels', async () => {
  const dir = await tempDir();
  const w = normals(8 * 20, 4, 0.05);
  // Make output channel (column) 3 an outlier channel: with per-channel scales, only it gets a big scale.
  for (let r = 0; r < 8; r++) w[r * 20 + 3] *= 40;
  const input = await writeModel(dir, [{ name: 'transformer.h.0.mlp.c_fc.weight', dtype: 'F32', shape: [8, 20], values: w }]);
  const res = await quantize(req(input, { settings: resolveSettings({ method: 'rtn', groupSize: 0 }) }));
  const out = decodeFloats('F32', tensorData(await readModel(res.outputPath), 'transformer.h.0.mlp.c_fc.weight'));
  const stored = Float32Array.from(w);
  // Column 0's error stays small (its own scale); with row-wise scales the outlier column would wreck every row.
  for (let r = 0; r < 8; r++) {
    const colAbsmax = Math.max(...Array.from({ length: 8 }, (_, i) => Math.abs(stored[i * 20])));
    assert.ok(Math.abs(out[r * 20] - stored[r * 20]) <= colAbsmax / 7 / 2 + 1e-7, `row ${r}`);
  }
});

test('include / exclude change the selection; an invalid pattern and an empty selection are errors', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  const r1 = await quantize(req(input, { exclude: 'mlp', out: path.join(dir, 'a.safetensors') }));
  assert.deepEqual(r1.report.tensors.map((t) => t.name).sort(), [
    'model.layers.0.self_attn.q_proj.weight',
    'model.layers.1.self_attn.o_proj.weight',
  ]);
  const r2 = await quantize(req(input, { include: 'embed_tokens|lm_head|q_proj\\.bias', out: path.join(dir, 'b.safetensors') }));
  assert.deepEqual(r2.report.tensors.map((t) => t.name).sort(), [
    'lm_head.weight',
    'model.embed_tokens.weight',
    'model.layers.0.self_attn.q_proj.bias',
  ]);
  await assert.rejects(quantize(req(input, { include: '(' })), /--include is not a valid regular expression/);
  await assert.rejects(quantize(req(input, { include: 'nothing-matches' })), /no tensor matches the selection/);
});

test('worker threads give byte-identical output to the in-process path', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('BF16', 64, 100));
  const a = await quantize(req(input, { out: path.join(dir, 'one.safetensors'), threads: 1 }));
  const b = await quantize(req(input, { out: path.join(dir, 'two.safetensors'), threads: 2, workerScript: WORKER }));
  assert.equal(await sha(a.outputPath), await sha(b.outputPath));
});

test('an existing output is never silently replaced; the input can never be the output', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  const first = await quantize(req(input));
  await assert.rejects(quantize(req(input)), /output already exists/);
  await quantize(req(input, { force: true }));
  assert.ok((await fsp.stat(first.outputPath)).isFile());
  await assert.rejects(quantize(req(input, { out: input, force: true })), /would overwrite the input/);
});

test('a cancelled run leaves no file, and says so', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  const ctl = new AbortController();
  await assert.rejects(
    quantize(req(input, { signal: ctl.signal, onProgress: (p) => p.fraction > 0.3 && ctl.abort() })),
    (e: unknown) => e instanceof CancelledError && /no output was written/.test(e.message),
  );
  assert.deepEqual(await fsp.readdir(dir), ['model.safetensors']);
});

test('an input changed during the run fails the run and leaves no output', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  let touched = false;
  await assert.rejects(
    quantize(
      req(input, {
        onProgress: () => {
          if (touched) return;
          touched = true;
          const fd = openSync(input, 'r+');
          writeSync(fd, Buffer.from([1]), 0, 1, 100);
          closeSync(fd);
          utimesSync(input, new Date(), new Date(Date.now() + 5000));
        },
      }),
    ),
    /input file changed during the run; no output was written/,
  );
  assert.deepEqual(await fsp.readdir(dir), ['model.safetensors']);
});

test('the same output path requested twice at once: one runs, the other is refused', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  const out = path.join(dir, 'same.safetensors');
  const results = await Promise.allSettled([quantize(req(input, { out })), quantize(req(input, { out }))]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.match(String(rejected.reason), /already (being written|writing this output)|output already exists/);
});

test('one worker thread still runs off the main thread and gives the same bytes', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F16', 32, 48));
  const a = await quantize(req(input, { out: path.join(dir, 'a.safetensors'), threads: 1 }));
  const b = await quantize(req(input, { out: path.join(dir, 'b.safetensors'), threads: 1, workerScript: WORKER }));
  assert.equal(await sha(a.outputPath), await sha(b.outputPath));
  assert.equal(b.report.settings.threads, 1);
});

/**
 * A stand-in for the WebGPU search whose every answer is valid and leaves each group to the CPU
 * (empty contender ranges: all K); `beforeSearch` runs first on each call (and may throw).
 */
function cpuDecidingBackend(description: string, beforeSearch: () => void) {
  return {
    name: 'webgpu' as const,
    description,
    async search(_v: Float32Array, rows: number) {
      beforeSearch();
      return {
        choices: new Int32Array(rows).fill(DECIDE_ON_CPU),
        contenderStart: new Int32Array(rows + 1),
        contenders: new Int32Array(0),
        undecided: rows,
        rescored: rows * 100,
      };
    },
    dispose() {},
  };
}

test('a search backend that fails mid-run (device lost): the rest runs on the CPU, same bytes, and the report says so', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('BF16', 64, 100));
  let calls = 0;
  const flaky = cpuDecidingBackend('a GPU that is lost after its first block', () => {
    if (++calls > 1) throw new Error('the GPU device was lost (unknown: simulated)');
  });
  const cpu = await quantize(req(input, { settings: resolveSettings({ groupSize: 0 }), out: path.join(dir, 'cpu.safetensors') }));
  const gpu = await quantize(
    req(input, { settings: resolveSettings({ groupSize: 0 }), out: path.join(dir, 'gpu.safetensors'), searchBackend: flaky }),
  );
  assert.equal(await sha(gpu.outputPath), await sha(cpu.outputPath));
  assert.ok(calls >= 2, 'the failing call happened');
  assert.equal(gpu.report.settings.gpuFailure, 'the GPU device was lost (unknown: simulated)');
  assert.equal(calls, 2, 'no GPU call after the failure');
});

test('the search backend is opened only once the input is read and the output claimed, and then used', async () => {
  const dir = await tempDir();
  const input = await writeModel(dir, llamaLike('F32'));
  let opened = 0;
  let searched = 0;
  const openSearch = async () => {
    opened++;
    return cpuDecidingBackend('a GPU that leaves every group to the CPU', () => searched++);
  };
  const broken = path.join(dir, 'broken.safetensors');
  await fsp.writeFile(broken, new Uint8Array([1, 2, 3]));
  await assert.rejects(quantize(req(broken, { openSearch })), /broken\.safetensors/);
  await assert.rejects(quantize(req(path.join(dir, 'missing.safetensors'), { openSearch })), /missing\.safetensors/);
  const out = path.join(dir, 'taken.safetensors');
  await fsp.writeFile(out, 'a file of the user');
  await assert.rejects(quantize(req(input, { out, openSearch })), /output already exists/);
  assert.equal(opened, 0, 'no GPU was opened for a run that could not start');

  const r = await quantize(req(input, { out: path.join(dir, 'q.safetensors'), openSearch }));
  assert.equal(opened, 1);
  assert.ok(searched > 0, 'the opened backend ran the search');
  assert.equal(r.report.settings.backend, 'webgpu');
});
