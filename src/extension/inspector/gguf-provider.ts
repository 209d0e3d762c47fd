/**
 * The inspector on a `.gguf` file, from its header alone: metadata, every tensor with its ggml type,
 * shape and bytes, totals by type, transformer blocks. The same webview as for safetensors, told
 * `headerOnly`: nothing is dequantized or computed, so no overview, detail, plan or tuning.
 */
import * as vscode from 'vscode';
import { oneLine } from '../../core/errors';
import type { InspectSummary } from '../../core/inspect';
import { inspectGgufFile } from '../../node/checkpoint';
import type { PanelSettings } from '../../shared/protocol';
import { DisposableStore } from '../disposables';
import { logLine, showError } from '../log';
import { openInspectorWebview, type WebviewChannel } from './webview-panel';

export const GGUF_VIEW_TYPE = 'weightlens.ggufInspector';

class GgufDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    readonly summary: InspectSummary,
  ) {}
  dispose(): void {}
}

export class GgufInspectorProvider implements vscode.CustomReadonlyEditorProvider<GgufDocument> {
  private readonly panels = new Map<string, Set<WebviewChannel>>();

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly settings: () => PanelSettings,
  ) {}

  async openCustomDocument(uri: vscode.Uri): Promise<GgufDocument> {
    if (uri.scheme !== 'file') throw new Error(`Weightlens reads local files only (got ${uri.scheme}:)`);
    const t0 = Date.now();
    try {
      const summary = await inspectGgufFile(uri.fsPath);
      logLine(`inspector: opened ${uri.fsPath} (GGUF) from its header in ${Date.now() - t0} ms (${summary.tensors.length} tensors)`);
      return new GgufDocument(uri, summary);
    } catch (e) {
      void showError(oneLine(e));
      throw e;
    }
  }

  /** Shows a line (a perplexity) in the open panels of these files. */
  showPerplexity(models: readonly vscode.Uri[], text: string): void {
    for (const m of models) for (const channel of this.panels.get(m.toString()) ?? []) channel.notify('perplexity', { text });
  }

  async resolveCustomEditor(doc: GgufDocument, panel: vscode.WebviewPanel): Promise<void> {
    const store = new DisposableStore();
    const key = doc.uri.toString();
    const channel = openInspectorWebview(
      this.context,
      panel,
      doc.uri,
      {
        events: {
          ready: () => channel.notify('init', { file: doc.uri.fsPath, summary: doc.summary, settings: this.settings(), headerOnly: true }),
        },
        requests: {
          readRows: () => Promise.reject(new Error('GGUF tensors are shown from the header; their values are not decoded here')),
          setSetting: () => Promise.reject(new Error('a GGUF file is shown from its header: nothing to tune')),
        },
      },
      store,
    );
    const open = this.panels.get(key) ?? new Set();
    this.panels.set(key, open.add(channel));
    store.onDispose(() => open.delete(channel));
    panel.onDidDispose(() => store.dispose());
  }
}
