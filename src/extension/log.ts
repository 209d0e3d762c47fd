/** The "Weightlens" output channel: each run's settings, timings and errors. */
import * as vscode from 'vscode';

let channel: vscode.OutputChannel | undefined;

export function log(): vscode.OutputChannel {
  channel ??= vscode.window.createOutputChannel('Weightlens');
  return channel;
}

export function logLine(text: string): void {
  log().appendLine(`[${new Date().toISOString()}] ${text}`);
}

/** One-line error notification with a "Show log" button. */
export async function showError(message: string): Promise<void> {
  logLine(`error: ${message}`);
  const showLog = vscode.l10n.t('Show log');
  const pick = await vscode.window.showErrorMessage(vscode.l10n.t('Weightlens: {0}', message), showLog);
  if (pick === showLog) log().show(true);
}

/** A command's failure: a cancel is an information message, anything else a one-line error. */
export async function reportFailure(e: unknown, cancelled: string): Promise<void> {
  const { CancelledError, oneLine } = await import('../core/errors');
  if (e instanceof CancelledError) {
    logLine(cancelled);
    void vscode.window.showInformationMessage(vscode.l10n.t('Weightlens: {0}', cancelled));
    return;
  }
  await showError(oneLine(e));
}
