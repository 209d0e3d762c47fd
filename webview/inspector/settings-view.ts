/**
 * The settings bar: what the panel computes with, and the tuning controls. The controls write the
 * workspace settings (a setSetting request the host checks against the settings' own ranges),
 * which stay the source of truth: the host answers a change by recomputing the panel.
 */
import type { PanelSettings, TunableSetting } from '../../src/shared/protocol';
import { byId, custom, el } from './dom';
import { host } from './host';

/** Writes one setting; a refusal is shown beside the controls. */
function set(key: TunableSetting, value: number | string): void {
  const problem = byId('tune-problem');
  if (problem) problem.textContent = '';
  host()
    .request('setSetting', { key, value })
    .catch((e: unknown) => {
      const p = byId('tune-problem');
      if (p) p.textContent = e instanceof Error ? e.message : String(e);
    });
}

function select(id: string, label: string, options: [string, string][], current: string, onChange: (v: string) => void): HTMLElement {
  const sel = el('select', { id, 'aria-label': label });
  for (const [v, text] of options) sel.append(el('option', { value: v, selected: v === current }, text));
  sel.addEventListener('change', () => onChange(sel.value));
  return el('label', { class: 'tune' }, `${label} `, sel);
}

function tuning(s: PanelSettings): HTMLElement {
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
  const bits = ['2', '3', '4', '5', '6', '7', '8'].map((b): [string, string] => [b, b]);
  const groupSizes: [string, string][] = [
    ['0', 'per-channel'],
    ['32', '32'],
    ['64', '64'],
    ['128', '128'],
    ['256', '256'],
  ];
  const presets: [string, string][] = ['clip', 'paper', 'reference'].map((p) => [p, p]);
  return el(
    'div',
    { class: 'tuning', role: 'group', 'aria-label': 'Tune the quantization (writes the workspace settings)' },
    select('tune-bits', 'bits', bits, String(s.bits), (v) => set('quantization.bits', Number(v))),
    select('tune-group', 'group size', groupSizes, String(s.groupSize), (v) => set('quantization.groupSize', Number(v))),
    select('tune-preset', 'preset', presets, s.preset, (v) => set('dareq.preset', v)),
    el('label', { class: 'tune' }, 'λH ', lambda, lambdaNum),
    el('span', { id: 'tune-problem', class: 'problem', role: 'alert' }),
  );
}

export function renderSettings(s: PanelSettings | undefined): HTMLElement {
  const box = el('section', { class: 'settings', 'aria-label': 'Quantization settings' });
  if (!s) return box;
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
