/**
 * The EWQ section of the panel: block entropies (relative to mu) as bars coloured by precision, mu
 * and T as lines, sizes before and after; FastEWQ's header-only plan until the full analysis lands,
 * then the blocks where the two disagreed are outlined.
 */
import * as l10n from '@vscode/l10n';
import { el } from './dom';
import { Chart, css, type ChartDatasetCustomTypesPerDataset } from './charts';
import type { PlanView } from '../../src/shared/protocol';

export function precisionColor(p: string): string {
  const map: Record<string, [string, string]> = {
    raw: ['--vscode-charts-blue', '#3794ff'],
    int8: ['--vscode-charts-green', '#89d185'],
    int4: ['--vscode-charts-yellow', '#cca700'],
    int3: ['--vscode-charts-orange', '#d18616'],
    int2: ['--vscode-charts-red', '#f14c4c'],
    ternary: ['--vscode-charts-purple', '#b180d7'],
  };
  const [v, f] = map[p] ?? ['--vscode-foreground', '#888'];
  return css(v, f);
}

function size(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

let chart: Chart | undefined;

export function renderPlan(host: HTMLElement, plan: PlanView): void {
  host.dataset.planSource = plan.source;
  const summary = host.querySelector('#plan-summary') as HTMLElement;
  const counts = plan.blocks.reduce<Record<string, number>>((a, b) => ((a[b.precision] = (a[b.precision] ?? 0) + 1), a), {});
  const budget =
    plan.budget === null
      ? ''
      : ' · ' + (plan.fits ? l10n.t('fits the {0} budget', size(plan.budget)) : l10n.t('no plan fits {0}', size(plan.budget)));
  summary.textContent =
    l10n.t(
      '{0} · variant {1} · {2} · {3} → {4} as {5}',
      plan.source === 'ewq' ? l10n.t('EWQ (full entropy analysis)') : l10n.t('FastEWQ (from the header alone)'),
      plan.variant,
      Object.entries(counts)
        .map(([p, n]) => `${n} ${p}`)
        .join(', '),
      size(plan.rawBytes),
      size(plan.totalBytes),
      plan.format,
    ) + budget;
  const stats = host.querySelector('#plan-stats') as HTMLElement;
  stats.textContent =
    plan.mu === null
      ? ''
      : `μ = ${plan.mu.toFixed(9)} · σ = ${plan.sigma!.toExponential(3)} · T = ${plan.threshold!.toFixed(9)}` +
        (plan.disagreements.length
          ? ' · ' + l10n.t('FastEWQ disagreed on blocks {0} (outlined)', plan.disagreements.join(', '))
          : plan.source === 'ewq'
            ? ' · ' + l10n.t('FastEWQ agreed on every block')
            : '');
  const canvas = host.querySelector('#plan-chart') as HTMLCanvasElement;
  canvas.dataset.blocks = JSON.stringify(plan.blocks.map((b) => ({ index: b.index, precision: b.precision, entropy: b.entropy })));
  const labels = plan.blocks.map((b) => `${b.index}`);
  const full = plan.mu !== null;
  const values = plan.blocks.map((b) => (full ? b.entropy! - plan.mu! : b.params));
  const fg = css('--vscode-foreground', '#ccc');
  const grid = css('--vscode-panel-border', 'rgba(128,128,128,0.3)');
  const focus = css('--vscode-focusBorder', '#007fd4');
  const datasets: ChartDatasetCustomTypesPerDataset<'bar' | 'line', number[]>[] = [
    {
      type: 'bar' as const,
      label: full ? l10n.t('block entropy − μ') : l10n.t('parameters'),
      data: values,
      backgroundColor: plan.blocks.map((b) => precisionColor(b.precision)),
      borderColor: plan.blocks.map((b) => (plan.disagreements.includes(b.index) ? focus : 'transparent')),
      borderWidth: plan.blocks.map((b) => (plan.disagreements.includes(b.index) ? 3 : 0)),
    },
  ];
  if (full) {
    datasets.push(
      { type: 'line' as const, label: 'μ', data: plan.blocks.map(() => 0), borderColor: fg, borderWidth: 1, pointRadius: 0 },
      {
        type: 'line' as const,
        label: 'T = μ − kσ',
        data: plan.blocks.map(() => plan.threshold! - plan.mu!),
        borderColor: fg,
        borderDash: [4, 4],
        borderWidth: 1,
        pointRadius: 0,
      },
    );
  }
  chart?.destroy();
  chart = new Chart<'bar' | 'line', number[], string>(canvas, {
    data: { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        x: { title: { display: true, text: l10n.t('block'), color: fg }, ticks: { color: fg }, grid: { color: grid } },
        y: {
          title: { display: true, text: full ? l10n.t('entropy − μ (nats)') : l10n.t('parameters'), color: fg },
          ticks: { color: fg, callback: (v) => (full ? Number(v).toExponential(1) : Number(v).toLocaleString()) },
          grid: { color: grid },
        },
      },
      plugins: {
        legend: { labels: { color: fg } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const b = plan.blocks[ctx.dataIndex];
              if (ctx.datasetIndex > 0) return `${ctx.dataset.label}`;
              return [
                `${b.precision} · ${size(b.bytes)}`,
                b.entropy === null ? `${b.params.toLocaleString()} params` : `H = ${b.entropy.toFixed(9)}`,
              ];
            },
          },
        },
      },
    },
  });
  const legend = host.querySelector('#plan-legend') as HTMLElement;
  legend.replaceChildren(
    ...['raw', 'int8', 'int4', 'int3', 'int2', 'ternary']
      .filter((p) => counts[p])
      .map((p) => {
        const swatch = el('span', { class: 'swatch' });
        swatch.style.background = precisionColor(p);
        return el('span', { class: 'legend-item' }, swatch, p);
      }),
  );
}
