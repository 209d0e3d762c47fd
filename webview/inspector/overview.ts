/**
 * The overview grid: blocks x kinds of weight, each cell coloured by the chosen metric under the
 * current settings, filling in as the host computes cells (the rows on screen first). Cells are
 * focusable, with the values in their label and tooltip; a legend shows the colour scale.
 */
import * as l10n from '@vscode/l10n';
import type { CellStats, OverviewLayout } from '../../src/shared/protocol';
import { colour, colourDomain, ONE_DB, type MinSpan } from './colour-scale';
import { el } from './dom';

export type Metric =
  'sqnrDb' | 'mse' | 'residualEntropy' | 'scaleRatio' | 'clippedFraction' | 'ewqEntropy' | 'maxAbs' | 'relative' | 'cosine';

/** `view`: shown for a quantization, for a comparison with another checkpoint, or both. */
export const METRICS: {
  id: Metric;
  label: string;
  higherIsBetter: boolean | null;
  format: (v: number) => string;
  view: 'quantize' | 'compare' | 'both';
  /** The colour scale spans at least this (colour-scale.ts): 1 dB for the error metrics. */
  minSpan?: MinSpan;
}[] = [
  { id: 'sqnrDb', label: l10n.t('SQNR (dB)'), higherIsBetter: true, format: (v) => v.toFixed(2), view: 'both', minSpan: ONE_DB.db },
  { id: 'mse', label: 'MSE', higherIsBetter: false, format: (v) => v.toExponential(3), view: 'both', minSpan: ONE_DB.power },
  { id: 'residualEntropy', label: l10n.t('Residual entropy (nats)'), higherIsBetter: null, format: (v) => v.toFixed(4), view: 'quantize' },
  {
    id: 'scaleRatio',
    label: l10n.t('Mean chosen scale / absmax scale'),
    higherIsBetter: null,
    format: (v) => v.toFixed(3),
    view: 'quantize',
  },
  {
    id: 'clippedFraction',
    label: l10n.t('Clipped fraction'),
    higherIsBetter: false,
    format: (v) => `${(v * 100).toFixed(3)}%`,
    view: 'quantize',
  },
  {
    id: 'maxAbs',
    label: l10n.t('Largest |A − B|'),
    higherIsBetter: false,
    format: (v) => v.toExponential(3),
    view: 'compare',
    minSpan: ONE_DB.amplitude,
  },
  {
    id: 'relative',
    label: l10n.t('Relative error ‖A − B‖ / ‖A‖'),
    higherIsBetter: false,
    format: (v) => v.toExponential(3),
    view: 'compare',
    minSpan: ONE_DB.amplitude,
  },
  { id: 'cosine', label: l10n.t('Cosine similarity'), higherIsBetter: true, format: (v) => v.toFixed(6), view: 'compare' },
  { id: 'ewqEntropy', label: l10n.t('EWQ block entropy (per row)'), higherIsBetter: null, format: (v) => v.toFixed(7), view: 'both' },
];

const shown = (compare: boolean) => METRICS.filter((m) => m.view === 'both' || m.view === (compare ? 'compare' : 'quantize'));

/** Block entropies of the full EWQ analysis, when it is there. */
let blockEntropies = new Map<number, number>();
export function setBlockEntropies(m: Map<number, number>): void {
  blockEntropies = m;
}

interface State {
  key: string;
  layout: OverviewLayout;
  cells: Map<string, CellStats>;
  metric: Metric;
  /** The compared checkpoint's name, when the grid shows a comparison. */
  compareWith?: string;
}

let state: State | undefined;
let observer: IntersectionObserver | undefined;

function value(c: CellStats, m: Metric, block = -1): number | null {
  if (m === 'ewqEntropy') return blockEntropies.get(block) ?? null;
  return c[m] ?? null;
}

export function renderOverview(host: HTMLElement, prioritize: (row: string) => void): void {
  if (!state) return;
  const { layout, cells, metric } = state;
  const m = METRICS.find((x) => x.id === metric)!;
  const compare = state.compareWith !== undefined;
  // The heading, the metrics offered and the banner follow the view (quantization or comparison).
  (host.querySelector('h2') as HTMLElement).textContent = compare
    ? l10n.t('Where {0} differs from this model', state.compareWith!)
    : l10n.t('Where quantization hurts');
  const select = host.querySelector('#metric') as HTMLSelectElement;
  const offered = shown(compare);
  if (select.dataset.view !== String(compare)) {
    select.dataset.view = String(compare);
    select.replaceChildren(...offered.map((x) => el('option', { value: x.id, textContent: x.label, selected: x.id === metric })));
  }
  const banner = host.querySelector('#compare-banner') as HTMLElement;
  banner.hidden = !compare;
  (banner.querySelector('span') as HTMLElement).textContent = compare
    ? l10n.t('Compared with {0} (B): error of B against this model (A), per tensor.', state.compareWith!)
    : '';
  const rowOf = new Map(layout.cells.map((c) => [c.tensor, layout.rowBlocks[layout.rows.indexOf(c.row)] ?? -1]));
  const values = [...cells.entries()]
    .map(([t, c]) => value(c, metric, rowOf.get(t)))
    .filter((v): v is number => v !== null && Number.isFinite(v));
  const { lo, hi, min, max, widened } = colourDomain(values, m.minSpan);
  host.dataset.key = state.key;
  const estimated = [...cells.values()].filter((c) => c.estimate).length;
  host.dataset.filled = String(cells.size);
  host.dataset.estimated = String(estimated);
  host.dataset.total = String(layout.cells.length);
  (host.querySelector('#overview-progress') as HTMLElement).textContent =
    cells.size < layout.cells.length
      ? l10n.t('computing… {0} of {1} tensors', cells.size, layout.cells.length)
      : estimated
        ? l10n.t('{0} tensors, {1} estimated from a sample (≈): the exact values follow', layout.cells.length, estimated)
        : l10n.t('{0} tensors', layout.cells.length);
  const legend = host.querySelector('#overview-legend') as HTMLElement;
  legend.replaceChildren();
  if (values.length) {
    const bar = el('span', { class: 'ramp' });
    bar.style.background = `linear-gradient(to right, ${colour(lo, lo, hi, m.higherIsBetter)}, ${colour((lo + hi) / 2, lo, hi, m.higherIsBetter)}, ${colour(hi, lo, hi, m.higherIsBetter)})`;
    legend.append(document.createTextNode(m.format(lo)), bar, document.createTextNode(m.format(hi)));
    legend.dataset.widened = String(widened);
    legend.title = widened
      ? l10n.t(
          'Every value lies between {0} and {1}: the colour scale spans at least 1 dB, so smaller differences (and the noise of estimates) do not change the colour.',
          m.format(min),
          m.format(max),
        )
      : '';
  }
  const table = el('table', { class: 'grid', role: 'grid' });
  const head = table.createTHead().insertRow();
  head.append(el('th', {}, 'block'));
  for (const k of layout.kinds) head.append(el('th', { title: k }, k.replace(/^(self_attn|mlp|attn|attention)\./, '')));
  const body = table.createTBody();
  const byPos = new Map(layout.cells.map((c) => [`${c.row}\u0000${c.kind}`, c.tensor]));
  for (const row of layout.rows) {
    const tr = body.insertRow();
    tr.dataset.row = row;
    tr.append(el('th', { scope: 'row' }, row));
    for (const kind of layout.kinds) {
      const td = tr.insertCell();
      const tensor = byPos.get(`${row}\u0000${kind}`);
      if (!tensor) continue;
      td.tabIndex = 0;
      td.dataset.tensor = tensor;
      const c = cells.get(tensor);
      if (!c) {
        td.className = 'pending';
        td.setAttribute('aria-label', l10n.t('{0}: computing', tensor));
        continue;
      }
      const v = value(c, metric, rowOf.get(tensor));
      td.className = c.estimate ? 'cell estimate' : 'cell';
      td.dataset.computed = c.estimate ? 'estimate' : c.computedOn?.startsWith('WebGPU') ? 'webgpu' : 'cpu';
      td.dataset.value = String(v);
      td.dataset.sqnr = String(c.sqnrDb);
      td.style.background = v === null ? '' : colour(v, lo, hi, m.higherIsBetter);
      const text = `${tensor}\n${offered
        .map((x) => {
          const xv = value(c, x.id, rowOf.get(tensor));
          return `${x.label}: ${xv === null ? (x.id === 'ewqEntropy' ? l10n.t('not analysed yet') : '∞') : x.format(xv)}`;
        })
        .join(
          '\n',
        )}${c.estimate ? `\n${estimateNote(c.estimate)}` : ''}${c.computedOn ? `\n${l10n.t('Computed on {0}', c.computedOn)}` : ''}`;
      td.title = text;
      td.setAttribute(
        'aria-label',
        `${tensor}: ${m.label} ${v === null ? (metric === 'ewqEntropy' ? l10n.t('not analysed yet') : l10n.t('infinite')) : m.format(v)}`,
      );
      td.textContent = (c.estimate ? '≈' : '') + (v === null ? (metric === 'ewqEntropy' ? '—' : '∞') : m.format(v));
      if (c.estimate) td.dataset.interval = c.estimate.sqnrDb.join(' ');
    }
  }
  const old = host.querySelector('table.grid');
  if (old) old.replaceWith(table);
  else host.append(table);
  // Rows on screen are computed first.
  observer?.disconnect();
  observer = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) prioritize((e.target as HTMLElement).dataset.row!);
  });
  for (const tr of body.rows) if ([...tr.cells].some((td) => td.className === 'pending')) observer.observe(tr);
}

/** The tooltip lines of an estimated cell: its intervals and how much of the tensor was sampled. */
function estimateNote(e: NonNullable<CellStats['estimate']>): string {
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '∞');
  return [
    l10n.t('Estimated from {0} of {1} groups; the exact value follows.', e.groups, e.of),
    l10n.t('SQNR 99% interval: {0} to {1} dB; the other statistics are estimates.', fmt(e.sqnrDb[0]), fmt(e.sqnrDb[1])),
  ].join('\n');
}

export function setOverview(key: string, layout: OverviewLayout, cells: Record<string, CellStats>, compareWith?: string): void {
  const compare = compareWith !== undefined;
  const metric = state?.metric && shown(compare).some((m) => m.id === state!.metric) ? state.metric : 'sqnrDb';
  state = { key, layout, cells: new Map(Object.entries(cells)), metric, compareWith };
}

export function addCell(key: string, tensor: string, stats: CellStats): boolean {
  if (!state || state.key !== key) return false;
  state.cells.set(tensor, stats);
  return true;
}

export function setMetric(m: Metric): void {
  if (state) state.metric = m;
}

export function overviewSection(onMetric: (m: Metric) => void, onEndCompare: () => void): HTMLElement {
  const compare = state?.compareWith !== undefined;
  const select = el('select', { id: 'metric', 'aria-label': l10n.t('Metric'), 'data-view': String(compare) });
  for (const m of shown(compare))
    select.append(el('option', { value: m.id, textContent: m.label, selected: m.id === (state?.metric ?? 'sqnrDb') }));
  select.addEventListener('change', () => onMetric(select.value as Metric));
  const back = el('vscode-button', { id: 'end-compare', textContent: l10n.t('Back to the quantization view') });
  back.setAttribute('secondary', '');
  back.addEventListener('click', () => onEndCompare());
  return el(
    'section',
    { id: 'overview', 'aria-label': l10n.t('Where quantization hurts: error per block and kind of weight') },
    el('h2', {}, l10n.t('Where quantization hurts')),
    el('p', { id: 'compare-banner', class: 'compare-banner', hidden: true }, el('span'), ' ', back),
    el(
      'div',
      { class: 'overview-bar' },
      select,
      el('span', { id: 'overview-legend', class: 'legend' }),
      el('span', { id: 'overview-progress', class: 'muted', 'aria-live': 'polite' }),
    ),
    // Why the grid stopped filling (the host's overviewStatus), when it did.
    el('p', { id: 'overview-status', class: 'problem', role: 'alert' }),
  );
}
