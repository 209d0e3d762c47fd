/**
 * "Weightlens: Evaluate Perplexity (llama.cpp)…": a model (safetensors or GGUF), and the copy to
 * compare it with (two selected in the explorer, or picked among the models beside it), scored by
 * llama.cpp on the same tokens with cancellable progress. The result goes to a notification, the
 * log, the open inspectors of either model, and the header of the diff view of the run that wrote
 * the compared copy.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { evaluateModels, type EvalResult } from '../node/evaluate';
import { logLine, reportFailure } from './log';
import { EVAL_GLOB, resolveModel } from './quantize-command';

export interface EvalDeps {
  version: string;
  activeInspector: () => vscode.Uri | undefined;
  /** Shows a result line in the open inspectors of these models. */
  showInPanels: (models: readonly vscode.Uri[], text: string) => void;
  /** Adds a result line to the diff views of runs that wrote `output`. */
  annotateRun: (output: string, line: string) => void;
}

/** Scripted use: `{ compare: uri }` skips the pick; `{ compare: null }` evaluates one model. */
export interface EvalOptions {
  compare?: vscode.Uri | null;
}

const isModel = (p: string) => /\.(safetensors|gguf)$/.test(p) || /\.safetensors\.index\.json$/.test(p);

async function pickComparison(model: vscode.Uri): Promise<vscode.Uri | null | undefined> {
  const dir = vscode.Uri.file(path.dirname(model.fsPath));
  const found = await vscode.workspace.findFiles(new vscode.RelativePattern(dir, EVAL_GLOB.replace('**/', '')), undefined, 200);
  const others = found.filter((u) => u.fsPath !== model.fsPath).sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  const none = {
    label: `$(circle-slash) ${vscode.l10n.t('No comparison')}`,
    description: vscode.l10n.t('only {0}', path.basename(model.fsPath)),
    uri: null as vscode.Uri | null,
  };
  const items = [
    ...others.map((u) => ({
      label: path.basename(u.fsPath),
      description: vscode.l10n.t('compare on the same tokens'),
      uri: u as vscode.Uri | null,
    })),
    none,
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: vscode.l10n.t('Weightlens: perplexity of {0}', path.basename(model.fsPath)),
    placeHolder: vscode.l10n.t('Compare with (a quantized copy, say)…'),
  });
  return pick === undefined ? undefined : pick.uri;
}

export function describeEval(r: EvalResult): string {
  const [a, b] = r.results;
  const one = (x: typeof a) => `${path.basename(x.model)} ${x.perplexity.toFixed(4)}`;
  if (!b) return `perplexity ${one(a)} (${a.tokens} tokens)`;
  return `perplexity ${one(a)}, ${one(b)} (${r.ratio! >= 1 ? '+' : ''}${((r.ratio! - 1) * 100).toFixed(2)}%), same ${a.tokens} tokens`;
}

export async function evalCommand(
  deps: EvalDeps,
  arg?: unknown,
  selected?: unknown,
  options?: EvalOptions,
): Promise<EvalResult | undefined> {
  const multi = Array.isArray(selected) ? selected.filter((u): u is vscode.Uri => u instanceof vscode.Uri && isModel(u.fsPath)) : [];
  let model: vscode.Uri | undefined;
  let other: vscode.Uri | null | undefined;
  if (multi.length === 2) [model, other] = multi;
  else {
    model = await resolveModel(arg, deps.activeInspector(), vscode.l10n.t('Evaluate Perplexity'), EVAL_GLOB);
    if (!model) return undefined;
    other = options && 'compare' in options ? options.compare : await pickComparison(model);
    if (other === undefined) return undefined;
  }
  const models = other ? [model, other] : [model];
  const cfg = vscode.workspace.getConfiguration('weightlens');
  const textSetting = cfg.get<string>('eval.textFile') || undefined;
  const folder = vscode.workspace.getWorkspaceFolder(model)?.uri.fsPath ?? path.dirname(model.fsPath);
  const textFile = textSetting ? path.resolve(folder, textSetting) : undefined;
  const ctx = cfg.get<number>('eval.contextSize') ?? 512;
  logLine(`eval: ${models.map((m) => m.fsPath).join(' vs ')}, text ${textFile ?? '(bundled stories)'}, windows of ${ctx}`);
  try {
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t('Weightlens: perplexity in llama.cpp — {0}', models.map((m) => path.basename(m.fsPath)).join(' vs ')),
        cancellable: true,
      },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let last = 0;
        return evaluateModels({
          models: models.map((m) => m.fsPath),
          textFile,
          ctx,
          threads: 1,
          signal: abort.signal,
          version: deps.version,
          llamaModulePath: cfg.get<string>('llamaCpp.modulePath') || undefined,
          onProgress: (m, done, total) => {
            const pct = Math.floor((100 * done) / total);
            if (pct === last) return;
            progress.report({ message: `${path.basename(m)}: ${pct}%` });
            last = pct;
          },
        });
      },
    );
    const text = describeEval(result);
    for (const r of result.results)
      logLine(
        `eval: ${r.model}: perplexity ${r.perplexity} (nll ${r.nll}), ${r.tokens} tokens in ${r.windows} window(s) of ${r.ctx}, ${r.seconds.toFixed(1)} s`,
      );
    deps.showInPanels(models, vscode.l10n.t('Perplexity in llama.cpp: {0}', text));
    if (other)
      deps.annotateRun(
        other.fsPath,
        `# perplexity in llama.cpp (${result.results[0].tokens} tokens of ${path.basename(result.text)}): ${path.basename(model.fsPath)} ${result.results[0].perplexity.toFixed(4)} -> ${path.basename(other.fsPath)} ${result.results[1].perplexity.toFixed(4)} (${result.ratio! >= 1 ? '+' : ''}${((result.ratio! - 1) * 100).toFixed(2)}%)`,
      );
    void vscode.window.showInformationMessage(vscode.l10n.t('Weightlens: {0}.', text));
    return result;
  } catch (e) {
    await reportFailure(e, vscode.l10n.t('evaluation cancelled.'));
    return undefined;
  }
}
