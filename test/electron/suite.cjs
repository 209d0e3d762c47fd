// Runs inside VS Code's extension host (loaded by @vscode/test-electron): drives the commands through
// the vscode API, non-interactively, and checks what they wrote.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vscode = require('vscode');

exports.run = async function run() {
  let passed = 0;
  let failed = 0;
  const step = async (name, fn) => {
    try {
      await fn();
      passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}\n  ${e && e.stack}`);
    }
  };
  const ws = vscode.workspace.workspaceFolders[0].uri.fsPath;
  const model = vscode.Uri.file(path.join(ws, 'stories260K.safetensors'));
  await vscode.extensions.getExtension('weightlens.weightlens').activate();

  await step('quantize with round-to-nearest writes the output, the report and opens the diff view', async () => {
    const result = await vscode.commands.executeCommand('weightlens.quantizeRtn', model, { useSettings: true });
    assert.ok(result, 'the command returned its result');
    assert.ok(fs.existsSync(result.outputPath));
    assert.ok(fs.existsSync(result.reportPath));
    const diff = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label.includes('(statistics)'));
    assert.ok(diff, 'a statistics diff tab is open');
  });

  await step('an existing output is refused for scripted runs without force', async () => {
    const again = await vscode.commands.executeCommand('weightlens.quantizeRtn', model, { useSettings: true });
    assert.equal(again, undefined);
  });

  await step('the inspector opens a model from its header', async () => {
    await vscode.commands.executeCommand('vscode.openWith', model, 'weightlens.inspector');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab && tab.input instanceof vscode.TabInputCustom && tab.input.viewType === 'weightlens.inspector');
  });

  console.log(`${passed} passed, ${failed} failed`);
  if (failed) throw new Error(`${failed} electron test(s) failed`);
};
