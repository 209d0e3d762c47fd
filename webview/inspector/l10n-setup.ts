/**
 * The page's translations: the host puts the extension's bundle for VS Code's display language
 * into the page (src/extension/inspector/html.ts); @vscode/l10n then translates every l10n.t call
 * of the webview. Imported first by main.ts, so labels built when modules load are translated too.
 */
import * as l10n from '@vscode/l10n';

const data = document.getElementById('weightlens-l10n')?.textContent;
if (data) {
  try {
    const contents = JSON.parse(data) as Record<string, string>;
    if (Object.keys(contents).length) l10n.config({ contents });
  } catch {
    // A bundle that does not parse leaves the page in English rather than blank.
  }
}
