/**
 * Activation: commands, the inspector custom editor, the statistics documents of the diff view, and
 * the settings listener. The engine is the CLI's (src/core, src/node): shared, not forked.
 */
import * as l10n from '@vscode/l10n';
import * as vscode from 'vscode';
import { readFileSync } from 'node:fs';
import { oneLine } from '../core/errors';
import type { FastEwqModel } from '../core/ewq/fast';
import { panelSettings, readEwqConfig, readRunConfig, readComputeBackend } from './config';
import { planCommand } from './plan-command';
import { compareCommand } from './compare-command';
import { GGUF_VIEW_TYPE, GgufInspectorProvider } from './inspector/gguf-provider';
import { evalCommand, type EvalOptions } from './eval-command';
import { INSPECTOR_INDEX_VIEW_TYPE, INSPECTOR_VIEW_TYPE, InspectorProvider } from './inspector/provider';
import { sharedJobPool } from './jobs';
import { log, logLine } from './log';
import { configReader, isRunOptions, quantizeCommand, resolveModel, type QuantizeDeps } from './quantize-command';
import { STATS_SCHEME, StatsDocumentProvider } from './stats-provider';

export function activate(context: vscode.ExtensionContext): void {
  // The modules that do not import vscode (quick pick, settings, panel texts) translate through
  // @vscode/l10n: give it the bundle VS Code loaded for the display language.
  if (vscode.l10n.bundle) l10n.config({ contents: vscode.l10n.bundle });
  const version = String(context.extension.packageJSON.version ?? '0.0.0');
  const stats = new StatsDocumentProvider();
  let fastModel: FastEwqModel | undefined;
  try {
    fastModel = JSON.parse(
      readFileSync(vscode.Uri.joinPath(context.extensionUri, 'data', 'fastewq', 'model.json').fsPath, 'utf8'),
    ) as FastEwqModel;
  } catch (e) {
    logLine(`FastEWQ classifier not loaded: ${oneLine(e)}`);
  }
  const inspector = new InspectorProvider(
    context,
    {
      panel: () => panelSettings(readRunConfig(configReader), readComputeBackend(configReader)),
      run: () => readRunConfig(configReader),
      ewq: () => readEwqConfig(configReader),
      fastModel: () => fastModel,
      backend: () => readComputeBackend(configReader),
    },
    () => sharedJobPool(context),
  );
  const ggufInspector = new GgufInspectorProvider(context, () =>
    panelSettings(readRunConfig(configReader), readComputeBackend(configReader)),
  );
  const deps: QuantizeDeps = {
    context,
    stats,
    activeInspector: () => inspector.activeUri,
    gpuSearch: (model) => inspector.gpuSearch(model, readComputeBackend(configReader).backend),
    version,
  };

  context.subscriptions.push(
    log(),
    stats,
    vscode.workspace.registerTextDocumentContentProvider(STATS_SCHEME, stats),
    vscode.window.registerCustomEditorProvider(GGUF_VIEW_TYPE, ggufInspector, { supportsMultipleEditorsPerDocument: true }),
    ...[INSPECTOR_VIEW_TYPE, INSPECTOR_INDEX_VIEW_TYPE].map((viewType) =>
      vscode.window.registerCustomEditorProvider(viewType, inspector, {
        webviewOptions: { retainContextWhenHidden: true },
        supportsMultipleEditorsPerDocument: false,
      }),
    ),
    // The explorer passes (uri, selectedUris); scripts may pass (uri, { useSettings: true }).
    vscode.commands.registerCommand('weightlens.quantizeDareq', (uri?: unknown, opts?: unknown) =>
      quantizeCommand(deps, 'dareq', uri, isRunOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('weightlens.quantizeRtn', (uri?: unknown, opts?: unknown) =>
      quantizeCommand(deps, 'rtn', uri, isRunOptions(opts) ? opts : undefined),
    ),
    vscode.commands.registerCommand('weightlens.openInspector', async (arg?: unknown) => {
      const uri = await resolveModel(arg, undefined, vscode.l10n.t('Open Inspector'));
      if (uri) await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR_VIEW_TYPE);
    }),
    // The explorer passes (uri, selectedUris); scripts may pass (uri, undefined, { compare }).
    vscode.commands.registerCommand('weightlens.evaluatePerplexity', (uri?: unknown, selected?: unknown, opts?: EvalOptions) =>
      evalCommand(
        {
          version,
          activeInspector: () => inspector.activeUri,
          showInPanels: (m, t) => {
            inspector.showPerplexity(m, t);
            ggufInspector.showPerplexity(m, t);
          },
          annotateRun: (o, l) => stats.annotate(o, l),
        },
        uri,
        selected,
        opts,
      ),
    ),
    vscode.commands.registerCommand('weightlens.compareWeights', (uri?: unknown, selected?: unknown) =>
      compareCommand(
        { stats, activeInspector: () => inspector.activeUri, showInInspector: (a, b, c) => inspector.showComparison(a, b, c) },
        uri,
        selected,
      ),
    ),
    vscode.commands.registerCommand('weightlens.planEwq', (arg?: unknown) => planCommand(inspector, arg)),
    vscode.commands.registerCommand('weightlens.quantizeWithPlan', async (arg?: unknown) => {
      const uri = await resolveModel(arg, inspector.activeUri, vscode.l10n.t('Quantize with the EWQ plan'));
      const plan = uri && inspector.plansFor(uri)?.current;
      if (!uri || !plan) {
        void vscode.window.showInformationMessage(
          vscode.l10n.t('Weightlens: open the model in the inspector and make a plan first ("Plan Mixed Precision (EWQ)…").'),
        );
        return undefined;
      }
      return quantizeCommand(deps, 'dareq', uri, { useSettings: true, plan });
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('weightlens')) return;
      const problems = [...readRunConfig(configReader).problems, ...readEwqConfig(configReader).problems];
      for (const p of problems) logLine(`settings: ${p}`);
      if (problems.length) void vscode.window.showWarningMessage(vscode.l10n.t('Weightlens: {0}', problems[0]));
      inspector.settingsChanged();
    }),
  );
  logLine(`Weightlens ${version} activated`);
}

export function deactivate(): void {
  // Subscriptions are disposed by VS Code; worker threads end with their runs.
}
