/**
 * "Weightlens: Quantize (DARE-Q)…" and "… with round-to-nearest": pick (settings first, so the common
 * case is two keystrokes), write beside the input on worker threads with cancellable progress, then
 * open the diff view of error statistics. Never over the input; an existing output is only replaced
 * when the user says so.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ScaleSearchBackend } from '../compute/backend';
import { CancelledError, oneLine } from '../core/errors';
import { isIndexPath } from '../core/model';
import { settingsFromPlan } from '../core/ewq/apply';
import type { Plan } from '../core/ewq/plan';
import type { Method } from '../core/quant/settings';
import { defaultOutputPath, runTag } from '../node/output-paths';
import { quantize, type QuantizeResult } from '../node/quantize';
import { describeSettings, readRunConfig, type ConfigReader } from './config';
import { sharedJobPool } from './jobs';
import { logLine, showError } from './log';
import { quantizeChoices } from './quick-pick';
import { renderStatsDocuments } from './stats-document';
import type { StatsDocumentProvider } from './stats-provider';

export const MODEL_GLOB = '**/{*.safetensors,*.safetensors.index.json}';
/** What Evaluate Perplexity takes: the same, and GGUF files. */
export const EVAL_GLOB = '**/{*.safetensors,*.safetensors.index.json,*.gguf}';

export const configReader: ConfigReader = (key) => {
  const i = vscode.workspace.getConfiguration('weightlens').inspect(key);
  return i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
};

export interface QuantizeDeps {
  context: vscode.ExtensionContext;
  stats: StatsDocumentProvider;
  activeInspector: () => vscode.Uri | undefined;
  /** An open panel's GPU for DARE-Q's scale search, or why not (see InspectorProvider.gpuSearch). */
  gpuSearch: (model: vscode.Uri) => { search?: ScaleSearchBackend; why: string };
  version: string;
}

/** The model a command acts on: the explorer's selection, the active inspector's, or one the user picks. */
export async function resolveModel(
  arg: unknown,
  active: vscode.Uri | undefined,
  purpose: string,
  glob = MODEL_GLOB,
): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  if (active) return active;
  const found = await vscode.workspace.findFiles(glob, '**/node_modules/**', 500);
  if (found.length === 1) return found[0];
  if (found.length > 1) {
    const items = found
      .map((uri) => ({ label: path.basename(uri.fsPath), description: vscode.workspace.asRelativePath(uri), uri }))
      .sort((a, b) => a.description.localeCompare(b.description));
    const pick = await vscode.window.showQuickPick(items, {
      title: vscode.l10n.t('Weightlens: {0}', purpose),
      placeHolder: vscode.l10n.t('Which weights file?'),
      matchOnDescription: true,
    });
    return pick?.uri;
  }
  const chosen = await vscode.window.showOpenDialog({
    title: vscode.l10n.t('Weightlens: {0}', purpose),
    canSelectMany: false,
    filters: { Weights: glob === MODEL_GLOB ? ['safetensors', 'json'] : ['safetensors', 'json', 'gguf'] },
  });
  return chosen?.[0];
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Options for scripted use (keybindings, tasks, tests): `{ useSettings: true }` runs with the
 * configured settings without the quick pick; an existing output is then an error unless `force`.
 */
export interface QuantizeRunOptions {
  useSettings: true;
  force?: boolean;
  /** Mixed precision: each block at its planned bit width (raw blocks copied). */
  plan?: Plan;
}

export function isRunOptions(v: unknown): v is QuantizeRunOptions {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && (v as { useSettings?: unknown }).useSettings === true;
}

export async function quantizeCommand(
  deps: QuantizeDeps,
  method: Method,
  arg?: unknown,
  options?: QuantizeRunOptions,
): Promise<QuantizeResult | undefined> {
  const title = method === 'rtn' ? vscode.l10n.t('Quantize with round-to-nearest') : vscode.l10n.t('Quantize (DARE-Q)');
  const uri = await resolveModel(arg, deps.activeInspector(), title);
  if (!uri) return undefined;
  if (uri.scheme !== 'file') {
    await showError(vscode.l10n.t('{0}: Weightlens quantizes local files only', uri.toString()));
    return undefined;
  }
  const input = uri.fsPath;
  const base = readRunConfig(configReader, { method });
  if (base.problems.length) {
    for (const p of base.problems) logLine(`settings: ${p}`);
    void vscode.window
      .showWarningMessage(vscode.l10n.t('Weightlens: {0}', base.problems[0]), vscode.l10n.t('Open Settings'))
      .then((b) => b && vscode.commands.executeCommand('workbench.action.openSettings', 'weightlens'));
  }
  const choice = options
    ? quantizeChoices(base)[0]
    : await vscode.window.showQuickPick(quantizeChoices(base), {
        title: vscode.l10n.t('Weightlens: {0} — {1}', title, path.basename(input)),
        placeHolder: vscode.l10n.t('Enter quantizes with your settings'),
      });
  if (!choice) return undefined;
  if (choice.openSettings) {
    await vscode.commands.executeCommand('workbench.action.openSettings', '@ext:weightlens.weightlens');
    return undefined;
  }
  const format = choice.format ?? readRunConfig(configReader).format;
  // GGUF blocks hold 32 weights, whatever the group-size setting says.
  const run = readRunConfig(configReader, { method, ...choice.overrides, ...(format === 'gguf' ? { groupSize: 32 } : {}) });
  const plan = options?.plan;
  const settingsFor = plan ? settingsFromPlan(plan.blocks, run.settings) : undefined;
  const tag = runTag(run.settings, { plan: plan !== undefined });
  const outPath = defaultOutputPath(input, run.settings, format, isIndexPath(input), tag);
  let force = options?.force ?? false;
  if (!options && (await exists(outPath))) {
    const answer = await vscode.window.showWarningMessage(
      vscode.l10n.t('{0} already exists. Replace it?', path.basename(outPath)),
      { modal: true },
      vscode.l10n.t('Replace'),
    );
    if (answer !== vscode.l10n.t('Replace')) return undefined;
    force = true;
  }
  const what = plan ? `EWQ plan (${plan.blocks.map((b) => b.precision).join(' ')}), ${format}` : describeSettings(run.settings, format);
  logLine(
    `quantize ${input} -> ${outPath}: ${what}; settings ${JSON.stringify(run.settings)}; include ${run.include ?? '(default)'}; exclude ${run.exclude ?? '(none)'}`,
  );
  const started = Date.now();
  // DARE-Q's search on an open panel's GPU when the backend setting allows; the CPU workers do the rest.
  // (An EWQ plan's tensors are searched with the run's search mode, whatever its method.)
  const noSearch =
    run.settings.method === 'rtn' && !settingsFor
      ? 'round-to-nearest has no search'
      : run.settings.search !== 'exhaustive'
        ? 'the coarse-to-fine search runs on the CPU'
        : undefined;
  const gpu: { search?: ScaleSearchBackend; why: string } = noSearch ? { why: noSearch } : deps.gpuSearch(uri);
  const where = gpu.search
    ? vscode.l10n.t('WebGPU search on {0} + CPU worker threads', gpu.search.description)
    : vscode.l10n.t('CPU, worker threads');
  logLine(`quantize: ${gpu.search ? where : `on the CPU (${gpu.why})`}`);
  try {
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t('Weightlens: {0} — {1} ({2})', path.basename(input), what, where),
        cancellable: true,
      },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let reported = 0;
        let lastAt = 0;
        return quantize({
          input,
          settings: run.settings,
          format,
          include: run.include,
          exclude: run.exclude,
          force,
          settingsFor,
          tag,
          pool: sharedJobPool(deps.context),
          signal: abort.signal,
          searchBackend: gpu.search,
          version: deps.version,
          onProgress: (p) => {
            const now = Date.now();
            const pct = Math.floor(p.fraction * 100);
            if (now - lastAt < 100 && pct !== 100) return;
            lastAt = now;
            progress.report({ increment: pct - reported, message: `${pct}% — ${p.tensor}` });
            reported = pct;
          },
        });
      },
    );
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (result.report.settings.gpuFailure)
      logLine(`WebGPU stopped (${result.report.settings.gpuFailure}); the rest was searched on the CPU, with the same result`);
    logLine(
      `done in ${secs} s: ${result.outputPath} (${result.report.summary.tensorsQuantized} tensors quantized), report ${result.reportPath}`,
    );
    await showResult(deps, result, input);
    return result;
  } catch (e) {
    if (e instanceof CancelledError) {
      logLine(`cancelled after ${((Date.now() - started) / 1000).toFixed(1)} s; no output was written`);
      void vscode.window.showInformationMessage(vscode.l10n.t('Weightlens: quantization cancelled; no output was written.'));
      return undefined;
    }
    await showError(oneLine(e));
    return undefined;
  }
}

async function showResult(deps: QuantizeDeps, result: QuantizeResult, input: string): Promise<void> {
  const inputName = path.basename(input);
  const outputName = path.basename(result.outputPath);
  await deps.stats.showDiff(
    renderStatsDocuments(result.report, inputName, outputName),
    { left: inputName, right: outputName },
    vscode.l10n.t('Weightlens: {0} ↔ {1} (statistics)', inputName, outputName),
    result.outputPath,
  );
  const sq = result.report.tensors.map((t) => t.sqnrDb).filter((x): x is number => x !== null);
  const mean = sq.length ? `${(sq.reduce((a, b) => a + b, 0) / sq.length).toFixed(2)} dB` : 'n/a';
  const openReport = vscode.l10n.t('Open report');
  const reveal = vscode.l10n.t('Reveal in Explorer');
  void vscode.window
    .showInformationMessage(vscode.l10n.t('Weightlens: wrote {0} (mean SQNR {1}).', outputName, mean), openReport, reveal)
    .then(async (b) => {
      if (b === openReport) await vscode.window.showTextDocument(vscode.Uri.file(result.reportPath));
      if (b === reveal) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.outputPath));
    });
}
