// `npm run test:electron`: the extension in a downloaded VS Code (Electron) through
// @vscode/test-electron, for machines that can reach update.code.visualstudio.com. It cannot run on
// this project's offline machines; CI uses the code-server suite (test/e2e) instead.
import { runTests } from '@vscode/test-electron';
import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const ws = mkdtempSync(path.join(os.tmpdir(), 'wl-electron-'));
cpSync(path.join(root, 'samples', 'stories260K', 'model.safetensors'), path.join(ws, 'stories260K.safetensors'));
try {
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(root, 'test', 'electron', 'suite.cjs'),
    launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust'],
  });
} catch (e) {
  console.error(`error: ${e?.message ?? e}`);
  process.exit(1);
}
