/**
 * The inspector on a `.gguf` file, from its header alone: metadata, every tensor with its ggml type,
 * shape and bytes, totals by type, transformer blocks. The same webview as for safetensors, told
 * `headerOnly`: nothing is dequantized or computed, so no overview, detail, plan or tuning.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { oneLine } from '../../core/errors';
import type { InspectSummary } from '../../core/inspect';
import { inspectGgufFile } from '../../node/checkpoint';
import { parseWebviewMessage, type HostMessage, type PanelSettings } from '../../shared/protocol';
import { logLine, showError } from '../log';
import { inspectorHtml, makeNonce } from './html';

export const GGUF_VIEW_TYPE = 'weightlens.ggufInspector';

class GgufDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    readonly summary: InspectSummary,
  ) {}
  dispose(): void {}
}

export class GgufInspectorProvider implements vscode.CustomReadonlyEditorProvider<GgufDocument> {
  private readonly panels = new Map<string, vscode.WebviewPanel[]>();

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
    for (const m of models)
      for (const p of this.panels.get(m.toString()) ?? []) void p.webview.postMessage({ type: 'perplexity', text } satisfies HostMessage);
  }

  async resolveCustomEditor(doc: GgufDocument, panel: vscode.WebviewPanel): Promise<void> {
    const media = vscode.Uri.joinPath(this.context.extensionUri, 'media');
    const dist = vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview');
    const webview = panel.webview;
    webview.options = { enableScripts: true, localResourceRoots: [media, dist] };
    webview.html = inspectorHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      script: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'inspector.js')).toString(),
      css: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.css')).toString(),
      codicons: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'codicon.css')).toString(),
      title: path.basename(doc.uri.fsPath),
    });
    const key = doc.uri.toString();
    this.panels.set(key, [...(this.panels.get(key) ?? []), panel]);
    panel.onDidDispose(() =>
      this.panels.set(
        key,
        (this.panels.get(key) ?? []).filter((p) => p !== panel),
      ),
    );
    const post = (m: HostMessage) => webview.postMessage(m);
    webview.onDidReceiveMessage(async (raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (!msg) return;
      if (msg.type === 'ready')
        await post({ type: 'init', file: doc.uri.fsPath, summary: doc.summary, settings: this.settings(), headerOnly: true });
      else if (msg.type === 'request')
        await post({
          type: 'response',
          id: msg.id,
          ok: false,
          error: 'GGUF tensors are shown from the header; their values are not decoded here',
        });
    });
  }
}
