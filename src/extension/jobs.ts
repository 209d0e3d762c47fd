/**
 * The extension host's one pool of worker threads, shared by the overview grids, the details and
 * the quantize runs of every panel (src/node/pool.ts): sized to the cores less one (the host's own
 * thread keeps the UI and the file reads going), so work running together never oversubscribes.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { JobPool } from '../node/pool';

let pool: JobPool | undefined;

export function sharedJobPool(context: vscode.ExtensionContext): JobPool {
  if (!pool) {
    const threads = Math.max(1, os.availableParallelism() - 1);
    const created = new JobPool(threads, vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath);
    pool = created;
    context.subscriptions.push({
      dispose: () => {
        if (pool === created) pool = undefined;
        void created.close();
      },
    });
  }
  return pool;
}

/** "CPU (3 worker threads)", for the panel. */
export function describePool(p: JobPool): string {
  return `CPU (${p.threads} worker thread${p.threads > 1 ? 's' : ''})`;
}
