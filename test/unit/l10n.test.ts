/** Strings shown to users go through vscode.l10n / @vscode/l10n, and the bundles hold every one of them. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { inspectorHtml } from '../../src/extension/inspector/html';

const ROOT = path.resolve(__dirname, '../../..');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir)).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(path.join(ROOT, p)).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('l10n/bundle.l10n.json is what @vscode/l10n-dev exports from the sources today', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'wl-l10n-'));
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/@vscode/l10n-dev/dist/cli.js'), 'export', '--outDir', out, './src', './webview'],
    {
      cwd: ROOT,
      stdio: 'pipe',
    },
  );
  const exported = JSON.parse(readFileSync(path.join(out, 'bundle.l10n.json'), 'utf8'));
  const committed = JSON.parse(read('l10n/bundle.l10n.json'));
  assert.deepEqual(committed, exported, 'run: npx @vscode/l10n-dev export --outDir ./l10n ./src ./webview');
  assert.ok(Object.keys(exported).length > 150, 'the UI strings are extracted');
});

test("package.json's titles and descriptions come from package.nls.json, each key used", () => {
  const pkg = read('package.json');
  const nls = JSON.parse(read('package.nls.json')) as Record<string, string>;
  const used = [...pkg.matchAll(/"%([\w.-]+)%"/g)].map((m) => m[1]);
  for (const k of used) assert.ok(k in nls, `${k} is in package.nls.json`);
  assert.deepEqual(new Set(Object.keys(nls)), new Set(used), 'no unused key');
  const contributes = JSON.parse(pkg).contributes;
  for (const c of contributes.commands) assert.match(c.title, /^%.+%$/, `${c.command} title`);
  for (const [k, p] of Object.entries(contributes.configuration.properties) as [string, { description: string }][])
    assert.match(p.description, /^%.+%$/, `${k} description`);
  assert.equal(JSON.parse(pkg).l10n, './l10n');
});

test('user-facing calls in the extension and the webview take translated strings, not literals', () => {
  const raw = [
    /show(Information|Warning|Error)Message\(\s*['`"]/,
    /\b(title|placeHolder|prompt|placeholder): ['`"][A-Za-z]/,
    /'aria-label': ['`"][A-Za-z]/,
    /\bel\('(h1|h2|h3|p|label|button)', \{[^}]*\}, ['`"][A-Za-z]/,
  ];
  for (const f of [...sources('src/extension'), ...sources('webview')]) {
    const lines = read(f).split('\n');
    lines.forEach((line, i) => {
      for (const re of raw) assert.doesNotMatch(line, re, `${f}:${i + 1} shows an untranslated string`);
    });
  }
});

test('the webview gets the bundle as a data block no string can break out of', () => {
  const html = inspectorHtml({
    cspSource: 'vscode-resource:',
    nonce: 'n',
    script: 's.js',
    css: 'c.css',
    codicons: 'i.css',
    title: 'm',
    l10n: { 'Where quantization hurts': 'Où la quantification fait mal </script><script>alert(1)</script>' },
    lang: 'fr',
  });
  const block = /<script type="application\/json" id="weightlens-l10n" nonce="n">(.*?)<\/script>/s.exec(html);
  assert.ok(block);
  assert.equal(JSON.parse(block[1])['Where quantization hurts'], 'Où la quantification fait mal </script><script>alert(1)</script>');
  assert.equal((html.match(/<script/g) ?? []).length, 2, 'only the data block and the bundle');
  assert.match(html, /<html lang="fr">/);
});
