/**
 * The inspector panel: metadata, totals, and the tensors grouped by transformer block, searchable.
 * Everything comes from the header (one `init` message); tensor rows are fetched on demand through
 * the typed request/response protocol (the first values of a tensor, the WebGPU detail's row
 * blocks). Block contents are built only
 * when a block is opened, so a model with thousands of tensors renders at once.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { decodeFloats, isDecodableFloat, type DType, type DecodableFloat } from '../../src/core/dtypes';
import { formatBytes, formatCount } from '../../src/shared/format';
import type { InspectSummary } from '../../src/core/inspect';
import type { HostMessage, PanelSettings, PlanView, WebviewMessage } from '../../src/shared/protocol';
import { renderPlan } from './plan-chart';
import { addCell, overviewSection, renderOverview, setBlockEntropies, setMetric, setOverview } from './overview';
import { detailSection, renderChannel, renderDetail, setDetail } from './detail';
import { computeDetailOnGpu, panelGpu, serial, Superseded } from './gpu';
import type { DetailView, GpuDetailJob } from '../../src/shared/protocol';
import type { QuantSettings as GpuSearchSettings } from '../../src/core/quant/settings';

declare function acquireVsCodeApi(): { postMessage(m: WebviewMessage): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();

type Tensor = InspectSummary['tensors'][number];

/** Builds an element: `class`, `data-*`, `aria-*`, `role`, `title` and `slot` become attributes, the rest properties. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Record<string, unknown>,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K];
function el(tag: string, props?: Record<string, unknown>, ...children: (Node | string)[]): HTMLElement;
function el(tag: string, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = String(v);
    else if (/^(data-|aria-)/.test(k) || k === 'role' || k === 'title' || k === 'slot') e.setAttribute(k, String(v));
    else (e as unknown as Record<string, unknown>)[k] = v;
  }
  e.append(...children);
  return e;
}

/** Custom elements (vscode-elements) have no entry in HTMLElementTagNameMap's typing here. */
const custom = (tag: string, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElement =>
  el(tag, props, ...children);

let summary: InspectSummary | undefined;
let file = '';
let settings: PanelSettings | undefined;
let query = '';
let plan: PlanView | undefined;
let overviewKey: string | undefined;
let planStatus = { text: '', running: false };
/** The last perplexity measured in llama.cpp for this model (Evaluate Perplexity). */
let perplexityText = '';
/** A file shown from its header alone (GGUF): metadata and tensors, nothing computed. */
let headerOnly = false;

function planSection(): HTMLElement {
  const sec = el('section', { class: 'plan', id: 'plan', 'aria-label': 'Mixed precision plan (EWQ)' });
  sec.append(
    el('h2', {}, 'Mixed precision (EWQ)'),
    el('p', { id: 'plan-summary' }, plan ? '' : 'No plan yet.'),
    el('p', { id: 'plan-stats', class: 'muted' }),
    el('p', { id: 'plan-status', class: 'muted', 'aria-live': 'polite' }, planStatus.text),
    el(
      'div',
      { class: 'chart-box' },
      el('canvas', { id: 'plan-chart', role: 'img', 'aria-label': 'Block entropies coloured by planned precision' }),
    ),
    el('div', { id: 'plan-legend', class: 'legend' }),
    el(
      'div',
      { class: 'actions' },
      custom('vscode-button', { secondary: true, 'data-command': 'planEwq' }, 'Plan with a budget…'),
      custom('vscode-button', { 'data-command': 'quantizeWithPlan', id: 'quantize-plan' }, 'Quantize with this plan'),
    ),
  );
  return sec;
}

function showPlan(): void {
  const sec = document.getElementById('plan');
  if (!sec) return;
  (sec.querySelector('#plan-status') as HTMLElement).textContent = planStatus.text;
  if (plan) renderPlan(sec, plan);
}

function groups(s: InspectSummary): { heading: string; description: string; tensors: Tensor[]; key: string }[] {
  const byName = new Map(s.tensors.map((t) => [t.name, t]));
  const out = s.blocks.map((b) => ({
    key: `block-${b.index}`,
    heading: `Block ${b.index}`,
    description: `exec ${b.execIndex} · ${b.tensors.length} tensors · ${formatCount(b.params)} params`,
    tensors: b.tensors.map((n) => byName.get(n)!),
  }));
  if (s.other.length) {
    const tensors = s.other.map((n) => byName.get(n)!);
    out.push({ key: 'other', heading: 'Outside blocks', description: `${tensors.length} tensors (embeddings, norms, head)`, tensors });
  }
  return out;
}

function matcher(q: string): (name: string) => boolean {
  if (!q) return () => true;
  const lower = q.toLowerCase();
  return (name) => name.toLowerCase().includes(lower);
}

function tensorTable(tensors: Tensor[]): HTMLTableElement {
  const body = el('tbody');
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    body.append(
      el(
        'tr',
        { 'data-tensor': t.name },
        el(
          'td',
          { class: 'name', title: `${t.name} — click for its first values` },
          el('button', { class: 'peek', 'data-peek': t.name, 'aria-label': `Show the first values of ${t.name}` }, t.name),
        ),
        el('td', { class: 'dtype' }, t.dtype),
        el('td', { class: 'shape' }, `[${t.shape.join(', ')}]`),
        el('td', { class: 'num' }, formatCount(numel)),
        el('td', { class: 'num' }, formatBytes(t.bytes)),
      ),
    );
  }
  return el(
    'table',
    { class: 'tensors' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, 'name'),
        el('th', {}, 'dtype'),
        el('th', {}, 'shape'),
        el('th', { class: 'num' }, 'params'),
        el('th', { class: 'num' }, 'size'),
      ),
    ),
    body,
  );
}

/** Tuning controls: they write the workspace settings, which stay the source of truth. */
function tuning(s: PanelSettings): HTMLElement {
  const set = (key: 'quantization.bits' | 'quantization.groupSize' | 'dareq.preset' | 'dareq.lambdaEntropy', value: number | string) =>
    vscode.postMessage({ type: 'setSetting', key, value });
  const select = (id: string, label: string, options: [string, string][], current: string, onChange: (v: string) => void) => {
    const sel = el('select', { id, 'aria-label': label });
    for (const [v, text] of options) {
      const o = el('option', { value: v }, text);
      if (v === current) o.selected = true;
      sel.append(o);
    }
    sel.addEventListener('change', () => onChange(sel.value));
    return el('label', { class: 'tune' }, `${label} `, sel);
  };
  const lambda = el('input', {
    id: 'lambda-slider',
    type: 'range',
    min: '0',
    max: '1',
    step: '0.005',
    value: String(Math.min(1, s.lambdaEntropy)),
    'aria-label': 'λH, weight of the entropy term',
  });
  const lambdaNum = el('input', {
    id: 'lambda-number',
    type: 'number',
    min: '0',
    step: '0.001',
    value: String(s.lambdaEntropy),
    'aria-label': 'λH value',
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const commit = (v: number) => {
    clearTimeout(timer);
    // Write once the user pauses: every write recomputes the panel.
    timer = setTimeout(() => Number.isFinite(v) && v >= 0 && set('dareq.lambdaEntropy', v), 300);
  };
  lambda.addEventListener('input', () => {
    lambdaNum.value = lambda.value;
    commit(Number(lambda.value));
  });
  lambdaNum.addEventListener('change', () => {
    lambda.value = lambdaNum.value;
    commit(Number(lambdaNum.value));
  });
  return el(
    'div',
    { class: 'tuning', role: 'group', 'aria-label': 'Tune the quantization (writes the workspace settings)' },
    select(
      'tune-bits',
      'bits',
      ['2', '3', '4', '5', '6', '7', '8'].map((b) => [b, b]),
      String(s.bits),
      (v) => set('quantization.bits', Number(v)),
    ),
    select(
      'tune-group',
      'group size',
      [
        ['0', 'per-channel'],
        ['32', '32'],
        ['64', '64'],
        ['128', '128'],
        ['256', '256'],
      ],
      String(s.groupSize),
      (v) => set('quantization.groupSize', Number(v)),
    ),
    select(
      'tune-preset',
      'preset',
      [
        ['clip', 'clip'],
        ['paper', 'paper'],
        ['reference', 'reference'],
      ],
      s.preset,
      (v) => set('dareq.preset', v),
    ),
    el('label', { class: 'tune' }, 'λH ', lambda, lambdaNum),
  );
}

function renderSettings(): HTMLElement {
  const box = el('section', { class: 'settings', 'aria-label': 'Quantization settings' });
  if (!settings) return box;
  const s = settings;
  const group = s.groupSize > 0 ? `groups of ${s.groupSize}` : 'per-channel';
  const method = s.method === 'rtn' ? 'round-to-nearest' : `DARE-Q, preset ${s.preset}, λH ${s.lambdaEntropy}`;
  box.append(
    el('span', { class: 'codicon codicon-settings-gear', 'aria-hidden': 'true' }),
    el(
      'span',
      { id: 'settings-summary', 'data-compute': s.compute },
      `${method} · ${s.bits}-bit · ${group} · ${s.format} · compute: ${s.compute}`,
    ),
    custom('vscode-button', { secondary: true, 'data-command': 'openSettings' }, 'Settings'),
    custom('vscode-button', { 'data-command': 'quantizeDareq' }, 'Quantize with these settings…'),
    custom('vscode-button', { secondary: true, 'data-command': 'quantizeRtn' }, 'Round-to-nearest…'),
  );
  box.append(tuning(s));
  for (const p of s.problems) box.append(el('p', { class: 'problem', role: 'alert' }, p));
  return box;
}

function render(): void {
  const app = document.getElementById('app')!;
  if (!summary) return;
  const s = summary;
  app.replaceChildren();
  app.setAttribute('aria-busy', 'false');
  const name = file.split(/[\\/]/).pop() ?? file;
  const dtypes = Object.entries(s.byDtype).map(([d, v]) =>
    custom(
      'vscode-badge',
      {
        title: `${formatCount(v.params)} params, ${formatBytes(v.bytes)}, ${v.params ? ((v.bytes * 8) / v.params).toFixed(2) : '0'} bits per weight`,
      },
      `${d} ${formatCount(v.params)}${headerOnly && v.params ? ` · ${((v.bytes * 8) / v.params).toFixed(2)} bpw` : ''}`,
    ),
  );
  app.append(
    el(
      'header',
      {},
      el('h1', {}, name),
      el(
        'p',
        { class: 'totals', id: 'totals' },
        `${formatCount(s.totalParams)} parameters · ${formatBytes(s.totalBytes)} · ${s.tensors.length} tensors · ${s.files.length} file${s.files.length === 1 ? '' : 's'} · ${s.blocks.length} blocks `,
        ...dtypes,
      ),
      el('p', { id: 'perplexity', class: 'muted', 'aria-live': 'polite', hidden: !perplexityText }, perplexityText),
    ),
    ...(headerOnly
      ? [
          el(
            'p',
            { class: 'muted', id: 'header-only' },
            'Shown from the GGUF header: tensor types, shapes and bytes. Evaluate Perplexity (explorer menu) runs it in llama.cpp.',
          ),
        ]
      : [renderSettings()]),
  );
  const meta = Object.entries(s.metadata);
  if (meta.length) {
    const rows = meta.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)));
    app.append(
      custom(
        'vscode-collapsible',
        { heading: 'Metadata', description: `${meta.length} keys`, class: 'metadata' },
        el('table', { class: 'meta' }, el('tbody', {}, ...rows)),
      ),
    );
  }
  const search = custom('vscode-textfield', {
    placeholder: 'Filter tensors by name',
    id: 'search',
    value: query,
    'aria-label': 'Filter tensors by name',
  });
  search.addEventListener('input', () => {
    query = (search as unknown as { value: string }).value;
    vscode.setState({ query });
    renderGroups();
  });
  if (!headerOnly) {
    app.append(
      overviewSection(
        (m) => {
          setMetric(m);
          showOverview();
        },
        () => vscode.postMessage({ type: 'endCompare' }),
      ),
    );
    app.append(
      el(
        'p',
        { id: 'detail-status', class: 'muted', 'aria-live': 'polite' },
        'Click a cell (or focus it and press Enter) for the tensor in detail.',
      ),
      detailSection(),
    );
    app.append(planSection());
  }
  app.append(
    el('h2', {}, 'Tensors'),
    el('div', { class: 'search' }, search, el('span', { id: 'match-count', 'aria-live': 'polite' })),
    el('div', { id: 'groups' }),
  );
  renderGroups();
  showPlan();
  showOverview();
}

function showOverview(): void {
  const sec = document.getElementById('overview');
  if (sec) renderOverview(sec, (m) => vscode.postMessage(m));
}

// Cells arrive one by one; redraw at most every 50 ms (a timer, not requestAnimationFrame, which
// does not run while the panel is in a background tab: it must be current when the user returns).
let overviewTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleOverview(): void {
  if (overviewTimer) return;
  overviewTimer = setTimeout(() => {
    overviewTimer = undefined;
    showOverview();
  }, 50);
}

function renderGroups(): void {
  if (!summary) return;
  const host = document.getElementById('groups')!;
  const match = matcher(query);
  let shown = 0;
  const nodes: HTMLElement[] = [];
  for (const g of groups(summary)) {
    const tensors = g.tensors.filter((t) => match(t.name));
    if (!tensors.length) continue;
    shown += tensors.length;
    const open = query.length > 0;
    const c = custom('vscode-collapsible', {
      heading: g.heading,
      description: query ? `${tensors.length} of ${g.tensors.length} match · ${g.description}` : g.description,
      open,
      'data-group': g.key,
    });
    // Build the table the first time the block is opened: cheap even with thousands of tensors.
    const fill = () => {
      if (!c.querySelector('table')) c.append(tensorTable(tensors));
    };
    if (open) fill();
    c.addEventListener('vsc-collapsible-toggle', fill);
    nodes.push(c);
  }
  host.replaceChildren(...nodes);
  document.getElementById('match-count')!.textContent = query ? `${shown} of ${summary.tensors.length} tensors match` : '';
}

// Typed requests to the host: each gets one response with its id; tensor bytes arrive as an
// ArrayBuffer (transferred, not JSON) and are decoded here with the core's dtype code.
let nextRequest = 1;
const pending = new Map<number, { resolve: (r: { result: unknown; bytes?: ArrayBuffer }) => void; reject: (e: Error) => void }>();
function request(
  method: 'readRows',
  params: { tensor: string; start: number; count: number },
): Promise<{ result: unknown; bytes?: ArrayBuffer }> {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    vscode.postMessage({ type: 'request', id, method, params });
  });
}

// A tensor's detail: the host computes it on the CPU, or hands it back as a job for this panel's
// GPU. Every new request supersedes the jobs before it (their late results are dropped).
let detailGeneration = 0;

function askDetail(tensor: string): void {
  detailGeneration++;
  vscode.postMessage({ type: 'detail', tensor });
}

function showDetail(d: DetailView): void {
  setDetail(d);
  const sec = document.getElementById('detail');
  if (sec) renderDetail(sec, (x) => vscode.postMessage(x));
  const st = document.getElementById('detail-status');
  if (st) st.textContent = '';
}

async function runGpuDetail(job: GpuDetailJob): Promise<void> {
  const generation = ++detailGeneration;
  const started = performance.now();
  try {
    const gpu = await panelGpu();
    if (typeof gpu === 'string') throw new Error(gpu);
    const read = async (start: number, count: number) => {
      const { bytes } = await request('readRows', { tensor: job.tensor, start, count });
      if (!bytes) throw new Error(`no bytes for rows ${start}..${start + count - 1}`);
      return bytes;
    };
    const d = await serial(() => computeDetailOnGpu(gpu, job, read, () => generation === detailGeneration));
    if (generation !== detailGeneration) return;
    showDetail(d);
    vscode.postMessage({ type: 'detailGpuDone', tensor: job.tensor, ok: true, error: '', seconds: d.seconds });
  } catch (e) {
    if (e instanceof Superseded || generation !== detailGeneration) return;
    const error = e instanceof Error ? e.message : String(e);
    const st = document.getElementById('detail-status');
    if (st) st.textContent = `WebGPU failed (${error}); computing on the CPU…`;
    vscode.postMessage({ type: 'detailGpuDone', tensor: job.tensor, ok: false, error, seconds: (performance.now() - started) / 1000 });
  }
}

// The quantize command borrowing this panel's GPU: one block's scale search, answered by id.
async function gpuSearch(id: number, values: ArrayBuffer, rows: number, cols: number, s: GpuSearchSettings): Promise<void> {
  try {
    const gpu = await panelGpu();
    if (typeof gpu === 'string') throw new Error(gpu);
    const found = await serial(() => gpu.search.search(new Float32Array(values), rows, cols, s));
    if (!found) throw new Error('these settings do not run on WebGPU');
    vscode.postMessage({
      type: 'gpuSearchResult',
      id,
      ok: true,
      choices: found.choices,
      contenderStart: found.contenderStart,
      contenders: found.contenders,
      undecided: found.undecided,
      rescored: found.rescored,
    });
  } catch (e) {
    vscode.postMessage({ type: 'gpuSearchResult', id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
}

async function peek(name: string, row: HTMLElement): Promise<void> {
  const t = summary?.tensors.find((x) => x.name === name);
  if (!t) return;
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  const cols = rows ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 0;
  const shown = Math.min(4, rows);
  const next = row.nextElementSibling;
  if (next?.classList.contains('peek-row')) {
    next.remove();
    return;
  }
  let text: string;
  try {
    const { bytes } = await request('readRows', { tensor: name, start: 0, count: shown });
    if (isDecodableFloat(t.dtype as DType)) {
      const v = decodeFloats(t.dtype as DecodableFloat, new Uint8Array(bytes!));
      text = Array.from(
        { length: shown },
        (_, r) =>
          Array.from(v.subarray(r * cols, r * cols + Math.min(8, cols)), (x) => x.toPrecision(4)).join('  ') + (cols > 8 ? '  …' : ''),
      ).join('\n');
    } else text = `${bytes!.byteLength} bytes of ${t.dtype} (not a float dtype)`;
  } catch (e) {
    text = (e as Error).message;
  }
  const cell = el('td', { colSpan: 5 }, el('pre', { class: 'peek-values' }, text));
  row.after(el('tr', { class: 'peek-row', 'data-peek-of': name }, cell));
}

function openDetail(target: EventTarget | null): void {
  const cell = (target as HTMLElement | null)?.closest?.('td[data-tensor]');
  const tensor = cell?.getAttribute('data-tensor');
  if (tensor) askDetail(tensor);
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') openDetail(e.target);
});

document.addEventListener('click', (e) => {
  openDetail(e.target);
  const peekButton = (e.target as HTMLElement).closest?.('button[data-peek]');
  if (peekButton) void peek(peekButton.getAttribute('data-peek')!, peekButton.closest('tr')!);
  const target = (e.target as HTMLElement).closest('[data-command]');
  const command = target?.getAttribute('data-command');
  if (
    command === 'quantizeDareq' ||
    command === 'quantizeRtn' ||
    command === 'openSettings' ||
    command === 'planEwq' ||
    command === 'quantizeWithPlan'
  ) {
    vscode.postMessage({ type: 'command', command });
  }
});

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const m = event.data;
  if (m.type === 'init') {
    summary = m.summary;
    file = m.file;
    settings = m.settings;
    headerOnly = m.headerOnly === true;
    render();
  } else if (m.type === 'response') {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (p) {
      if (m.ok) p.resolve({ result: m.result, bytes: m.bytes });
      else p.reject(new Error(m.error));
    }
  } else if (m.type === 'overview') {
    const changed = overviewKey !== undefined && overviewKey !== m.key;
    overviewKey = m.key;
    setOverview(m.key, m.layout, m.cells, m.compareWith);
    showOverview();
    // New settings: the open detail is recomputed for them too.
    const shown = document.getElementById('detail')?.getAttribute('data-tensor');
    if (changed && shown) askDetail(shown);
  } else if (m.type === 'cell') {
    if (addCell(m.key, m.tensor, m.stats)) scheduleOverview();
  } else if (m.type === 'detail') {
    detailGeneration++;
    showDetail(m.detail);
  } else if (m.type === 'detailGpu') {
    void runGpuDetail(m.job);
  } else if (m.type === 'gpuSearch') {
    void gpuSearch(m.id, m.values, m.rows, m.cols, m.settings);
  } else if (m.type === 'channel') {
    const sec = document.getElementById('detail');
    if (sec) renderChannel(sec, m.channel);
  } else if (m.type === 'detailStatus') {
    const st = document.getElementById('detail-status');
    if (st) st.textContent = m.text;
  } else if (m.type === 'plan') {
    plan = m.plan;
    showPlan();
    if (plan.source === 'ewq') {
      setBlockEntropies(new Map(plan.blocks.filter((b) => b.entropy !== null).map((b) => [b.index, b.entropy!])));
      showOverview();
    }
  } else if (m.type === 'perplexity') {
    perplexityText = m.text;
    const p = document.getElementById('perplexity');
    if (p) {
      p.textContent = m.text;
      p.hidden = false;
    }
  } else if (m.type === 'planStatus') {
    planStatus = { text: m.text, running: m.running };
    showPlan();
  } else if (m.type === 'settings') {
    settings = m.settings;
    const old = document.querySelector('section.settings');
    if (old) old.replaceWith(renderSettings());
  }
});

const saved = vscode.getState() as { query?: string } | undefined;
query = saved?.query ?? '';
vscode.postMessage({ type: 'ready' });
// Look for WebGPU once and tell the host, which then sends detail jobs here when the
// weightlens.compute.backend setting allows.
void panelGpu().then((g) =>
  vscode.postMessage(
    typeof g === 'string'
      ? { type: 'gpu', available: false, adapter: g, fallback: false }
      : { type: 'gpu', available: true, adapter: g.adapter, fallback: g.fallback },
  ),
);
