/** Read-only virtual documents (`weightlens-stats:`) holding the two sides of each run's diff. */
import * as vscode from 'vscode';

export const STATS_SCHEME = 'weightlens-stats';

export class StatsDocumentProvider implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private next = 1;

  /** Stores both sides of a run; returns their URIs. */
  add(original: string, quantized: string, inputName: string, outputName: string): { left: vscode.Uri; right: vscode.Uri } {
    const run = this.next++;
    const left = vscode.Uri.from({ scheme: STATS_SCHEME, path: `/run-${run}/original/${inputName}.stats` });
    const right = vscode.Uri.from({ scheme: STATS_SCHEME, path: `/run-${run}/quantized/${outputName}.stats` });
    this.docs.set(left.toString(), original);
    this.docs.set(right.toString(), quantized);
    return { left, right };
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? 'This statistics document belongs to an earlier session; run the quantization again.\n';
  }

  dispose(): void {
    this.changed.dispose();
  }
}
