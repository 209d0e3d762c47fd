/** The mixed-precision (EWQ) section: the plan's chart and numbers, the analysis's progress, its actions. */
import * as l10n from '@vscode/l10n';
import type { PlanView } from '../../src/shared/protocol';
import { byId, custom, el } from './dom';
import { renderPlan } from './plan-chart';

export function planSection(plan: PlanView | undefined, status: string): HTMLElement {
  return el(
    'section',
    { class: 'plan', id: 'plan', 'aria-label': l10n.t('Mixed precision plan (EWQ)') },
    el('h2', {}, l10n.t('Mixed precision (EWQ)')),
    el('p', { id: 'plan-summary' }, plan ? '' : l10n.t('No plan yet.')),
    el('p', { id: 'plan-stats', class: 'muted' }),
    el('p', { id: 'plan-status', class: 'muted', 'aria-live': 'polite' }, status),
    el(
      'div',
      { class: 'chart-box' },
      el('canvas', { id: 'plan-chart', role: 'img', 'aria-label': l10n.t('Block entropies coloured by planned precision') }),
    ),
    el('div', { id: 'plan-legend', class: 'legend' }),
    el(
      'div',
      { class: 'actions' },
      custom('vscode-button', { secondary: true, 'data-command': 'planEwq' }, l10n.t('Plan with a budget…')),
      custom('vscode-button', { 'data-command': 'quantizeWithPlan', id: 'quantize-plan' }, l10n.t('Quantize with this plan')),
    ),
  );
}

/** Updates the section in place (status line, chart). */
export function showPlan(plan: PlanView | undefined, status: string): void {
  const sec = byId('plan');
  if (!sec) return;
  byId('plan-status')!.textContent = status;
  if (plan) renderPlan(sec, plan);
}
