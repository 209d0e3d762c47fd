// End-to-end: the packaged extension in a real VS Code (code-server) driven through headless
// Chromium. Usage: node weightlens.e2e.mjs <baseUrl> <workspaceFolder> <outDir> <userSettingsJson>
// Prints `ok - ...` / `not ok - ...` per step and a closing `N passed, N failed` line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [baseUrl, ws, outDir] = process.argv.slice(2);
fs.mkdirSync(outDir, { recursive: true });
const T0 = Date.now();
const lap = (m) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)}s] ${m}`);
let passed = 0;
let failed = 0;
let page;

async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(
      `not ok - ${name}\n  ${String(e?.stack || e)
        .split('\n')
        .slice(0, 8)
        .join('\n  ')}`,
    );
    await page.screenshot({ path: path.join(outDir, `FAILED-${passed + failed}.png`) }).catch(() => {});
  }
}

async function until(what, fn, timeoutMs = 30000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(everyMs);
  }
}

const files = () => fs.readdirSync(ws).sort();

async function contextMenu(fileName) {
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Escape');
    const item = page.getByRole('treeitem', { name: fileName, exact: true });
    await item.waitFor({ timeout: 30000 });
    await item.click({ button: 'right' });
    await page.locator('.context-view .monaco-menu').waitFor();
    // The explorer can shift under the pointer (a running quantization's temporary file appears):
    // the menu must be this file's, which VS Code focuses on right-click.
    if (await item.evaluate((el) => el.classList.contains('focused'))) return;
    if (attempt >= 3) throw new Error(`the context menu kept opening on another row than ${fileName}`);
    console.log(`  menu: opened on another row than ${fileName} (attempt ${attempt}), retrying`);
  }
}

/** The webview frame whose document has `selector` (and, when given, whose #totals match `totals`). */
async function webviewFrame(selector, timeoutMs = 60000, totals = /47 tensors/) {
  return until(
    `webview with ${selector}`,
    async () => {
      for (const f of page.frames()) {
        if (!(await f.$(selector).catch(() => null))) continue;
        const t = await f
          .locator('#totals')
          .innerText({ timeout: 500 })
          .catch(() => '');
        if (totals.test(t)) return f;
      }
      return undefined;
    },
    timeoutMs,
  );
}

const toast = (text) => page.locator('.notification-toast', { hasText: text });

/** Expands a folder of the explorer (a click toggles it; clicks can be lost while the tree updates). */
async function expandFolder(name) {
  await page.keyboard.press('Escape');
  const folder = page.getByRole('treeitem', { name, exact: true });
  await until(`the ${name} folder expanded`, async () => {
    if ((await folder.getAttribute('aria-expanded')) === 'true') return true;
    await folder.click();
    await page.waitForTimeout(300);
    return (await folder.getAttribute('aria-expanded')) === 'true';
  });
}

/**
 * Right-click a file and run a Weightlens entry, then wait for the quick pick. VS Code's menus ignore
 * a click that comes right after they open (the right-click's own mouseup), so wait, and retry.
 */
async function runFromContextMenu(fileName, title) {
  for (let attempt = 1; ; attempt++) {
    await contextMenu(fileName);
    await page.waitForTimeout(400);
    try {
      await page.getByRole('menuitem', { name: title }).click({ timeout: 10000 });
      await page.locator('.quick-input-widget').waitFor({ state: 'visible', timeout: 5000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      console.log(`  menu: "${title}" did not open its quick pick (attempt ${attempt}), retrying`);
    }
  }
}

/**
 * Opens a context menu with `openMenu` and clicks the entry `title` (one that opens no quick pick),
 * opening the menu again when it closes before the click lands.
 */
async function clickMenuEntry(openMenu, title) {
  for (let attempt = 1; ; attempt++) {
    await openMenu();
    await page.waitForTimeout(400);
    try {
      await page.getByRole('menuitem', { name: title }).click({ timeout: 10000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      console.log(`  menu: "${title}" could not be clicked (attempt ${attempt}), retrying`);
    }
  }
}

/** Right-click a file and click a menu entry that opens no quick pick. */
async function runMenuOnly(fileName, title) {
  await clickMenuEntry(() => contextMenu(fileName), title);
}

/** Monaco renders spaces as no-break spaces. */
const plain = (t) => t.replace(/\u00a0/g, ' ');

const ctx = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(outDir, 'chromium-profile-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: [
    '--no-sandbox',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--disable-default-apps',
    '--enable-unsafe-webgpu',
  ],
});
page = ctx.pages()[0] || (await ctx.newPage());
const consoleErrors = [];
/** Errors a step provokes on purpose (the workbench echoes error notifications to the console). */
const expectedConsoleErrors = [];
page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${m.text()} @ ${m.location()?.url ?? ''}`));

await step('workbench loads with the workspace and its models', async () => {
  await page.goto(`${baseUrl}/?folder=${encodeURIComponent(ws)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90000 });
  await page.getByRole('treeitem', { name: 'stories260K.safetensors', exact: true }).waitFor({ timeout: 90000 });
  lap('workbench ready');
});

await step('the explorer context menu shows the Weightlens entries on .safetensors files and not on others', async () => {
  // The extension activates on its first command; retry until its menu contributions are there.
  await contextMenu('notes.txt');
  assert.equal(await page.getByRole('menuitem', { name: /Weightlens/ }).count(), 0, 'no Weightlens entry on a .txt file');
  await until('Weightlens entries on a .safetensors file', async () => {
    await contextMenu('stories260K.safetensors');
    const n = await page.getByRole('menuitem', { name: /Weightlens/ }).count();
    return n === 6 ? n : undefined;
  });
  for (const title of [
    'Weightlens: Quantize (DARE-Q)…',
    'Weightlens: Quantize with round-to-nearest',
    'Weightlens: Open Inspector',
    'Weightlens: Plan Mixed Precision (EWQ)…',
    'Weightlens: Evaluate Perplexity (llama.cpp)…',
    'Weightlens: Compare Weights…',
  ]) {
    assert.equal(await page.getByRole('menuitem', { name: title }).count(), 1, title);
  }
  await page.screenshot({ path: path.join(outDir, 'context-menu.png') });
  await page.keyboard.press('Escape');
});

await step('right-click -> quantize -> Enter: progress, the output appears, the diff view opens with both sides', async () => {
  await runFromContextMenu('stories260K.safetensors', 'Weightlens: Quantize (DARE-Q)…');
  await until('the quick pick listing the settings first', async () =>
    (await page.locator('.quick-input-list .monaco-list-row').first().innerText()).includes('DARE-Q (clip), 4-bit, groups of 128'),
  );
  await page.keyboard.press('Enter');
  await toast('wrote stories260K.dareq-w4g128.safetensors').waitFor({ timeout: 120000 });
  assert.ok(files().includes('stories260K.dareq-w4g128.safetensors'), 'output on disk');
  assert.ok(files().includes('stories260K.dareq-w4g128.report.json'), 'report on disk');
  await page.getByRole('treeitem', { name: 'stories260K.dareq-w4g128.safetensors', exact: true }).waitFor({ timeout: 30000 });
  const diff = page.locator('.monaco-diff-editor');
  await diff.waitFor({ timeout: 30000 });
  const text = await until('both sides of the diff', async () => {
    const t = plain(await diff.innerText());
    return t.includes('# original') && t.includes('# quantized') && t.includes('sqnr_db') ? t : undefined;
  });
  assert.match(text, /L0 · q_proj/);
  assert.match(text, /# SQNR \d+\.\d\d dB over all/);
  await page.screenshot({ path: path.join(outDir, 'diff-view.png') });
});

await step('a second run cancelled midway leaves no file and says so', async () => {
  const before = files();
  await runFromContextMenu('big.safetensors', 'Weightlens: Quantize (DARE-Q)…');
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
  const progress = toast('big.safetensors');
  await until('progress with a percentage', async () => /\d+%/.test(await progress.innerText()));
  await page.screenshot({ path: path.join(outDir, 'progress.png') });
  await until('a temporary output being written', async () => fs.readdirSync(ws).some((f) => f.includes('weightlens-tmp')), 30000);
  await progress.hover();
  await progress.getByRole('button', { name: 'Cancel' }).click();
  await toast('quantization cancelled; no output was written').waitFor({ timeout: 30000 });
  await until('the temporary output removed', async () => !fs.readdirSync(ws).some((f) => f.includes('weightlens-tmp')), 10000);
  assert.deepEqual(files(), before, 'no file left');
});

await step('opening a model shows the inspector from its header, searchable', async () => {
  await page.keyboard.press('Escape');
  await page.getByRole('treeitem', { name: 'stories260K.safetensors', exact: true }).dblclick();
  const frame = await webviewFrame('#totals');
  const totals = await frame.locator('#totals').innerText();
  assert.match(totals, /260\.0K parameters/);
  assert.match(totals, /47 tensors/);
  assert.match(totals, /5 blocks/);
  const search = frame.locator('#search');
  await search.click();
  await page.keyboard.type('q_proj');
  await until('the filter to apply', async () => (await frame.locator('#match-count').innerText()) === '5 of 47 tensors match');
  assert.equal(await frame.locator('tr[data-tensor$="q_proj.weight"]').count(), 5);
  // The first values of a tensor, fetched through the typed request/response protocol (bytes as an
  // ArrayBuffer) and decoded in the webview: compared with the file read here.
  await frame.locator('button[data-peek="model.layers.0.self_attn.q_proj.weight"]').click();
  const pre = frame.locator('tr[data-peek-of="model.layers.0.self_attn.q_proj.weight"] pre');
  await pre.waitFor({ timeout: 30000 });
  const lines = (await pre.innerText()).trim().split('\n');
  assert.equal(lines.length, 4);
  const file = fs.readFileSync(path.join(ws, 'stories260K.safetensors'));
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8'));
  const begin = 8 + n + header['model.layers.0.self_attn.q_proj.weight'].data_offsets[0];
  const first = Array.from({ length: 8 }, (_, i) => file.readFloatLE(begin + 4 * i).toPrecision(4));
  assert.equal(lines[0], first.join('  ') + '  …');
  await page.screenshot({ path: path.join(outDir, 'inspector.png') });
});

let sqnrBefore;
await step('the overview grid fills in: one row per block, one column per kind of weight, coloured by SQNR', async () => {
  const frame = await webviewFrame('#overview');
  await until('every cell computed', async () => (await frame.locator('#overview').getAttribute('data-filled')) === '35', 60000);
  assert.equal(await frame.locator('#overview').getAttribute('data-total'), '35');
  assert.equal(await frame.locator('table.grid tbody tr').count(), 5);
  assert.equal(await frame.locator('table.grid thead th').count(), 8, 'block + 7 kinds');
  const cell = frame.locator('td[data-tensor="model.layers.0.self_attn.q_proj.weight"]');
  sqnrBefore = Number(await cell.getAttribute('data-sqnr'));
  assert.ok(sqnrBefore > 15 && sqnrBefore < 30, `4-bit SQNR ${sqnrBefore}`);
  assert.match(await cell.getAttribute('title'), /SQNR \(dB\): \d+\.\d+/);
  // A real model's tensors differ by dB: the colour scale is their own range.
  assert.equal(await frame.locator('#overview-legend').getAttribute('data-widened'), 'false');
  await frame.locator('#overview').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(outDir, 'inspector-overview.png') });
});

await step("a tensor's detail: heatmaps (DARE-Q beside RTN), per-channel chart, and a channel's L(s) curve and histograms", async () => {
  const frame = await webviewFrame('#overview');
  // This machine's adapter is Chromium's SwiftShader, which `auto` leaves alone (too slow for real
  // models): ask for WebGPU explicitly, as a user would (a workspace setting; removed at the end).
  const settingsFile = path.join(ws, '.vscode', 'settings.json');
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  fs.writeFileSync(settingsFile, JSON.stringify({ 'weightlens.compute.backend': 'webgpu' }, null, 2));
  await until(
    'the panel to show compute: webgpu',
    async () => (await frame.locator('#settings-summary').getAttribute('data-compute')) === 'webgpu',
    30000,
  );
  await frame.locator('td[data-tensor="model.layers.0.self_attn.q_proj.weight"]').click();
  await until(
    'the detail',
    async () => (await frame.locator('#detail').getAttribute('data-tensor')) === 'model.layers.0.self_attn.q_proj.weight',
    60000,
  );
  for (const id of ['#heatmap-dareq', '#heatmap-rtn'])
    assert.ok(Number(await frame.locator(id).getAttribute('data-max')) > 0, `${id} drawn`);
  assert.match(await frame.locator('#detail-summary').innerText(), /DARE-Q: SQNR \d+\.\d+ dB.*RTN: SQNR \d+\.\d+ dB/);
  // The webview computed it on WebGPU (Chromium's SwiftShader adapter here) and says so; its SQNR is
  // the overview's (computed on the CPU workers) within f32 rounding.
  assert.equal(
    await frame.locator('#detail-backend').getAttribute('data-backend'),
    'webgpu',
    await frame.locator('#detail-backend').innerText(),
  );
  // The CPU's share (the near-tie groups' contenders) ran on the panel's web workers.
  assert.match(await frame.locator('#detail-backend').innerText(), /^Computed on WebGPU \(.*\) and \d+ web workers? in \d+\.\d+ s$/);
  const gpuSqnr = Number(/DARE-Q: SQNR (\d+\.\d+) dB/.exec(await frame.locator('#detail-summary').innerText())[1]);
  assert.ok(Math.abs(gpuSqnr - sqnrBefore) < 0.01, `WebGPU detail SQNR ${gpuSqnr} vs the CPU overview's ${sqnrBefore}`);
  assert.equal(await frame.locator('#channel-chart').getAttribute('data-channels'), '64');
  // The weights' own per-channel statistics (computed on the GPU too): kurtosis as read from the file.
  await frame.locator('#channel-metric').selectOption('kurtosis');
  await until('the kurtosis chart', async () => (await frame.locator('#channel-chart').getAttribute('data-metric')) === 'kurtosis');
  assert.equal(await frame.locator('#channel-chart').getAttribute('data-series'), '["weights"]');
  const shownKurtosis = JSON.parse(await frame.locator('#channel-chart').getAttribute('data-values'));
  {
    const file = fs.readFileSync(path.join(ws, 'stories260K.safetensors'));
    const n = Number(file.readBigUInt64LE(0));
    const begin = 8 + n + JSON.parse(file.subarray(8, 8 + n).toString('utf8'))['model.layers.0.self_attn.q_proj.weight'].data_offsets[0];
    for (let r = 0; r < 8; r++) {
      const row = Array.from({ length: 64 }, (_, i) => file.readFloatLE(begin + 4 * (r * 64 + i)));
      const mean = row.reduce((a, b) => a + b, 0) / 64;
      const m2 = row.reduce((a, x) => a + (x - mean) ** 2, 0) / 64;
      const m4 = row.reduce((a, x) => a + (x - mean) ** 4, 0) / 64;
      assert.ok(
        Math.abs(shownKurtosis[r] - m4 / (m2 * m2)) < 1e-4 * (m4 / (m2 * m2)),
        `channel ${r}: kurtosis ${shownKurtosis[r]} vs ${m4 / (m2 * m2)}`,
      );
    }
  }
  await frame.locator('#channel-metric').selectOption('mse');
  await frame.locator('#heatmap-dareq').hover();
  assert.match(await frame.locator('#heatmap-status').innerText(), /dareq: rows \d+–\d+, cols \d+–\d+: mean \|residual\| = /);
  await frame.locator('#channel-chart').scrollIntoViewIfNeeded();
  const box = await frame.locator('#channel-chart').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await until(
    "a channel's detail",
    async () => {
      const chosen = await frame.locator('#channel-detail').getAttribute('data-chosen');
      return chosen !== null && Number(chosen) >= 0;
    },
    30000,
  );
  assert.match(await frame.locator('#channel-summary').innerText(), /chosen scale .* × the absmax scale \(candidate \d+ of 100\)/);
  // The same from the keyboard: type a channel, press Enter.
  await frame.locator('#channel-index').fill('7');
  await frame.locator('#channel-index').press('Enter');
  await until('channel 7', async () => (await frame.locator('#channel-detail').getAttribute('data-row')) === '7', 30000);
  await frame.locator('#detail').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(outDir, 'inspector-detail.png') });
  await frame.locator('#loss-curve').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(outDir, 'inspector-loss-curve.png') });
  fs.writeFileSync(settingsFile, '{}\n');
});

await step("the grid's exact values on the panel's WebGPU (backend webgpu), equal to the CLI's CPU run", async () => {
  // big.safetensors (6 blocks of 512/1408): its larger tensors are estimated first, then computed
  // exactly — here on the panel's GPU (Chromium's SwiftShader, so the setting asks for it).
  const settingsFile = path.join(ws, '.vscode', 'settings.json');
  fs.writeFileSync(settingsFile, JSON.stringify({ 'weightlens.compute.backend': 'webgpu' }, null, 2));
  await page.keyboard.press('Escape');
  await runMenuOnly('big.safetensors', 'Weightlens: Open Inspector');
  const frame = await webviewFrame('#totals', 60000, / 1 file · 6 blocks/);
  const onGpu = frame.locator('td[data-computed="webgpu"]').first();
  await until('a cell computed on WebGPU', async () => (await onGpu.count()) > 0, 120000);
  const tensor = await onGpu.getAttribute('data-tensor');
  const sqnr = Number(await onGpu.getAttribute('data-sqnr'));
  assert.match(await onGpu.getAttribute('title'), /Computed on WebGPU \(/);
  // Back to the default backend: the rest of its grid is refined on the CPU workers; wait for the
  // last exact value, so no background work is left for the steps that follow.
  fs.writeFileSync(settingsFile, '{}\n');
  const grid = frame.locator('#overview');
  await until('the big grid all exact', async () => (await grid.getAttribute('data-estimated')) === '0', 180000);
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const { execFileSync } = await import('node:child_process');
  const report = path.join(outDir, 'big-cpu.report.json');
  execFileSync(process.execPath, [
    path.join(root, 'dist', 'cli.js'),
    'quantize',
    path.join(ws, 'big.safetensors'),
    '--backend',
    'cpu',
    '--quiet',
    '--force',
    '--include',
    `^${tensor.replace(/\./g, '\\.')}$`,
    '--out',
    path.join(outDir, 'big-cpu.safetensors'),
    '--report',
    report,
  ]);
  const cpu = JSON.parse(fs.readFileSync(report, 'utf8')).tensors.find((t) => t.name === tensor);
  assert.ok(Math.abs(sqnr - cpu.sqnrDb) < 0.01, `${tensor}: SQNR ${sqnr} on the panel's GPU vs ${cpu.sqnrDb} on the CLI's CPU`);
  await page
    .getByRole('tab', { name: /^stories260K\.safetensors/ })
    .first()
    .click();
});

await step('a sharded model opens in the inspector from its index (right-click the index JSON)', async () => {
  await page.keyboard.press('Escape');
  const folder = page.getByRole('treeitem', { name: 'sharded', exact: true });
  await folder.click();
  await runMenuOnly('model.safetensors.index.json', 'Weightlens: Open Inspector');
  const frame = await webviewFrame('#totals', 60000, /3 files/);
  assert.match(await frame.locator('#totals').innerText(), /4 blocks/);
  await page.screenshot({ path: path.join(outDir, 'inspector-sharded.png') });
  // Back to the first model's inspector for the steps that follow.
  await page
    .getByRole('tab', { name: /^stories260K\.safetensors/ })
    .first()
    .click();
});

await step('the panel shows the FastEWQ plan, replaced by the full EWQ analysis: entropies, mu, T, precisions', async () => {
  const frame = await webviewFrame('#plan');
  await until('the full EWQ plan', async () => (await frame.locator('#plan').getAttribute('data-plan-source')) === 'ewq', 60000);
  const blocks = JSON.parse(await frame.locator('#plan-chart').getAttribute('data-blocks'));
  assert.equal(blocks.length, 5);
  for (const b of blocks) {
    assert.ok(b.entropy > 4.5 && b.entropy < 4.61, `block ${b.index} entropy ${b.entropy}`);
    assert.ok(['raw', 'int8', 'int4'].includes(b.precision));
  }
  assert.match(await frame.locator('#plan-stats').innerText(), /μ = 4\.58\d+ · σ = .* · T = 4\.58/);
  assert.match(
    await frame.locator('#plan-summary').innerText(),
    /EWQ \(full entropy analysis\) · variant 8-4 · .* → .* as compressed-tensors/,
  );
  // The overview can colour its rows by the block entropy too.
  await frame.locator('#metric').selectOption('ewqEntropy');
  await until('block entropies in the grid', async () =>
    /^4\.58\d+$/.test(await frame.locator('td[data-tensor="model.layers.1.mlp.up_proj.weight"]').innerText()),
  );
  await frame.locator('#metric').selectOption('sqnrDb');
  await frame.locator('#plan').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(outDir, 'inspector-ewq-plan.png') });
});

await step('Plan Mixed Precision with a budget, then "Quantize with this plan" writes the mixed-precision model', async () => {
  await runFromContextMenu('stories260K.safetensors', 'Weightlens: Plan Mixed Precision (EWQ)…');
  await page.keyboard.type('0.0006');
  await page.keyboard.press('Enter');
  const done = toast('EWQ plan —');
  await done.waitFor({ timeout: 60000 });
  assert.match(await done.innerText(), /fits 600\.0 KB/);
  const frame = await webviewFrame('#plan');
  await until('the budgeted plan in the panel', async () =>
    /fits the 600\.0 KB budget/.test(await frame.locator('#plan-summary').innerText()),
  );
  await done.hover();
  await done.getByRole('button', { name: 'Quantize with this plan' }).click();
  await toast('wrote stories260K.dareq-ewq-g128.safetensors').waitFor({ timeout: 60000 });
  const report = JSON.parse(fs.readFileSync(path.join(ws, 'stories260K.dareq-ewq-g128.report.json'), 'utf8'));
  const bits = new Set(report.tensors.map((t) => t.bits));
  assert.ok(bits.size >= 1 && [...bits].every((b) => b === 8 || b === 4), `planned bit widths ${[...bits]}`);
  assert.ok(report.tensors.length < 35, 'the raw block stays unquantized');
});

await step("the panel's tuning controls write the workspace settings, and the panel follows them", async () => {
  const frame = await webviewFrame('#settings-summary');
  await frame.locator('#lambda-number').fill('0.05');
  await frame.locator('#lambda-number').dispatchEvent('change');
  const file = path.join(ws, '.vscode', 'settings.json');
  await until(
    'the workspace settings written',
    async () => fs.existsSync(file) && JSON.parse(fs.readFileSync(file, 'utf8'))['weightlens.dareq.lambdaEntropy'] === 0.05,
    30000,
  );
  await until('the panel to follow', async () => /λH 0\.05/.test(await frame.locator('#settings-summary').innerText()));
  await frame.locator('#tune-group').selectOption('64');
  await until(
    'group size written',
    async () => JSON.parse(fs.readFileSync(file, 'utf8'))['weightlens.quantization.groupSize'] === 64,
    30000,
  );
  await until('the panel to follow', async () => /groups of 64/.test(await frame.locator('#settings-summary').innerText()));
});

await step('changing a setting updates the open inspector at once', async () => {
  const frame = await webviewFrame('#settings-summary');
  assert.match(await frame.locator('#settings-summary').innerText(), /4-bit/);
  // Edit the workspace's settings.json on disk, as a user editing it by hand would.
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  // (The dark theme too: the README's dark screenshots come from here.)
  fs.writeFileSync(
    path.join(ws, '.vscode', 'settings.json'),
    JSON.stringify(
      { 'weightlens.quantization.bits': 8, 'weightlens.dareq.lambdaEntropy': 0.25, 'workbench.colorTheme': 'Default Dark Modern' },
      null,
      2,
    ),
  );
  await until(
    'the panel to show the new settings',
    async () =>
      /8-bit/.test(await frame.locator('#settings-summary').innerText()) &&
      /λH 0\.25/.test(await frame.locator('#settings-summary').innerText()),
  );
  // The overview is recomputed for the new settings (8-bit, and a heavy entropy term that trades
  // MSE for a simpler residual): every cell again, with different values.
  await until(
    'the overview for the new settings',
    async () => {
      const key = JSON.parse((await frame.locator('#overview').getAttribute('data-key')) || '{}');
      if (key.bits !== 8 || key.lambdaEntropy !== 0.25) return false;
      if ((await frame.locator('#overview').getAttribute('data-filled')) !== '35') return false;
      const v = Number(
        await frame.locator('td[data-tensor="model.layers.0.self_attn.q_proj.weight"]').getAttribute('data-sqnr', { timeout: 500 }),
      );
      return Math.abs(v - sqnrBefore) > 0.5;
    },
    60000,
  );
  // The open detail followed the new settings too — on the CPU now: `auto` (the backend setting is
  // gone again) does not use a software adapter, and the panel says why.
  await until(
    'the detail recomputed on the CPU',
    async () => (await frame.locator('#detail-backend').getAttribute('data-backend', { timeout: 500 })) === 'cpu',
    60000,
  );
  assert.match(
    await frame.locator('#detail-backend').innerText(),
    /^Computed on CPU \(\d+ worker threads?\) in \d+\.\d+ s — the panel's adapter \(.*\) is a software one/,
  );
  await page.screenshot({ path: path.join(outDir, 'inspector-settings.png') });
  await page
    .getByRole('tab', { name: /^stories260K\.safetensors/ })
    .first()
    .click();
  await frame.locator('#overview').scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(outDir, 'inspector-dark.png') });
});

await step('high contrast: the panel follows the theme, cells get contrast borders, focus is visible', async () => {
  const file = path.join(ws, '.vscode', 'settings.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), 'workbench.colorTheme': 'Default High Contrast' }, null, 2),
  );
  const frame = await webviewFrame('#overview');
  await until(
    'the high-contrast theme in the webview',
    async () => frame.evaluate(() => document.body.classList.contains('vscode-high-contrast')),
    30000,
  );
  const cell = frame.locator('td[data-tensor="model.layers.0.self_attn.q_proj.weight"]');
  await cell.focus();
  const style = await cell.evaluate((el) => {
    const cs = getComputedStyle(el);
    const root = getComputedStyle(document.documentElement);
    return {
      border: cs.borderTopColor,
      borderWidth: cs.borderTopWidth,
      outline: cs.outlineColor,
      outlineWidth: cs.outlineWidth,
      contrast: root.getPropertyValue('--vscode-contrastBorder').trim(),
      focus: root.getPropertyValue('--vscode-focusBorder').trim(),
    };
  });
  assert.ok(style.contrast, 'the theme defines a contrast border');
  assert.notEqual(style.border, 'rgba(0, 0, 0, 0)', `cells have a visible border (${style.border})`);
  assert.equal(style.borderWidth, '1px');
  assert.notEqual(style.outline, 'rgba(0, 0, 0, 0)', `the focused cell is outlined (${style.outline})`);
  assert.equal(style.outlineWidth, '2px');
  await page.screenshot({ path: path.join(outDir, 'inspector-high-contrast.png') });
});

await step("two quantizations at once, both searching on the panel's WebGPU: both complete, bytes equal to the CPU's", async () => {
  await page.keyboard.press('Escape');
  const file = path.join(ws, '.vscode', 'settings.json');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), 'weightlens.compute.backend': 'webgpu' }, null, 2));
  const panel = await webviewFrame('#settings-summary');
  await until(
    'the panel to show compute: webgpu',
    async () => (await panel.locator('#settings-summary').getAttribute('data-compute')) === 'webgpu',
    30000,
  );
  const shardedBefore = new Set(fs.readdirSync(path.join(ws, 'sharded')));
  await runFromContextMenu('stories260K.safetensors', 'Weightlens: Quantize (DARE-Q)…');
  await until('the 8-bit settings first', async () =>
    (await page.locator('.quick-input-list .monaco-list-row').first().innerText()).includes('8-bit'),
  );
  await page.keyboard.press('Enter');
  // The second starts while the first runs (its progress notification is still up).
  await until(
    'the first run in progress',
    async () => (await toast('stories260K.safetensors').count()) > 0 || files().some((f) => f.includes('weightlens-tmp')),
    30000,
  );
  await runFromContextMenu('model.safetensors.index.json', 'Weightlens: Quantize (DARE-Q)…');
  await page.keyboard.press('Enter');
  const report = await until(
    'the first report',
    async () => files().find((f) => /^stories260K\.dareq-w8g128.*\.report\.json$/.test(f)),
    240000,
  );
  const sharded = await until(
    'the second report',
    async () => fs.readdirSync(path.join(ws, 'sharded')).find((f) => !shardedBefore.has(f) && f.endsWith('.report.json')),
    240000,
  );
  const r1 = JSON.parse(fs.readFileSync(path.join(ws, report), 'utf8'));
  const r2 = JSON.parse(fs.readFileSync(path.join(ws, 'sharded', sharded), 'utf8'));
  for (const r of [r1, r2]) {
    assert.equal(r.settings.backend, 'webgpu', "the search ran on the panel's WebGPU");
    assert.match(r.settings.adapter, /swiftshader/i);
    assert.ok(r.settings.gpuGroups > 0 && r.settings.candidatesScoredOnCpu < r.settings.gpuCandidates);
  }
  // The same settings on the CPU (the CLI) give the same bytes.
  const s = r1.settings;
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const cpuOut = path.join(outDir, 'cpu-w8.safetensors');
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.execPath, [
    path.join(root, 'dist', 'cli.js'),
    'quantize',
    path.join(ws, 'stories260K.safetensors'),
    '--backend',
    'cpu',
    '--quiet',
    '--force',
    '--out',
    cpuOut,
    '--method',
    s.method,
    '--preset',
    s.preset,
    '--bits',
    String(s.bits),
    '--group-size',
    String(s.groupSize),
    '--lambda-weight',
    String(s.lambdaWeight),
    '--lambda-entropy',
    String(s.lambdaEntropy),
    s.normalize ? '--normalize' : '--no-normalize',
    '--bins',
    String(s.bins),
    '--grid',
    String(s.grid),
    '--clip-alpha-min',
    String(s.clipAlphaMin),
  ]);
  assert.ok(fs.readFileSync(cpuOut).equals(fs.readFileSync(path.join(ws, r1.output.split('/').pop()))), 'identical bytes');
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), 'weightlens.compute.backend': 'auto' }, null, 2));
});

await step(
  "GGUF out, perplexity in: quantize to GGUF from the quick pick, then Evaluate Perplexity against the original; the numbers equal the CLI's",
  async () => {
    await expandFolder('stories');
    await runFromContextMenu('model.safetensors', 'Weightlens: Quantize (DARE-Q)…');
    const gguf = page.locator('.quick-input-list .monaco-list-row', { hasText: 'As GGUF for llama.cpp' });
    await gguf.waitFor({ timeout: 10000 });
    await gguf.click();
    // The bits are the workspace's (an earlier step set them): Q4_0 or Q8_0.
    const wrote = toast(/wrote model\.dareq-w[48]g32\S*\.gguf/);
    await wrote.waitFor({ timeout: 120000 });
    const name = /model\.dareq-w[48]g32\S*\.gguf/.exec(await wrote.innerText())[0];
    const dir = path.join(ws, 'stories');
    assert.ok(fs.readdirSync(dir).includes(name));
    const diff = page.locator('.monaco-diff-editor');
    await until('the diff view of the GGUF run', async () => plain(await diff.innerText()).includes(name));
    await runFromContextMenu('model.safetensors', 'Weightlens: Evaluate Perplexity (llama.cpp)…');
    const other = page.locator('.quick-input-list .monaco-list-row', { hasText: name });
    await other.waitFor({ timeout: 10000 });
    await other.click();
    const result = toast('perplexity model.safetensors');
    await result.waitFor({ timeout: 120000 });
    const shown = await result.innerText();
    const m = new RegExp(
      `perplexity model\\.safetensors (\\d+\\.\\d{4}), ${name.replace(/\./g, '\\.')} (\\d+\\.\\d{4}) \\(([+-]\\d+\\.\\d\\d)%\\), same (\\d+) tokens`,
    ).exec(shown);
    assert.ok(m, `the result notification: ${shown}`);
    const { execFileSync } = await import('node:child_process');
    const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
    const cli = JSON.parse(
      execFileSync(
        process.execPath,
        [
          path.join(root, 'dist', 'cli.js'),
          'eval',
          path.join(dir, 'model.safetensors'),
          '--compare',
          path.join(dir, name),
          '--json',
          '--quiet',
        ],
        { encoding: 'utf8' },
      ),
    );
    assert.equal(m[1], cli.results[0].perplexity.toFixed(4), 'original: the same perplexity as the CLI');
    assert.equal(m[2], cli.results[1].perplexity.toFixed(4), 'GGUF: the same perplexity as the CLI');
    assert.equal(m[3], `${cli.ratio >= 1 ? '+' : ''}${((cli.ratio - 1) * 100).toFixed(2)}`);
    assert.equal(Number(m[4]), cli.results[0].tokens);
    // The diff view of the run that wrote the GGUF now carries the result in its header.
    await until('the perplexity in the diff view header', async () =>
      plain(await diff.innerText()).includes(
        `# perplexity in llama.cpp (${cli.results[0].tokens} tokens of stories.txt): model.safetensors ${m[1]} -> ${name} ${m[2]}`,
      ),
    );
    await page.screenshot({ path: path.join(outDir, 'perplexity.png') });
    // The GGUF opens in the inspector from its header: ggml types, blocks, no statistics.
    await page.keyboard.press('Escape');
    await page.getByRole('treeitem', { name, exact: true }).dblclick();
    const frame = await webviewFrame('#header-only', 60000, /5 blocks/);
    const totals = await frame.locator('#totals').innerText();
    assert.match(totals, /47 tensors/);
    assert.match(totals, /Q[48]_0/);
    assert.match(totals, /F16/);
    assert.equal(await frame.locator('#overview').count(), 0, 'nothing computed for a GGUF');
    await frame.locator('#search').click();
    await page.keyboard.type('attn_q');
    await until('the filter to apply', async () => (await frame.locator('#match-count').innerText()) === '5 of 47 tensors match');
    assert.match(await frame.locator('tr[data-tensor="blk.0.attn_q.weight"]').innerText(), /Q[48]_0\s+\[64, 64\]/);
    await page.screenshot({ path: path.join(outDir, 'gguf-inspector.png') });
  },
);

await step(
  "Compare Weights: the sample against llama.cpp's own Q4_0 (two files selected) and against a compressed-tensors folder; the numbers equal the CLI's",
  async () => {
    const { execFileSync } = await import('node:child_process');
    const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
    const dir = path.join(ws, 'stories');
    const node = (...args) => execFileSync(process.execPath, args, { encoding: 'utf8' });
    const f32 = path.join(outDir, 'stories-f32.gguf');
    node(
      path.join(root, 'dist', 'cli.js'),
      'quantize',
      path.join(dir, 'model.safetensors'),
      '--format',
      'gguf',
      '--bits',
      '32',
      '--out',
      f32,
      '--quiet',
      '--force',
    );
    node(path.join(root, 'dist', 'llama-quantize.js'), f32, path.join(dir, 'llamacpp-q4_0.gguf'), 'q4_0');
    node(
      path.join(root, 'dist', 'cli.js'),
      'quantize',
      path.join(dir, 'model.safetensors'),
      '--format',
      'compressed-tensors',
      '--method',
      'rtn',
      '--out',
      path.join(dir, 'model-ct'),
      '--quiet',
    );
    const cliCompare = (b) =>
      JSON.parse(
        node(path.join(root, 'dist', 'cli.js'), 'compare', path.join(dir, 'model.safetensors'), path.join(dir, b), '--json', '--quiet'),
      );
    const diff = page.locator('.monaco-diff-editor');
    const expectShown = async (b, what) => {
      const cli = cliCompare(b);
      const q = cli.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight');
      const text = await until(`the diff view of ${what}`, async () => {
        const t = plain(await diff.innerText());
        return t.includes(`# B  ${path.join(dir, b)}`) && t.includes('# SQNR') ? t : undefined;
      });
      assert.ok(
        text.includes(`# SQNR ${cli.summary.sqnrDb.toFixed(2)} dB over all`),
        `${what}: the overall SQNR equals the CLI's (${cli.summary.sqnrDb.toFixed(2)})`,
      );
      const rows = text.split('\n').filter((l) => /^L0 · q_proj +\d/.test(l));
      assert.ok(
        rows.some((l) => l.replace(/^L0 · q_proj +/, '').startsWith(`${q.sqnrDb.toFixed(2)} `)),
        `${what}: L0 · q_proj's SQNR equals the CLI's (${q.sqnrDb.toFixed(2)}): ${rows.join(' | ')}`,
      );
    };
    // Two files selected in the explorer, then the context menu.
    await page.keyboard.press('Escape');
    await page.getByRole('treeitem', { name: 'llamacpp-q4_0.gguf', exact: true }).waitFor({ timeout: 30000 });
    await page.getByRole('treeitem', { name: 'model.safetensors', exact: true }).click();
    const gguf = page.getByRole('treeitem', { name: 'llamacpp-q4_0.gguf', exact: true });
    await gguf.click({ modifiers: ['Control'] });
    // A right-click on a selected file keeps the selection; no Escape first (contextMenu's): in the
    // explorer it clears the selection.
    await clickMenuEntry(async () => {
      await gguf.click({ button: 'right' });
      await page.locator('.context-view .monaco-menu').waitFor();
    }, 'Weightlens: Compare Weights…');
    await expectShown('llamacpp-q4_0.gguf', "llama.cpp's Q4_0");
    await page.screenshot({ path: path.join(outDir, 'compare-diff.png') });
    // The same comparison in the inspector: the grid coloured by it, a tensor's |A - B| in detail.
    const done = toast('llamacpp-q4_0.gguf against model.safetensors');
    await done.hover();
    await done.getByRole('button', { name: 'Show in the inspector' }).click();
    const frame = await webviewFrame('#compare-banner:not([hidden])');
    assert.match(await frame.locator('#overview h2').innerText(), /Where llamacpp-q4_0\.gguf differs from this model/);
    const cli = cliCompare('llamacpp-q4_0.gguf');
    const q = cli.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight');
    const cell = frame.locator('td[data-tensor="model.layers.0.self_attn.q_proj.weight"]');
    await until('the compared cells', async () => (await cell.getAttribute('data-sqnr')) !== null);
    assert.equal(Number(await cell.getAttribute('data-sqnr')), q.sqnrDb, "the cell's SQNR is the CLI's");
    assert.equal(await frame.locator('#overview').getAttribute('data-filled'), String(cli.tensors.filter((t) => t.shape[0] > 1).length));
    const options = await frame.locator('#metric option').allInnerTexts();
    assert.ok(options.includes('Cosine similarity') && !options.includes('Clipped fraction'), `comparison metrics: ${options}`);
    await cell.click();
    await until('the detail of the comparison', async () =>
      /llamacpp-q4_0\.gguf: SQNR/.test(
        await frame
          .locator('#detail-summary')
          .innerText()
          .catch(() => ''),
      ),
    );
    assert.match(await frame.locator('#detail-summary').innerText(), new RegExp(`llamacpp-q4_0\\.gguf: SQNR ${q.sqnrDb.toFixed(2)}`));
    await page.screenshot({ path: path.join(outDir, 'compare-inspector.png') });
    await frame.locator('#end-compare').click();
    await until('the quantization view back', async () => /Where quantization hurts/.test(await frame.locator('#overview h2').innerText()));
    // One file, the other picked: a compressed-tensors folder beside it.
    await page.keyboard.press('Escape');
    await page.getByRole('treeitem', { name: 'model.safetensors', exact: true }).click();
    await runFromContextMenu('model.safetensors', 'Weightlens: Compare Weights…');
    const ct = page.locator('.quick-input-list .monaco-list-row', { hasText: 'model-ct' });
    await ct.waitFor({ timeout: 10000 });
    await ct.click();
    await expectShown('model-ct', 'the compressed-tensors folder');
    // The compressed-tensors folder's model in the inspector: modules with their quantized types.
    await expandFolder('model-ct');
    // Two rows are called model.safetensors: the folder's comes first (its children follow it).
    const ctModel = page.getByRole('treeitem', { name: 'model.safetensors', exact: true }).first();
    await ctModel.dblclick();
    const ctFrame = await webviewFrame('#totals', 60000, /int4 (g128|per-channel)/);
    assert.match(await ctFrame.locator('#totals').innerText(), /47 tensors/);
  },
);

await step(
  'a 2.3 GB sharded 7B-shaped model: every overview cell shown within 60 s (estimates marked, 99% intervals), exact values following',
  async () => {
    await page.keyboard.press('Escape');
    // Collapse the other sharded model: both folders hold a model.safetensors.index.json.
    const sharded = page.getByRole('treeitem', { name: 'sharded', exact: true });
    if ((await sharded.getAttribute('aria-expanded')) === 'true') await sharded.click();
    await page.getByRole('treeitem', { name: 'large', exact: true }).click();
    const t0 = Date.now();
    await runMenuOnly('model.safetensors.index.json', 'Weightlens: Open Inspector');
    const frame = await webviewFrame('#totals', 60000, / 2 files · 4 blocks/);
    const overview = frame.locator('#overview');
    await until('every cell shown', async () => (await overview.getAttribute('data-filled')) === '28', 60000);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`  every cell of the 2.3 GB model shown ${seconds.toFixed(1)} s after "Open Inspector"`);
    // The README's figure: 60 s here, where Chromium renders on the CPU beside the extension (the
    // whole 32-layer 7B-shaped model takes 29.7 s in `npm run bench` on a quiet machine).
    assert.ok(seconds <= 60, `${seconds.toFixed(1)} s`);
    const estimated = Number(await overview.getAttribute('data-estimated'));
    assert.ok(estimated > 0, 'cells estimated from a sample of their groups');
    const cell = frame.locator('td.cell.estimate').first();
    assert.match(await cell.innerText(), /^≈\d/);
    assert.match(await cell.getAttribute('title'), /Estimated from \d+ of \d+ groups[\s\S]*SQNR 99% interval: \d+\.\d+ to \d+\.\d+ dB/);
    const [lo, hi] = (await cell.getAttribute('data-interval')).split(' ').map(Number);
    const value = Number(await cell.getAttribute('data-sqnr'));
    assert.ok(lo <= value && value <= hi && hi - lo < 0.5, `${lo} <= ${value} <= ${hi}`);
    assert.match(await frame.locator('#overview-progress').innerText(), /estimated from a sample/);
    // The generated blocks are alike: every cell within a fraction of a dB, so the colour scale
    // spans 1 dB rather than painting the estimates' noise red and green.
    const legend = frame.locator('#overview-legend');
    assert.equal(await legend.getAttribute('data-widened'), 'true');
    assert.match(await legend.getAttribute('title'), /spans at least 1 dB/);
    await overview.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(outDir, 'inspector-large-estimates.png') });
    // The exact values replace the estimates, the smallest tensors first.
    await until(
      'an exact value replacing an estimate',
      async () => Number(await overview.getAttribute('data-estimated')) < estimated,
      120000,
    );
  },
);

await step('a corrupted .safetensors gets a clear error notification, not a hang', async () => {
  await runFromContextMenu('corrupt.safetensors', 'Weightlens: Quantize with round-to-nearest');
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter');
  expectedConsoleErrors.push(/^Weightlens: \S*corrupt\.safetensors: tensor "w\.weight": data_offsets \[0, 16384\] are out of bounds/);
  const err = toast('are out of bounds');
  await err.waitFor({ timeout: 30000 });
  const msg = await err.innerText();
  assert.match(msg, /corrupt\.safetensors: tensor "w\.weight": data_offsets \[0, 16384\] are out of bounds/);
  assert.match(msg, /Show log/);
  await page.screenshot({ path: path.join(outDir, 'corrupt-error.png') });
});

fs.writeFileSync(path.join(outDir, 'console-errors.txt'), consoleErrors.join('\n'));
await step('no console error comes from the extension (host, contributions or webview)', async () => {
  // Errors of the workbench itself (offline marketplace, telemetry) are not ours; anything naming
  // the extension (its id, view types, commands, or a script under its folder) is.
  const ours = consoleErrors.filter((e) => /weightlens/i.test(e) && !expectedConsoleErrors.some((re) => re.test(e)));
  assert.deepEqual(ours, [], `console errors from the extension:\n${ours.join('\n')}`);
});
await ctx.close();
lap('done');
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
