/**
 * The extension host's one pool of worker threads, shared by the overview grids, the details and
 * the quantize runs of every panel (src/node/pool.ts): sized to the cores less one (the host's own
 * thread does the file reads and the overview's size pass), at least two — on a 2-core machine one
 * worker left the host idle while the overview waited on the math — so work running together never
 * oversubscribes by more than one thread.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { JobPool } from '../node/pool';

let pool: JobPool | undefined;

export function sharedJobPool(context: vscode.ExtensionContext): JobPool {
  if (!pool) {
    const threads = Math.max(2, os.availableParallelism() - 1);
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
