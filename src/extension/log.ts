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
  const pick = await vscode.window.showErrorMessage(`Weightlens: ${message}`, 'Show log');
  if (pick === 'Show log') log().show(true);
}

/** A command's failure: a cancel is an information message, anything else a one-line error. */
export async function reportFailure(e: unknown, cancelled: string): Promise<void> {
  const { CancelledError, oneLine } = await import('../core/errors');
  if (e instanceof CancelledError) {
    logLine(cancelled);
    void vscode.window.showInformationMessage(`Weightlens: ${cancelled}`);
    return;
  }
  await showError(oneLine(e));
}
