/** Read-only virtual documents (`weightlens-stats:`) holding the two sides of each run's diff. */
import * as vscode from 'vscode';

export const STATS_SCHEME = 'weightlens-stats';

export class StatsDocumentProvider implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private next = 1;
  /** The diff documents of each output path, for results that arrive later (perplexity). */
  private readonly byOutput = new Map<string, vscode.Uri[]>();

  /** Stores both sides of a run; returns their URIs. */
  add(
    original: string,
    quantized: string,
    inputName: string,
    outputName: string,
    outputPath?: string,
  ): { left: vscode.Uri; right: vscode.Uri } {
    const run = this.next++;
    const left = vscode.Uri.from({ scheme: STATS_SCHEME, path: `/run-${run}/original/${inputName}.stats` });
    const right = vscode.Uri.from({ scheme: STATS_SCHEME, path: `/run-${run}/quantized/${outputName}.stats` });
    this.docs.set(left.toString(), original);
    this.docs.set(right.toString(), quantized);
    if (outputPath) this.byOutput.set(outputPath, [...(this.byOutput.get(outputPath) ?? []), left, right]);
    return { left, right };
  }

  /** Stores both sides (as `add`) and opens them side by side in a diff editor titled `title`. */
  async showDiff(
    docs: { original: string; quantized: string },
    names: { left: string; right: string },
    title: string,
    outputPath?: string,
  ): Promise<void> {
    const { left, right } = this.add(docs.original, docs.quantized, names.left, names.right, outputPath);
    await vscode.commands.executeCommand('vscode.diff', left, right, title, { preview: false });
  }

  /** Puts `line` under the header of both sides of every run that wrote `outputPath`. */
  annotate(outputPath: string, line: string): void {
    for (const uri of this.byOutput.get(outputPath) ?? []) {
      const text = this.docs.get(uri.toString());
      if (text === undefined) continue;
      const [head, ...rest] = text.split('\n');
      const kept = rest.filter((l) => !l.startsWith('# perplexity in llama.cpp'));
      this.docs.set(uri.toString(), [head, line, ...kept].join('\n'));
      this.changed.fire(uri);
    }
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? 'This statistics document belongs to an earlier session; run the quantization again.\n';
  }

  dispose(): void {
    this.changed.dispose();
  }
}
