/**
 * "Weightlens: Plan Mixed Precision (EWQ)…": ask for a budget (default weightlens.ewq.memoryBudgetGB,
 * empty = none), run the full entropy analysis with cancellable progress, show the plan in the
 * model's inspector, and offer to quantize with it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { oneLine } from '../core/errors';
import { readEwqConfig, readRunConfig } from './config';
import { INSPECTOR_VIEW_TYPE, type InspectorProvider } from './inspector/provider';
import { logLine, showError } from './log';
import { configReader, resolveModel } from './quantize-command';
import { formatBytes } from '../shared/format';

export function parseBudgetGB(text: string): number | undefined | 'invalid' {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t.replace(/\s*GB$/i, ''));
  return Number.isFinite(n) && n > 0 ? n : 'invalid';
}

export async function planCommand(inspector: InspectorProvider, arg?: unknown): Promise<unknown> {
  const uri = await resolveModel(arg, inspector.activeUri, vscode.l10n.t('Plan Mixed Precision (EWQ)'));
  if (!uri) return undefined;
  const ewq = readEwqConfig(configReader);
  const answer = await vscode.window.showInputBox({
    title: vscode.l10n.t('Weightlens: EWQ plan for {0}', path.basename(uri.fsPath)),
    prompt: vscode.l10n.t('Memory budget in GB (10^9 bytes); leave empty for no budget'),
    value: ewq.budgetGB === undefined ? '' : String(ewq.budgetGB),
    validateInput: (t) =>
      parseBudgetGB(t) === 'invalid' ? vscode.l10n.t('A positive number of GB, e.g. 3.5, or empty for no budget') : undefined,
  });
  if (answer === undefined) return undefined;
  const budgetGB = parseBudgetGB(answer) as number | undefined;
  await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR_VIEW_TYPE);
  let plans = inspector.plansFor(uri);
  for (let i = 0; !plans && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    plans = inspector.plansFor(uri);
  }
  if (!plans) {
    await showError(vscode.l10n.t('{0}: the inspector did not open', uri.fsPath));
    return undefined;
  }
  const docPlans = plans;
  try {
    const plan = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t('Weightlens: EWQ analysis of {0}', path.basename(uri.fsPath)),
        cancellable: true,
      },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let reported = 0;
        return docPlans.analyze(
          ewq,
          readRunConfig(configReader),
          budgetGB === undefined ? undefined : budgetGB * 1e9,
          (f) => {
            const pct = Math.floor(f * 100);
            if (pct > reported) progress.report({ increment: pct - reported, message: `${pct}%` });
            reported = pct;
          },
          abort.signal,
        );
      },
    );
    if (!plan) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Weightlens: EWQ analysis cancelled.'));
      return undefined;
    }
    const counts = plan.blocks.reduce<Record<string, number>>((a, b) => ((a[b.precision] = (a[b.precision] ?? 0) + 1), a), {});
    const summary = `${Object.entries(counts)
      .map(([p, n]) => `${n} ${p}`)
      .join(
        ', ',
      )}; ${formatBytes(plan.rawBytes)} → ${formatBytes(plan.totalBytes)}${plan.budget !== null ? (plan.fits ? ` (fits ${formatBytes(plan.budget)})` : ` — no plan fits ${formatBytes(plan.budget)}`) : ''}`;
    logLine(`EWQ plan for ${uri.fsPath}: ${summary}`);
    if (!plan.fits) {
      void vscode.window.showWarningMessage(
        vscode.l10n.t(
          'Weightlens: no plan fits the budget: even with every block ternary the model needs {0}.',
          formatBytes(plan.totalBytes),
        ),
      );
      return plan;
    }
    const quantizeWithPlan = vscode.l10n.t('Quantize with this plan');
    void vscode.window.showInformationMessage(vscode.l10n.t('Weightlens: EWQ plan — {0}.', summary), quantizeWithPlan).then((b) => {
      if (b === quantizeWithPlan) void vscode.commands.executeCommand('weightlens.quantizeWithPlan', uri);
    });
    return plan;
  } catch (e) {
    await showError(oneLine(e));
    return undefined;
  }
}
