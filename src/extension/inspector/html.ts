/**
 * The inspector webview's HTML: a strict Content-Security-Policy (nothing remote, nothing inline
 * without the nonce), scripts and styles only from the extension through asWebviewUri. Pure, so the
 * policy is unit-tested.
 */
export interface WebviewResources {
  /** webview.cspSource */
  cspSource: string;
  nonce: string;
  script: string;
  css: string;
  codicons: string;
  title: string;
  /** The extension's translations for the display language (vscode.l10n.bundle); none for English. */
  l10n?: Record<string, string>;
  /** The page's language (vscode.env.language). */
  lang?: string;
  /** "Reading the header…", translated. */
  loading?: string;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function inspectorHtml(r: WebviewResources): string {
  const csp = [
    "default-src 'none'",
    `img-src ${r.cspSource} data:`,
    `style-src ${r.cspSource} 'nonce-${r.nonce}'`,
    `font-src ${r.cspSource}`,
    `script-src 'nonce-${r.nonce}'`,
    // The scales workers (webview/inspector/scales-pool.ts): their script is fetched from the
    // extension and started from a blob: URL.
    `connect-src ${r.cspSource}`,
    'worker-src blob:',
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="${escape(r.lang ?? 'en')}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${escape(r.codicons)}" id="vscode-codicon-stylesheet" nonce="${r.nonce}">
<link rel="stylesheet" href="${escape(r.css)}" nonce="${r.nonce}">
<title>${escape(r.title)}</title>
</head>
<body>
<main id="app" aria-busy="true"><p class="loading">${escape(r.loading ?? 'Reading the header…')}</p></main>
<script type="application/json" id="weightlens-l10n" nonce="${r.nonce}">${l10nJson(r.l10n)}</script>
<script nonce="${r.nonce}" src="${escape(r.script)}"></script>
</body>
</html>`;
}

/**
 * The translations as a JSON data block the webview reads before it renders (a data block is not
 * executed: the CSP's script-src does not apply). `<` is escaped so no string can close the tag.
 */
function l10nJson(bundle: Record<string, string> | undefined): string {
  return JSON.stringify(bundle ?? {}).replace(/</g, '\\u003c');
}

export function makeNonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 32; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}
