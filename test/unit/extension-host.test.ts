/**
 * The extension's host logic with the vscode module kept out: settings validation, the quick pick,
 * the diff view's statistics documents, the webview protocol's validation and the webview's CSP.
 */
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { panelSettings, readComputeBackend, readRunConfig, SETTING_SPECS } from '../../src/extension/config';

/** Settings read outside SETTING_SPECS (EWQ, compute, evaluation): by key. */
const EXTRA_SETTINGS = [
  'ewq.memoryBudgetGB',
  'ewq.thresholdFactor',
  'ewq.entropyEpsilon',
  'ewq.variant',
  'ewq.autoAnalyzeMaxGB',
  'compute.backend',
  'llamaCpp.modulePath',
  'eval.contextSize',
  'eval.textFile',
];
import { inspectorHtml } from '../../src/extension/inspector/html';
import { quantizeChoices } from '../../src/extension/quick-pick';
import { renderStatsDocuments } from '../../src/extension/stats-document';
import { resolveSettings } from '../../src/core/quant/settings';
import { replyFromWebview, validateFromWebview } from '../../src/shared/protocol';

/** The cleaned body, or undefined when the channel would drop it. */
const accepted = (type: string, body: unknown) => {
  const v = validateFromWebview('event', type, body);
  return v.ok ? v.body : undefined;
};
import { quantize } from '../../src/node/quantize';
import { buildSafetensors, normals, tempDir } from '../helpers/safetensors';

/** package.json as VS Code reads it: each "%key%" replaced from package.nls.json (English). */
const NLS = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.nls.json'), 'utf8')) as Record<string, string>;
const PKG = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'), (_k, v) =>
  typeof v === 'string' && /^%[\w.-]+%$/.test(v) ? NLS[v.slice(1, -1)] : v,
);

test('settings: unset values come from the preset and the defaults, set ones override', () => {
  const none = readRunConfig(() => undefined);
  assert.deepEqual(none.settings, resolveSettings());
  assert.equal(none.format, 'fake');
  assert.deepEqual(none.problems, []);
  const vals: Record<string, unknown> = {
    'dareq.preset': 'reference',
    'quantization.bits': 8,
    'dareq.gridSize': 30,
    'quantization.outputFormat': 'compressed-tensors',
    'quantization.exclude': 'mlp',
  };
  const c = readRunConfig((k) => vals[k]);
  assert.equal(c.settings.preset, 'reference');
  assert.equal(c.settings.bins, 128, 'from the preset');
  assert.equal(c.settings.grid, 30, 'the user overrides the preset');
  assert.equal(c.settings.bits, 8);
  assert.equal(c.format, 'compressed-tensors');
  assert.equal(c.exclude, 'mlp');
  assert.equal(readRunConfig(() => undefined, { method: 'rtn' }).settings.method, 'rtn');
});

test('settings: invalid values in settings.json become one-line problems, never a crash', () => {
  const vals: Record<string, unknown> = {
    'quantization.bits': 12,
    'dareq.lambdaEntropy': 'lots',
    'quantization.include': '(',
    'dareq.clipAlphaMin': 0,
  };
  const c = readRunConfig((k) => vals[k]);
  assert.equal(c.settings.bits, 4, 'the default stands in');
  assert.equal(c.problems.length, 4);
  assert.match(c.problems[0], /^weightlens\.quantization\.bits must be an integer from 2 to 8 \(got 12\); using the default$/);
  assert.ok(c.problems.some((p) => /weightlens\.quantization\.include must be a valid regular expression/.test(p)));
  for (const p of c.problems) assert.ok(!p.includes('\n'));
  assert.deepEqual(panelSettings(c).problems, c.problems);
});

test('settings: every setting the code reads is contributed with a description and a validated type', () => {
  const props = PKG.contributes.configuration.properties;
  const defaults = readRunConfig(() => undefined);
  // The specs are what the code reads; the schema must describe each of them.
  for (const spec of [...SETTING_SPECS, ...EXTRA_SETTINGS]) {
    const key = typeof spec === 'string' ? spec : spec.key;
    const p = props[`weightlens.${key}`];
    assert.ok(p, `${key} is contributed`);
    assert.ok(typeof p.description === 'string' && p.description.length > 30, `${key} has a description a user can act on`);
    assert.ok(p.type, `${key} has a type`);
    if (typeof spec === 'string') continue;
    // The schema's default is what the engine uses when the setting is unset.
    const field = spec.field as string;
    if (field in defaults.settings)
      assert.equal(p.default, (defaults.settings as unknown as Record<string, unknown>)[field], `${key} default`);
    if (p.default !== undefined && p.default !== null && p.default !== '')
      assert.ok(spec.check(p.default), `${key}: the schema's default passes the code's check`);
    // A numeric setting's schema range is the engine's own (KNOB_RANGES): VS Code's settings
    // editor then refuses exactly what the engine would.
    if (spec.range) {
      assert.equal(p.type, spec.range.integer ? 'integer' : 'number', `${key} type`);
      assert.equal(spec.range.openMin ? p.exclusiveMinimum : p.minimum, spec.range.min, `${key} minimum`);
      if (spec.range.max < Number.MAX_VALUE) assert.equal(p.maximum, spec.range.max, `${key} maximum`);
      else assert.equal(p.maximum, undefined, `${key} has no maximum`);
    }
  }
  // And nothing is contributed that no code reads.
  const read = new Set([...SETTING_SPECS.map((s) => s.key), ...EXTRA_SETTINGS]);
  for (const k of Object.keys(props)) assert.ok(read.has(k.replace(/^weightlens\./, '')), `${k} is read by the code`);
});

test('menus: entries only for .safetensors and *.safetensors.index.json, every command contributed', () => {
  const commands = new Set(PKG.contributes.commands.map((c: { command: string }) => c.command));
  for (const m of PKG.contributes.menus['explorer/context']) {
    assert.ok(commands.has(m.command), `${m.command} is a contributed command`);
    assert.match(m.when, /resourceExtname == \.safetensors/);
    assert.match(m.when, /safetensors\\\\?\.index\\\\?\.json/);
  }
  for (const c of commands) assert.match(String(c), /^weightlens\./);
});

test('custom editors: one contribution per viewType, each registered by the extension', () => {
  // VS Code keeps the first contribution of a viewType and logs "Custom editor with id … already
  // registered" for any other: a second selector entry under the same viewType never takes effect.
  const viewTypes = PKG.contributes.customEditors.map((e: { viewType: string }) => e.viewType);
  assert.equal(new Set(viewTypes).size, viewTypes.length, `duplicate viewType in ${viewTypes.join(', ')}`);
  const dir = path.resolve(__dirname, '../../../src/extension/inspector');
  const source = readdirSync(dir)
    .map((f: string) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
  for (const v of viewTypes) assert.ok(source.includes(`'${v}'`), `${v} is a view type the extension registers`);
});

test('quick pick: the first item is exactly the settings (Enter accepts it); variations follow', () => {
  const c = readRunConfig(() => undefined);
  const items = quantizeChoices(c);
  assert.deepEqual(items[0].overrides, {});
  assert.equal(items[0].format, 'fake');
  assert.match(items[0].label, /DARE-Q \(clip\), 4-bit, groups of 128, fake-quant/);
  assert.ok(items.some((i) => i.overrides?.bits === 8));
  assert.ok(items.some((i) => i.format === 'compressed-tensors'));
  assert.ok(items[items.length - 1].openSettings);
  // 3-bit settings offer no compressed-tensors variation (it stores 4 and 8 bits only).
  const three = quantizeChoices(readRunConfig((k) => (k === 'quantization.bits' ? 3 : undefined)));
  assert.ok(!three.some((i) => i.format === 'compressed-tensors' && (i.overrides?.bits ?? 3) === 3));
});

test('diff view documents: one aligned line per tensor on both sides, header lines, error columns on the right', async () => {
  const dir = await tempDir();
  const input = path.join(dir, 'model.safetensors');
  await fsp.writeFile(
    input,
    buildSafetensors([
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'BF16', shape: [16, 32], values: normals(512, 1) },
      { name: 'model.layers.0.mlp.down_proj.weight', dtype: 'BF16', shape: [32, 16], values: normals(512, 2) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [16], values: normals(16, 3) },
    ]),
  );
  const res = await quantize({ input, settings: resolveSettings(), format: 'fake', version: 'test' });
  const docs = renderStatsDocuments(res.report, 'model.safetensors', path.basename(res.outputPath));
  const left = docs.original.trimEnd().split('\n');
  const right = docs.quantized.trimEnd().split('\n');
  assert.equal(left.length, right.length, 'same number of lines');
  assert.match(left[0], /^# original +model\.safetensors +[\d.]+ KB +BF16$/);
  assert.match(left[1], /^# 2 tensors quantized \(\d[\d,]* weights\), 1 copied$/);
  // 4-bit codes plus a BF16 scale per group: rows of 32 (4 + 16/32) and of 16 (4 + 16/16), as many weights each.
  assert.match(right[0], /^# quantized +model\.dareq-w4g128\.safetensors +[\d.]+ KB \([\d.]+% of the input\), 4\.75 bits\/weight stored$/);
  assert.match(right[1], /^# dareq 4-bit, group 128, sign-aware, preset clip, λw 1, λH 0, normalize on, B 256, K 100, fake$/);
  // The summary first: SQNR over all weights, and the worst tensors by name.
  assert.match(right[2], /^# SQNR \d+\.\d\d dB over all, MSE \S+$/);
  assert.match(right[3], /^# worst: L0 · \w+ \d+\.\d dB, L0 · \w+ \d+\.\d dB$/);
  const head = 4;
  // Error columns first, the short name last.
  assert.match(right[head], /^tensor +sqnr_db +mse +entropy +clipped +scale +mean +absmax +bits +shape$/);
  for (let i = head + 1; i < left.length; i++) {
    // Bits per weight: the dtype's on the left, the stored ones (codes, scales) on the right.
    assert.match(left[i], /^L0 · \w+ +· +· +· +· +· +\S+ +\S+ +16 +\d+x\d+ BF16$/);
    assert.match(right[i], / (4\.50|5\.00) +\d+x\d+ BF16$/);
    // Column positions agree, so the diff shows changed cells, not shifted lines.
    const lcols = [...left[i].matchAll(/\S+/g)].map((m) => m.index! + m[0].length);
    const rcols = [...right[i].matchAll(/\S+/g)].map((m) => m.index! + m[0].length);
    assert.deepEqual(rcols, lcols, 'cells end at the same columns');
  }
  for (const l of [...left, ...right]) assert.ok(l.length <= 100, `within an editor's width: ${l.length} ${l}`);
});

test('webview messages are validated: anything malformed is dropped', () => {
  assert.deepEqual(accepted('ready', {}), {});
  assert.deepEqual(accepted('command', { command: 'quantizeRtn' }), { command: 'quantizeRtn' });
  assert.equal(accepted('command', { command: 'workbench.action.terminal.new' }), undefined);
  assert.deepEqual(accepted('readRows', { tensor: 'w', start: 0, count: 2, extra: 'dropped' }), { tensor: 'w', start: 0, count: 2 });
  for (const [type, bad] of [
    ['readRows', null],
    ['readRows', 'w'],
    ['readRows', []],
    ['readRows', { tensor: 'w', start: -2, count: 1 }],
    ['readRows', { tensor: 'w', start: 0, count: 1.5 }],
    ['readRows', { tensor: 'w'.repeat(5000), start: 0, count: 1 }],
    ['eval', {}],
    ['toString', {}],
    ['__proto__', {}],
  ] as [string, unknown][]) {
    assert.equal(accepted(type, bad), undefined, `${type} ${JSON.stringify(bad)}`);
  }
});

test('webview HTML: strict CSP, nonce on every script, nothing remote', () => {
  const html = inspectorHtml({
    cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
    nonce: 'abc123',
    script: 'https://file+.vscode-resource.vscode-cdn.net/x/inspector.js',
    css: 'https://file+.vscode-resource.vscode-cdn.net/x/i.css',
    codicons: 'https://file+.vscode-resource.vscode-cdn.net/x/codicon.css',
    title: '<model>',
  });
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1];
  assert.match(csp, /^default-src 'none';/);
  assert.match(csp, /script-src 'nonce-abc123'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  // Fetching the extension's own files (the scales worker's script) and workers from blob: only.
  assert.match(csp, /connect-src https:\/\/file\+\.vscode-resource\.vscode-cdn\.net;/);
  assert.match(csp, /worker-src blob:$/);
  for (const m of html.matchAll(/<script[^>]*>/g)) assert.match(m[0], /nonce="abc123"/);
  assert.doesNotMatch(html, /<model>/, 'the title is escaped');
  for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g))
    assert.ok(m[1].startsWith('https://file+.vscode-resource.vscode-cdn.net/'), m[1]);
});

test('overview layout: a row per block, a column per kind of weight, in order of appearance', async () => {
  const { overviewLayout } = await import('../../src/extension/inspector/overview');
  const { loadSingleFile } = await import('../../src/core/model');
  const { MemoryByteSource } = await import('../../src/core/bytesource');
  const { selectTargets } = await import('../../src/core/select');
  const bytes = new Uint8Array(await fsp.readFile(path.resolve(__dirname, '../../../samples/stories260K/model.safetensors')));
  const model = await loadSingleFile('m', 'm', new MemoryByteSource('m', bytes));
  const layout = overviewLayout(model, selectTargets(model.tensors));
  assert.deepEqual(layout.rows, ['0', '1', '2', '3', '4']);
  assert.deepEqual(layout.rowBlocks, [0, 1, 2, 3, 4]);
  assert.deepEqual(layout.kinds, [
    'self_attn.q_proj',
    'self_attn.k_proj',
    'self_attn.v_proj',
    'self_attn.o_proj',
    'mlp.gate_proj',
    'mlp.down_proj',
    'mlp.up_proj',
  ]);
  assert.equal(layout.cells.length, 35);
  assert.deepEqual(layout.cells[0], { tensor: 'model.layers.0.self_attn.q_proj.weight', row: '0', kind: 'self_attn.q_proj' });
});

test('tuning messages from the webview: only the tunable settings, only numbers or strings', () => {
  assert.deepEqual(accepted('setSetting', { key: 'dareq.lambdaEntropy', value: 0.05 }), { key: 'dareq.lambdaEntropy', value: 0.05 });
  assert.equal(accepted('setSetting', { key: 'workbench.colorTheme', value: 'x' }), undefined);
  assert.equal(accepted('setSetting', { key: 'quantization.bits', value: { evil: true } }), undefined);
  assert.equal(accepted('channel', { tensor: 't', row: -1, group: 0 }), undefined);
  assert.deepEqual(accepted('detail', { tensor: 'w' }), { tensor: 'w' });
});

test('compute backend setting: auto, webgpu or cpu; anything else is reported and auto is used', () => {
  assert.deepEqual(
    readComputeBackend(() => undefined),
    { backend: 'auto' },
  );
  assert.deepEqual(
    readComputeBackend((k) => (k === 'compute.backend' ? 'cpu' : undefined)),
    { backend: 'cpu' },
  );
  const bad = readComputeBackend((k) => (k === 'compute.backend' ? 'cuda' : undefined));
  assert.equal(bad.backend, 'auto');
  assert.match(bad.problem!, /^weightlens\.compute\.backend must be one of auto, webgpu, cpu \(got "cuda"\); using auto$/);
  const p = PKG.contributes.configuration.properties['weightlens.compute.backend'];
  assert.deepEqual(p.enum, ['auto', 'webgpu', 'cpu']);
  assert.equal(p.default, 'auto');
});

test('GPU messages from the webview are validated like the rest', () => {
  assert.deepEqual(accepted('gpu', { available: true, adapter: 'x', fallback: true }), { available: true, adapter: 'x', fallback: true });
  assert.equal(accepted('gpu', { available: true, adapter: 'x' }), undefined);
  assert.equal(accepted('gpu', { available: 'yes', adapter: 'x', fallback: false }), undefined);
  assert.equal(accepted('gpu', { available: true, adapter: 'x'.repeat(600), fallback: false }), undefined);
  assert.deepEqual(replyFromWebview('detailGpu', { seconds: 1.5, superseded: false }), { seconds: 1.5, superseded: false });
  assert.equal(replyFromWebview('detailGpu', { seconds: Infinity, superseded: false }), undefined);
  assert.equal(replyFromWebview('detailGpu', { seconds: 1, superseded: 'no' }), undefined);
  assert.equal(replyFromWebview('detailGpu', null), undefined);
});

test("the panel's search answers are checked against the request before use", async () => {
  const { checkChoices } = await import('../../src/compute/backend');
  const ok = {
    choices: Int32Array.from([3, -2, -1]),
    contenderStart: Int32Array.from([0, 0, 2, 2]),
    contenders: Int32Array.from([1, 4]),
    undecided: 1,
    rescored: 2,
  };
  assert.equal(checkChoices(ok, 3, 5), undefined);
  assert.match(checkChoices(ok, 4, 5)!, /3 choices for 4 groups/);
  assert.match(checkChoices({ ...ok, choices: Int32Array.from([7, -2, -1]) }, 3, 5)!, /candidate 7 is outside 0..4/);
  assert.match(checkChoices({ ...ok, contenders: Int32Array.from([4, 1]) }, 3, 5)!, /not ascending/);
  assert.match(checkChoices({ ...ok, contenderStart: Int32Array.from([0, 2, 2, 2]) }, 3, 5)!, /contenders for a decided group/);
  assert.match(checkChoices({ ...ok, contenderStart: Int32Array.from([0, 0, 2, 3]) }, 3, 5)!, /malformed/);
  const parsed = replyFromWebview('gpuSearch', {
    choices: ok.choices.buffer,
    contenderStart: ok.contenderStart,
    contenders: ok.contenders,
    undecided: 1,
    rescored: 2,
  });
  assert.ok(parsed);
  assert.deepEqual(Array.from(parsed.choices), [3, -2, -1]);
  const base = { contenderStart: ok.contenderStart, contenders: ok.contenders, undecided: 1, rescored: 2 };
  assert.equal(replyFromWebview('gpuSearch', { ...base, choices: [1, 2] }), undefined);
  assert.equal(replyFromWebview('gpuSearch', { ...base, choices: new Uint8Array(3) }), undefined);
  assert.equal(replyFromWebview('gpuSearch', { ...base, choices: ok.choices, undecided: -1 }), undefined);
});

test("the panel's scales workers: row slices of the choices give the whole block's scales", async () => {
  const { sliceChoices, concatChoices, DECIDE_ON_CPU, ZERO_GROUP } = await import('../../src/compute/backend');
  const { scalesFromChoices } = await import('../../src/core/quant/scales');
  const s = resolveSettings({ preset: 'clip', groupSize: 16 });
  const rows = 7;
  const cols = 48;
  const gpr = 3;
  const values = Float32Array.from(normals(rows * cols, 31, 0.02));
  values.fill(0, 16, 32); // group 1: all zero
  const absmax = new Float32Array(rows * gpr);
  for (let g = 0; g < rows * gpr; g++) for (let i = 0; i < 16; i++) absmax[g] = Math.max(absmax[g], Math.abs(values[g * 16 + i]));
  // Decided groups, undecided ones with contenders, undecided ones with every candidate (empty range).
  const choices = new Int32Array(rows * gpr);
  const contenderStart = new Int32Array(rows * gpr + 1);
  const list: number[] = [];
  for (let g = 0; g < rows * gpr; g++) {
    contenderStart[g] = list.length;
    choices[g] = g === 1 ? ZERO_GROUP : g % 3 === 0 ? (g * 7) % 100 : DECIDE_ON_CPU;
    if (g % 3 === 1 && g !== 1) list.push(g % 50, 50 + (g % 50), 99);
  }
  contenderStart[rows * gpr] = list.length;
  const found = { choices, contenderStart, contenders: Int32Array.from(list), undecided: 0, rescored: list.length };
  const whole = scalesFromChoices(values, rows, cols, s, 'F32', absmax, found);
  for (const cut of [
    [0, 3, 7],
    [0, 1, 2, 7],
    [0, 7],
  ]) {
    const parts = cut.slice(1).map((r1, i) => sliceChoices(found, cut[i] * gpr, r1 * gpr));
    assert.deepEqual(concatChoices(parts).contenders, found.contenders);
    assert.deepEqual(concatChoices(parts).contenderStart, found.contenderStart);
    const scales = parts.flatMap((p, i) =>
      Array.from(
        scalesFromChoices(
          values.subarray(cut[i] * cols, cut[i + 1] * cols),
          cut[i + 1] - cut[i],
          cols,
          s,
          'F32',
          absmax.subarray(cut[i] * gpr, cut[i + 1] * gpr),
          p,
        ),
      ),
    );
    assert.deepEqual(scales, Array.from(whole), `cut ${cut}`);
  }
});
