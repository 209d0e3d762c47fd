/**
 * The settings bar: what the panel computes with, and the tuning controls. The controls write the
 * workspace settings (a setSetting request the host checks against the settings' own ranges),
 * which stay the source of truth: the host answers a change by recomputing the panel.
 */
import * as l10n from '@vscode/l10n';
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
    'aria-label': l10n.t('λH, weight of the entropy term'),
  });
  const lambdaNum = el('input', {
    id: 'lambda-number',
    type: 'number',
    min: '0',
    step: '0.001',
    value: String(s.lambdaEntropy),
    'aria-label': l10n.t('λH value'),
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
    ['0', l10n.t('per-channel')],
    ['32', '32'],
    ['64', '64'],
    ['128', '128'],
    ['256', '256'],
  ];
  const presets: [string, string][] = ['clip', 'paper', 'reference'].map((p) => [p, p]);
  return el(
    'div',
    { class: 'tuning', role: 'group', 'aria-label': l10n.t('Tune the quantization (writes the workspace settings)') },
    select('tune-bits', l10n.t('bits'), bits, String(s.bits), (v) => set('quantization.bits', Number(v))),
    select('tune-group', l10n.t('group size'), groupSizes, String(s.groupSize), (v) => set('quantization.groupSize', Number(v))),
    select('tune-preset', l10n.t('preset'), presets, s.preset, (v) => set('dareq.preset', v)),
    el('label', { class: 'tune' }, 'λH ', lambda, lambdaNum),
    el('span', { id: 'tune-problem', class: 'problem', role: 'alert' }),
  );
}

export function renderSettings(s: PanelSettings | undefined): HTMLElement {
  const box = el('section', { class: 'settings', 'aria-label': l10n.t('Quantization settings') });
  if (!s) return box;
  const group = s.groupSize > 0 ? l10n.t('groups of {0}', s.groupSize) : l10n.t('per-channel');
  const method = s.method === 'rtn' ? l10n.t('round-to-nearest') : l10n.t('DARE-Q, preset {0}, λH {1}', s.preset, s.lambdaEntropy);
  box.append(
    el('span', { class: 'codicon codicon-settings-gear', 'aria-hidden': 'true' }),
    el(
      'span',
      { id: 'settings-summary', 'data-compute': s.compute },
      l10n.t('{0} · {1}-bit · {2} · {3} · compute: {4}', method, s.bits, group, s.format, s.compute),
    ),
    custom('vscode-button', { secondary: true, 'data-command': 'openSettings' }, l10n.t('Settings')),
    custom('vscode-button', { 'data-command': 'quantizeDareq' }, l10n.t('Quantize with these settings…')),
    custom('vscode-button', { secondary: true, 'data-command': 'quantizeRtn' }, l10n.t('Round-to-nearest…')),
  );
  box.append(tuning(s));
  for (const p of s.problems) box.append(el('p', { class: 'problem', role: 'alert' }, p));
  return box;
}
