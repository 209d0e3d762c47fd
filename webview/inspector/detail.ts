/**
 * One tensor in detail: heatmaps of |W|, |residual| and squared error (DARE-Q beside round-to-nearest,
 * on one colour scale), per-channel charts, and for a clicked channel the weight and residual
 * histograms and the loss curve L(s) over the candidates with its L2 and entropy terms, the chosen
 * scale marked: how a user sees what lambda does.
 */
import * as l10n from '@vscode/l10n';
import { Chart, css } from './charts';
import type { ChannelView, DetailSide, DetailView } from '../../src/shared/protocol';
import { el } from './dom';

/** Asks the host for one channel (and group) of a tensor. */
export type AskChannel = (tensor: string, row: number, group: number) => void;

/** A side's name: the compared checkpoint's, or the quantization method's. */
const sideLabel = (s: DetailSide) => s.label ?? (s.method === 'rtn' ? 'RTN' : 'DARE-Q');

type MapKind = 'absW' | 'absE' | 'sqE';
type SideMetric = 'mse' | 'entropy' | 'scaleRatio' | 'clipped';
/** Metrics of the original weights (one line, not DARE-Q beside RTN). */
type WeightMetric = 'absmax' | 'kurtosis';
type ChannelMetric = SideMetric | WeightMetric;
const isWeightMetric = (m: ChannelMetric): m is WeightMetric => m === 'absmax' || m === 'kurtosis';
const MAPS: { id: MapKind; label: string }[] = [
  { id: 'absW', label: '|W|' },
  { id: 'absE', label: `|${l10n.t('residual')}|` },
  { id: 'sqE', label: l10n.t('squared error') },
];
const CHANNEL_METRICS: { id: ChannelMetric; label: string }[] = [
  { id: 'mse', label: 'MSE' },
  { id: 'entropy', label: l10n.t('residual entropy') },
  { id: 'scaleRatio', label: l10n.t('chosen scale / absmax scale') },
  { id: 'clipped', label: l10n.t('clipped weights') },
  { id: 'absmax', label: l10n.t('weights: absmax') },
  { id: 'kurtosis', label: l10n.t('weights: kurtosis (outliers; 3 = Gaussian)') },
];

let detail: DetailView | undefined;
let mapKind: MapKind = 'absE';
let channelMetric: ChannelMetric = 'mse';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyChart = Chart<any, any, any>;
const charts = new Map<string, AnyChart>();

/** A sequential colour ramp (dark violet to light yellow), readable on light and dark themes. */
function ramp(t: number): [number, number, number] {
  const h = 270 - 220 * t;
  const l = 0.15 + 0.7 * t;
  const a = 0.8 * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

function chart(id: string, canvas: HTMLCanvasElement, config: ConstructorParameters<typeof Chart>[1]): AnyChart {
  charts.get(id)?.destroy();
  const c: AnyChart = new Chart(canvas, config);
  charts.set(id, c);
  return c;
}

function drawMap(canvas: HTMLCanvasElement, side: DetailSide, max: number, d: DetailView, status: HTMLElement): void {
  const { rows, cols } = d.grid;
  const values = side.tiles[mapKind];
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < values.length; i++) {
    const [r, g, b] = ramp(max > 0 ? Math.sqrt(values[i] / max) : 0);
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  canvas.dataset.max = String(Math.max(...values));
  canvas.onmousemove = (e) => {
    const rect = canvas.getBoundingClientRect();
    const tc = Math.min(cols - 1, Math.floor(((e.clientX - rect.left) / rect.width) * cols));
    const tr = Math.min(rows - 1, Math.floor(((e.clientY - rect.top) / rect.height) * rows));
    const r0 = tr * d.grid.rowStep;
    const c0 = tc * d.grid.colStep;
    status.textContent = `${side.method}: rows ${r0}–${Math.min(d.rows, r0 + d.grid.rowStep) - 1}, cols ${c0}–${Math.min(d.cols, c0 + d.grid.colStep) - 1}: mean ${MAPS.find((m) => m.id === mapKind)!.label} = ${values[tr * cols + tc].toExponential(3)}`;
  };
}

export function renderDetail(sec: HTMLElement, askChannel: AskChannel): void {
  const d = detail;
  if (!d) return;
  sec.hidden = false;
  sec.dataset.tensor = d.tensor;
  const sides = [d.main, ...(d.rtn ? [d.rtn] : [])];
  const sqnr = (s: DetailSide) => (s.sqnrDb === null ? '∞' : `${s.sqnrDb.toFixed(2)} dB`);
  const title = el('h2', {}, `${d.tensor} [${d.shape.join(' × ')}]`);
  const summary = el(
    'p',
    { class: 'muted', id: 'detail-summary' },
    sides.map((s) => `${sideLabel(s)}: SQNR ${sqnr(s)}, MSE ${s.mse.toExponential(3)}`).join(' · '),
  );
  // Which backend ran, for the user (and the end-to-end suite): WebGPU in this panel or the CPU workers.
  const backend = el(
    'p',
    { class: 'muted', id: 'detail-backend', 'data-backend': d.backend.startsWith('WebGPU') ? 'webgpu' : 'cpu' },
    l10n.t('Computed on {0} in {1} s', d.backend, d.seconds.toFixed(2)) + (d.backendNote ? ` — ${d.backendNote}` : ''),
  );
  const switcher = el('div', { class: 'actions', role: 'radiogroup', 'aria-label': l10n.t('Heatmap quantity') });
  for (const m of MAPS) {
    const b = el(
      'button',
      { class: `toggle${m.id === mapKind ? ' on' : ''}`, role: 'radio', 'aria-checked': String(m.id === mapKind), 'data-map': m.id },
      m.label,
    );
    b.addEventListener('click', () => {
      mapKind = m.id;
      renderDetail(sec, askChannel);
    });
    switcher.append(b);
  }
  const status = el(
    'p',
    { class: 'muted', id: 'heatmap-status', 'aria-live': 'polite' },
    l10n.t('Hover a heatmap for the values under the cursor.'),
  );
  const maps = el('div', { class: 'maps' });
  const max = Math.max(...sides.flatMap((s) => Array.from(s.tiles[mapKind])));
  for (const s of sides) {
    const canvas = el('canvas', {
      class: 'heatmap',
      id: `heatmap-${s.method}`,
      role: 'img',
      'aria-label': l10n.t('{0} heatmap of mean {1}', sideLabel(s), MAPS.find((m) => m.id === mapKind)!.label),
    });
    const fig = el(
      'figure',
      {},
      canvas,
      el(
        'figcaption',
        {},
        l10n.t(
          '{0} — rows: output channels 0–{1} ↓, columns: inputs 0–{2} →',
          s.label ?? (s.method === 'rtn' ? l10n.t('round-to-nearest') : 'DARE-Q'),
          d.rows - 1,
          d.cols - 1,
        ),
      ),
    );
    maps.append(fig);
    drawMap(canvas, s, max, d, status);
  }
  const metricSelect = el('select', { id: 'channel-metric', 'aria-label': l10n.t('Per-channel metric') });
  for (const m of CHANNEL_METRICS) {
    const o = el('option', { value: m.id }, m.label);
    if (m.id === channelMetric) o.setAttribute('selected', '');
    metricSelect.append(o);
  }
  metricSelect.addEventListener('change', () => {
    channelMetric = metricSelect.value as ChannelMetric;
    renderDetail(sec, askChannel);
  });
  const groupInput = el('input', {
    id: 'channel-group',
    type: 'number',
    min: '0',
    value: '0',
    'aria-label': l10n.t('Group of the channel'),
  });
  // The keyboard way to a channel (the chart takes clicks).
  const channelInput = el('input', {
    id: 'channel-index',
    type: 'number',
    min: '0',
    max: String(d.rows - 1),
    value: '0',
    'aria-label': l10n.t('Channel'),
  });
  const showChannel = el('button', { class: 'toggle', id: 'channel-show' }, l10n.t('Show channel'));
  const requestChannel = () => {
    const row = Math.min(d.rows - 1, Math.max(0, Math.floor(Number(channelInput.value) || 0)));
    askChannel(d.tensor, row, Math.max(0, Number(groupInput.value) || 0));
  };
  showChannel.addEventListener('click', requestChannel);
  channelInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') requestChannel();
  });
  const chCanvas = el('canvas', {
    id: 'channel-chart',
    role: 'img',
    'aria-label': l10n.t('Per-channel statistics; click a channel for its detail'),
  });
  const chBox = el('div', { class: 'chart-box' }, chCanvas);
  sec.replaceChildren(
    title,
    summary,
    backend,
    switcher,
    maps,
    status,
    el('h3', {}, l10n.t('Per channel (click one)')),
    el(
      'div',
      { class: 'actions' },
      metricSelect,
      el('label', {}, `${l10n.t('channel')} `, channelInput),
      el('label', {}, `${l10n.t('group')} `, groupInput),
      showChannel,
    ),
    chBox,
    el('div', { id: 'channel-detail' }),
  );
  const fg = css('--vscode-foreground', '#ccc');
  const colors = [css('--vscode-charts-blue', '#3794ff'), css('--vscode-charts-orange', '#d18616')];
  const c = chart('channels', chCanvas, {
    type: 'line',
    data: {
      labels: Array.from({ length: d.rows }, (_, i) => String(i)),
      datasets: isWeightMetric(channelMetric)
        ? [
            {
              label: 'weights',
              data: Array.from(d.weights[channelMetric]),
              borderColor: colors[0],
              backgroundColor: colors[0],
              pointRadius: d.rows > 200 ? 0 : 2,
              borderWidth: 1,
            },
          ]
        : sides.map((s, i) => ({
            label: sideLabel(s),
            data: Array.from(s.channels[channelMetric as SideMetric]),
            borderColor: colors[i],
            backgroundColor: colors[i],
            pointRadius: d.rows > 200 ? 0 : 2,
            borderWidth: 1,
          })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { title: { display: true, text: l10n.t('output channel'), color: fg }, ticks: { color: fg, maxTicksLimit: 16 } },
        y: { ticks: { color: fg } },
      },
      plugins: { legend: { labels: { color: fg } } },
      onClick: (_e, elements) => {
        const i = elements[0]?.index;
        if (i !== undefined) askChannel(d.tensor, i, Math.max(0, Number(groupInput.value) || 0));
      },
    },
  });
  chCanvas.dataset.channels = String(c.data.labels?.length ?? 0);
  chCanvas.dataset.metric = channelMetric;
  chCanvas.dataset.series = JSON.stringify(c.data.datasets.map((x) => x.label));
  if (isWeightMetric(channelMetric))
    chCanvas.dataset.values = JSON.stringify(Array.from(d.weights[channelMetric].subarray(0, 8), (v) => Number(v.toPrecision(6))));
}

export function renderChannel(sec: HTMLElement, ch: ChannelView): void {
  const box = sec.querySelector('#channel-detail') as HTMLElement | null;
  if (!box) return;
  box.dataset.row = String(ch.row);
  box.dataset.chosen = String(ch.chosen);
  const fg = css('--vscode-foreground', '#ccc');
  // Trace scales are magnitudes; a sign-aware choice is negative where the largest weight is positive.
  const chosenScale = ch.chosen >= 0 ? (ch.sign ?? 1) * ch.scales[ch.chosen] : NaN;
  const lossCanvas = el('canvas', { id: 'loss-curve', role: 'img', 'aria-label': l10n.t('Loss over the candidate scales') });
  const wCanvas = el('canvas', { id: 'weight-hist', role: 'img', 'aria-label': l10n.t('Weight histogram') });
  const rCanvas = el('canvas', { id: 'residual-hist', role: 'img', 'aria-label': l10n.t('Residual histogram at the chosen scale') });
  box.replaceChildren(
    el('h3', {}, l10n.t('Channel {0}, group {1} of {2}', ch.row, ch.group + 1, ch.groups)),
    el(
      'p',
      { class: 'muted', id: 'channel-summary' },
      ch.chosen < 0
        ? l10n.t('All weights are zero: scale 1, codes 0.')
        : ch.zero
          ? l10n.t(
              'chosen scale {0} = {1} × the min-max scale (candidate {2} of {3}), zero point {4} (code {5} stands for {6}); L(s) below is along the scale at this zero point; λw {7}, λH {8}, {9}',
              chosenScale.toExponential(4),
              (chosenScale / ch.rtnScale).toFixed(3),
              ch.chosen + 1,
              ch.scales.length,
              ch.zero.kind === 'integer' ? String(ch.zero.point) : ch.zero.point.toExponential(3),
              l10n.t('qmin'),
              ch.zero.offset.toExponential(3),
              ch.lambdaWeight,
              ch.lambdaEntropy,
              ch.normalize ? l10n.t('normalized terms') : l10n.t('raw terms'),
            )
          : l10n.t(
              'chosen scale {0} = {1} × the absmax scale (candidate {2} of {3}); λw {4}, λH {5}, {6}',
              chosenScale.toExponential(4),
              (Math.abs(chosenScale) / ch.rtnScale).toFixed(3),
              ch.chosen + 1,
              ch.scales.length,
              ch.lambdaWeight,
              ch.lambdaEntropy,
              ch.normalize ? l10n.t('normalized terms') : l10n.t('raw terms'),
            ),
    ),
    el('div', { class: 'chart-box' }, lossCanvas),
    el('div', { class: 'hists' }, el('div', { class: 'chart-box half' }, wCanvas), el('div', { class: 'chart-box half' }, rCanvas)),
  );
  if (ch.chosen < 0) return;
  const ratio = ch.scales.map((s) => (s / ch.rtnScale).toFixed(3));
  // L = L2 term + entropy term; the L2 term is what remains of L without the entropy part.
  const l2Term = ch.loss.map((v, i) => v - termH(ch, i));
  chart('loss', lossCanvas, {
    type: 'line',
    data: {
      labels: ratio,
      datasets: [
        {
          label: 'L(s)',
          data: ch.loss,
          borderColor: css('--vscode-charts-blue', '#3794ff'),
          pointRadius: ch.loss.map((_, i) => (i === ch.chosen ? 6 : 0)),
          borderWidth: 2,
        },
        { label: l10n.t('L2 term'), data: l2Term, borderColor: css('--vscode-charts-green', '#89d185'), pointRadius: 0, borderWidth: 1 },
        {
          label: l10n.t('entropy term'),
          data: ch.loss.map((_, i) => termH(ch, i)),
          borderColor: css('--vscode-charts-orange', '#d18616'),
          pointRadius: 0,
          borderWidth: 1,
        },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        x: {
          title: { display: true, text: l10n.t('candidate scale / absmax scale (chosen: the large point)'), color: fg },
          ticks: { color: fg, maxTicksLimit: 12 },
        },
        y: { ticks: { color: fg } },
      },
      plugins: { legend: { labels: { color: fg } } },
    },
  });
  const bars = (canvas: HTMLCanvasElement, id: string, h: ChannelView['weights'], label: string, color: string) =>
    chart(id, canvas, {
      type: 'bar',
      data: {
        labels: h.counts.map((_, i) => (h.lo + ((i + 0.5) * (h.hi - h.lo)) / h.counts.length).toExponential(2)),
        datasets: [{ label, data: h.counts, backgroundColor: color }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { ticks: { color: fg, maxTicksLimit: 6 } }, y: { ticks: { color: fg } } },
        plugins: { legend: { labels: { color: fg } } },
      },
    });
  bars(wCanvas, 'whist', ch.weights, l10n.t('weights of the group'), css('--vscode-charts-blue', '#3794ff'));
  bars(
    rCanvas,
    'rhist',
    ch.residual,
    l10n.t('residual at the chosen scale ({0} bins, as DARE-Q scored it)', ch.bins),
    css('--vscode-charts-purple', '#b180d7'),
  );
}

/** The entropy part of L at candidate i, as the loss weighs it. */
function termH(ch: ChannelView, i: number): number {
  const lh = ch.normalize ? ch.lambdaEntropy / Math.log(ch.bins) : ch.lambdaEntropy;
  return lh * ch.entropy[i];
}

export function setDetail(d: DetailView): void {
  detail = d;
}

export function detailSection(): HTMLElement {
  const sec = el('section', { id: 'detail', 'aria-label': l10n.t('Tensor detail') });
  sec.hidden = !detail;
  return sec;
}
