/**
 * "Weightlens: Compare Weights…": two checkpoints of any format (two selected in the explorer, or
 * one and the other picked among the models beside it), compared tensor by tensor with cancellable
 * progress; the result opens as the statistics diff view (A left, B and the errors right).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { compareCheckpoints, type Comparison } from '../node/compare';
import { logLine, reportFailure } from './log';
import { EVAL_GLOB, resolveModel } from './quantize-command';
import { renderCompareDocuments } from './stats-document';
import type { StatsDocumentProvider } from './stats-provider';

export interface CompareDeps {
  stats: StatsDocumentProvider;
  activeInspector: () => vscode.Uri | undefined;
  /** Shows the comparison in A's inspector (grid and detail of B against A). */
  showInInspector: (a: vscode.Uri, b: string, c: Comparison) => Promise<void>;
}

const isWeights = (p: string) => /\.(safetensors|gguf)$/.test(p) || /\.safetensors\.index\.json$/.test(p);

/** Folders beside `model` that hold a checkpoint (compressed-tensors and sharded outputs). */
async function checkpointFolders(dir: string): Promise<vscode.Uri[]> {
  const out: vscode.Uri[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue;
    const names = await fsp.readdir(path.join(dir, e.name)).catch(() => [] as string[]);
    if (names.some((n) => n === 'model.safetensors' || n.endsWith('.safetensors.index.json')))
      out.push(vscode.Uri.file(path.join(dir, e.name)));
  }
  return out;
}

async function pickOther(a: vscode.Uri): Promise<vscode.Uri | undefined> {
  const dir = path.dirname(a.fsPath);
  const files = await vscode.workspace.findFiles(
    new vscode.RelativePattern(vscode.Uri.file(dir), EVAL_GLOB.replace('**/', '')),
    undefined,
    200,
  );
  const all = [...files, ...(await checkpointFolders(dir))]
    .filter((u) => u.fsPath !== a.fsPath)
    .sort((x, y) => x.fsPath.localeCompare(y.fsPath));
  const pick = await vscode.window.showQuickPick(
    all.map((u) => ({
      label: path.basename(u.fsPath),
      description: u.fsPath.endsWith('.gguf') ? 'GGUF' : isWeights(u.fsPath) ? 'safetensors' : vscode.l10n.t('folder'),
      uri: u,
    })),
    {
      title: vscode.l10n.t('Weightlens: compare {0} (A, the reference) with…', path.basename(a.fsPath)),
      placeHolder: vscode.l10n.t('B: a quantized copy, another checkpoint…'),
    },
  );
  return pick?.uri;
}

export async function compareCommand(deps: CompareDeps, arg?: unknown, selected?: unknown): Promise<Comparison | undefined> {
  const multi = Array.isArray(selected) ? selected.filter((u): u is vscode.Uri => u instanceof vscode.Uri) : [];
  let a: vscode.Uri | undefined;
  let b: vscode.Uri | undefined;
  if (multi.length === 2) {
    // The reference first: a plain safetensors model before a quantized copy.
    const rank = (u: vscode.Uri) => (u.fsPath.endsWith('.gguf') ? 1 : isWeights(u.fsPath) ? 0 : 1);
    [a, b] = [...multi].sort((x, y) => rank(x) - rank(y));
  } else {
    a = await resolveModel(arg, deps.activeInspector(), vscode.l10n.t('Compare Weights'), EVAL_GLOB);
    if (!a) return undefined;
    b = await pickOther(a);
    if (!b) return undefined;
  }
  const [nameA, nameB] = [path.basename(a.fsPath), path.basename(b.fsPath)];
  logLine(`compare: A ${a.fsPath}, B ${b.fsPath}`);
  try {
    const c = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t('Weightlens: comparing {0} with {1}', nameA, nameB),
        cancellable: true,
      },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let last = 0;
        return compareCheckpoints(a!.fsPath, b!.fsPath, {
          signal: abort.signal,
          onProgress: (done, total, tensor) => {
            const pct = Math.floor((100 * done) / total);
            if (pct === last) return;
            progress.report({ increment: pct - last, message: `${pct}% — ${tensor}` });
            last = pct;
          },
        });
      },
    );
    await deps.stats.showDiff(
      renderCompareDocuments(c),
      { left: nameA, right: nameB },
      vscode.l10n.t('Weightlens: {0} ↔ {1} (weights compared)', nameA, nameB),
    );
    const s = c.summary;
    logLine(
      `compare: ${s.tensors} tensors, SQNR ${s.sqnrDb}, MSE ${s.mse}; only in A ${c.onlyInA.length}, only in B ${c.onlyInB.length}, other shapes ${c.shapeMismatch.length}`,
    );
    const inspectable = /\.safetensors$|\.safetensors\.index\.json$/.test(a.fsPath);
    const aUri = a;
    void vscode.window
      .showInformationMessage(
        vscode.l10n.t(
          'Weightlens: {0} against {1}: SQNR {2} over {3} tensors, {4} bits/weight.',
          nameB,
          nameA,
          s.sqnrDb === null ? 'inf' : `${s.sqnrDb.toFixed(2)} dB`,
          s.tensors,
          s.bitsB.toFixed(2),
        ),
        ...(inspectable ? [vscode.l10n.t('Show in the inspector')] : []),
      )
      .then((pick) =>
        pick ? deps.showInInspector(aUri, b!.fsPath, c).catch((e) => reportFailure(e, vscode.l10n.t('cancelled'))) : undefined,
      );
    return c;
  } catch (e) {
    await reportFailure(e, vscode.l10n.t('comparison cancelled.'));
    return undefined;
  }
}
