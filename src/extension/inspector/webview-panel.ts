/**
 * What both inspectors (safetensors and GGUF) do with their webview panel: the page (strict CSP,
 * resources from the extension only) and the one message channel to it, validated on the way in.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Channel, type Handlers } from '../../shared/channel';
import { validateFromWebview, type HostToWebview, type WebviewToHost } from '../../shared/protocol';
import type { DisposableStore } from '../disposables';
import { logLine } from '../log';
import { inspectorHtml, makeNonce } from './html';

export type WebviewChannel = Channel<HostToWebview, WebviewToHost>;

/** Loads the inspector page into `panel` and connects a channel; both end with `store`. */
export function openInspectorWebview(
  context: vscode.ExtensionContext,
  panel: vscode.WebviewPanel,
  file: vscode.Uri,
  handlers: Handlers<WebviewToHost>,
  store: DisposableStore,
): WebviewChannel {
  const media = vscode.Uri.joinPath(context.extensionUri, 'media');
  const dist = vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview');
  const webview = panel.webview;
  webview.options = { enableScripts: true, localResourceRoots: [media, dist] };
  const channel: WebviewChannel = new Channel(
    // VS Code moves the ArrayBuffers of a message to the webview itself: no transfer list there.
    { post: (m) => webview.postMessage(m) },
    handlers,
    { validate: validateFromWebview, onDropped: (why) => logLine(`inspector: ignored a message from the webview (${why})`) },
  );
  store.add(webview.onDidReceiveMessage((raw: unknown) => channel.receive(raw)));
  store.onDispose(() => channel.dispose(new Error('the inspector panel was closed')));
  webview.html = inspectorHtml({
    cspSource: webview.cspSource,
    nonce: makeNonce(),
    script: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'inspector.js')).toString(),
    css: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.css')).toString(),
    codicons: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'codicon.css')).toString(),
    title: path.basename(file.fsPath),
    l10n: vscode.l10n.bundle,
    lang: vscode.env.language,
    loading: vscode.l10n.t('Reading the header…'),
  });
  return channel;
}
