/** The mixed-precision (EWQ) section: the plan's chart and numbers, the analysis's progress, its actions. */
import type { PlanView } from '../../src/shared/protocol';
import { byId, custom, el } from './dom';
import { renderPlan } from './plan-chart';

export function planSection(plan: PlanView | undefined, status: string): HTMLElement {
  return el(
    'section',
    { class: 'plan', id: 'plan', 'aria-label': 'Mixed precision plan (EWQ)' },
    el('h2', {}, 'Mixed precision (EWQ)'),
    el('p', { id: 'plan-summary' }, plan ? '' : 'No plan yet.'),
    el('p', { id: 'plan-stats', class: 'muted' }),
    el('p', { id: 'plan-status', class: 'muted', 'aria-live': 'polite' }, status),
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
}

/** Updates the section in place (status line, chart). */
export function showPlan(plan: PlanView | undefined, status: string): void {
  const sec = byId('plan');
  if (!sec) return;
  byId('plan-status')!.textContent = status;
  if (plan) renderPlan(sec, plan);
}
