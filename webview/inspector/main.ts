/**
 * The inspector panel: the page's state and how it reacts to the host. Everything comes from the
 * header (the init event); tensor rows are read on demand over the channel to the host (host.ts).
 * The sections live in their own modules: tensors.ts, settings-view.ts, overview.ts, detail.ts,
 * plan-view.ts; gpu.ts runs the host's GPU requests.
 */
import * as l10n from '@vscode/l10n';
// First: the translations are configured before any module builds a label.
import './l10n-setup';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { InspectSummary } from '../../src/core/inspect';
import { formatBytes, formatCount } from '../../src/shared/format';
import { PANEL_COMMANDS, type DetailView, type PanelCommand, type PanelSettings, type PlanView } from '../../src/shared/protocol';
import { detailSection, renderChannel, renderDetail, setDetail } from './detail';
import { byId, custom, el } from './dom';
import { answerCellGpu, answerDetailGpu, answerGpuSearch, panelGpu } from './gpu';
import { connectHost, host, vscodeApi } from './host';
import { addCell, overviewSection, renderOverview, setBlockEntropies, setMetric, setOverview } from './overview';
import { planSection, showPlan } from './plan-view';
import { renderSettings } from './settings-view';
import { peek, renderGroups } from './tensors';

/** What the page shows; the host's events update it. */
const page = {
  summary: undefined as InspectSummary | undefined,
  file: '',
  settings: undefined as PanelSettings | undefined,
  query: '',
  plan: undefined as PlanView | undefined,
  planStatus: '',
  overviewKey: undefined as string | undefined,
  /** The last perplexity measured in llama.cpp for this model (Evaluate Perplexity). */
  perplexity: '',
  /** A file shown from its header alone (GGUF): metadata and tensors, nothing computed. */
  headerOnly: false,
};

function header(s: InspectSummary): HTMLElement {
  const name = page.file.split(/[\\/]/).pop() ?? page.file;
  const bpw = (v: { params: number; bytes: number }) => (v.params ? ((v.bytes * 8) / v.params).toFixed(2) : '0');
  const dtypes = Object.entries(s.byDtype).map(([d, v]) =>
    custom(
      'vscode-badge',
      { title: l10n.t('{0} params, {1}, {2} bits per weight', formatCount(v.params), formatBytes(v.bytes), bpw(v)) },
      `${d} ${formatCount(v.params)}${page.headerOnly && v.params ? ` · ${bpw(v)} bpw` : ''}`,
    ),
  );
  return el(
    'header',
    {},
    el('h1', {}, name),
    el(
      'p',
      { class: 'totals', id: 'totals' },
      l10n.t(
        '{0} parameters · {1} · {2} tensors · {3} · {4} blocks',
        formatCount(s.totalParams),
        formatBytes(s.totalBytes),
        s.tensors.length,
        s.files.length === 1 ? l10n.t('1 file') : l10n.t('{0} files', s.files.length),
        s.blocks.length,
      ) + ' ',
      ...dtypes,
    ),
    el('p', { id: 'perplexity', class: 'muted', 'aria-live': 'polite', hidden: !page.perplexity }, page.perplexity),
  );
}

function render(): void {
  const app = byId('app')!;
  const s = page.summary;
  if (!s) return;
  app.replaceChildren();
  app.setAttribute('aria-busy', 'false');
  app.append(header(s));
  if (page.headerOnly)
    app.append(
      el(
        'p',
        { class: 'muted', id: 'header-only' },
        l10n.t('Shown from the GGUF header: tensor types, shapes and bytes. Evaluate Perplexity (explorer menu) runs it in llama.cpp.'),
      ),
    );
  else app.append(renderSettings(page.settings));
  const meta = Object.entries(s.metadata);
  if (meta.length) {
    const rows = meta.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v)));
    app.append(
      custom(
        'vscode-collapsible',
        { heading: l10n.t('Metadata'), description: l10n.t('{0} keys', meta.length), class: 'metadata' },
        el('table', { class: 'meta' }, el('tbody', {}, ...rows)),
      ),
    );
  }
  if (!page.headerOnly) {
    const onMetric = (m: Parameters<typeof setMetric>[0]) => {
      setMetric(m);
      showOverview();
    };
    app.append(
      overviewSection(onMetric, () => host().notify('endCompare', {})),
      el(
        'p',
        { id: 'detail-status', class: 'muted', 'aria-live': 'polite' },
        l10n.t('Click a cell (or focus it and press Enter) for the tensor in detail.'),
      ),
      detailSection(),
      planSection(page.plan, page.planStatus),
    );
  }
  const search = custom('vscode-textfield', {
    placeholder: l10n.t('Filter tensors by name'),
    id: 'search',
    value: page.query,
    'aria-label': l10n.t('Filter tensors by name'),
  });
  search.addEventListener('input', () => {
    page.query = (search as unknown as { value: string }).value;
    vscodeApi.setState({ query: page.query });
    renderGroups(s, page.query);
  });
  app.append(
    el('h2', {}, l10n.t('Tensors')),
    el('div', { class: 'search' }, search, el('span', { id: 'match-count', 'aria-live': 'polite' })),
    el('div', { id: 'groups' }),
  );
  renderGroups(s, page.query);
  showPlan(page.plan, page.planStatus);
  showOverview();
}

function showOverview(): void {
  const sec = byId('overview');
  if (sec) renderOverview(sec, (row) => host().notify('prioritize', { row }));
}

// Cells arrive one by one; redraw at most every 50 ms (a timer, not requestAnimationFrame, which
// does not run while the panel is in a background tab: it must be current when the user returns).
let overviewTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleOverview(): void {
  overviewTimer ??= setTimeout(() => {
    overviewTimer = undefined;
    showOverview();
  }, 50);
}

// A tensor's detail: the host computes it on the CPU, or asks this panel's GPU for it. Every new
// request supersedes the ones before it (their late results are dropped).
let detailGeneration = 0;

function askDetail(tensor: string): void {
  detailGeneration++;
  host().notify('detail', { tensor });
}

function showDetail(d: DetailView): void {
  setDetail(d);
  const sec = byId('detail');
  if (sec) renderDetail(sec, (tensor, row, group) => host().notify('channel', { tensor, row, group }));
  const st = byId('detail-status');
  if (st) st.textContent = '';
}

function setStatus(id: string, text: string): void {
  const e = byId(id);
  if (e) e.textContent = text;
}

function openDetail(target: EventTarget | null): void {
  const tensor = (target as HTMLElement | null)?.closest?.('td[data-tensor]')?.getAttribute('data-tensor');
  if (tensor) askDetail(tensor);
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') openDetail(e.target);
});

document.addEventListener('click', (e) => {
  openDetail(e.target);
  const target = e.target as HTMLElement;
  const peekButton = target.closest?.('button[data-peek]');
  if (peekButton && page.summary) void peek(page.summary, peekButton.getAttribute('data-peek')!, peekButton.closest('tr')!);
  const command = target.closest('[data-command]')?.getAttribute('data-command');
  if ((PANEL_COMMANDS as readonly (string | null | undefined)[]).includes(command))
    host().notify('command', { command: command as PanelCommand });
});

connectHost({
  events: {
    init: (m) => {
      page.summary = m.summary;
      page.file = m.file;
      page.settings = m.settings;
      page.headerOnly = m.headerOnly === true;
      render();
    },
    overview: (m) => {
      const changed = page.overviewKey !== undefined && page.overviewKey !== m.key;
      page.overviewKey = m.key;
      setOverview(m.key, m.layout, m.cells, m.compareWith);
      showOverview();
      // New settings: the open detail is recomputed for them too.
      const shown = byId('detail')?.getAttribute('data-tensor');
      if (changed && shown) askDetail(shown);
    },
    cell: (m) => {
      if (addCell(m.key, m.tensor, m.stats)) scheduleOverview();
    },
    overviewStatus: (m) => setStatus('overview-status', m.text),
    detail: (m) => {
      detailGeneration++;
      showDetail(m.detail);
    },
    channel: (m) => {
      const sec = byId('detail');
      if (sec) renderChannel(sec, m.channel);
    },
    detailStatus: (m) => setStatus('detail-status', m.text),
    plan: (m) => {
      page.plan = m.plan;
      showPlan(page.plan, page.planStatus);
      if (m.plan.source === 'ewq') {
        setBlockEntropies(new Map(m.plan.blocks.filter((b) => b.entropy !== null).map((b) => [b.index, b.entropy!])));
        showOverview();
      }
    },
    planStatus: (m) => {
      page.planStatus = m.text;
      showPlan(page.plan, page.planStatus);
    },
    perplexity: (m) => {
      page.perplexity = m.text;
      const p = byId('perplexity');
      if (p) {
        p.textContent = m.text;
        p.hidden = false;
      }
    },
    settings: (m) => {
      page.settings = m.settings;
      document.querySelector('section.settings')?.replaceWith(renderSettings(page.settings));
    },
  },
  requests: {
    detailGpu: (job) => answerDetailGpu(job, { begin: () => ++detailGeneration, current: () => detailGeneration }, showDetail),
    gpuSearch: (body) => answerGpuSearch(body),
    cellGpu: (job) => answerCellGpu(job),
  },
});

page.query = (vscodeApi.getState() as { query?: string } | undefined)?.query ?? '';
host().notify('ready', {});
// Look for WebGPU once and tell the host, which then sends detail jobs here when the
// weightlens.compute.backend setting allows.
void panelGpu().then((g) =>
  host().notify(
    'gpu',
    typeof g === 'string'
      ? { available: false, adapter: g, fallback: false }
      : { available: true, adapter: g.adapter, fallback: g.fallback },
  ),
);
