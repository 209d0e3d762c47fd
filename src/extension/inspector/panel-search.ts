/**
 * The quantize command's WebGPU: DARE-Q's scale search of each block of rows runs on an open
 * inspector panel's GPU (the webview), the rest on the CPU workers — the same split as the CLI's
 * `--backend webgpu`, so the output is byte-identical to the CPU's. The webview's answer is
 * untrusted input: it is checked against the request before use. If the panel closes or its GPU
 * fails, the run searches the remaining blocks on the CPU (said in the log and the report).
 */
import { checkChoices, GPU_MAX_BINS, type ScaleSearchBackend, type SearchChoices } from '../../compute/backend';
import { groupsPerRow } from '../../core/quant/matrix';
import type { QuantSettings } from '../../core/quant/settings';
import type { HostMessage, WebviewMessage } from '../../shared/protocol';

type Result = Extract<WebviewMessage, { type: 'gpuSearchResult' }>;

let nextId = 1;

export class PanelSearchBackend implements ScaleSearchBackend {
  readonly name = 'webgpu' as const;
  private readonly pending = new Map<
    number,
    { resolve: (c: SearchChoices) => void; reject: (e: Error) => void; groups: number; grid: number }
  >();

  constructor(
    private readonly post: (m: HostMessage) => Thenable<boolean>,
    readonly description: string,
  ) {}

  async search(values: Float32Array, rows: number, cols: number, settings: QuantSettings): Promise<SearchChoices | undefined> {
    if (settings.method !== 'dareq' || settings.bins > GPU_MAX_BINS) return undefined;
    const id = nextId++;
    const groups = rows * groupsPerRow(cols, settings.groupSize);
    try {
      const answer = new Promise<SearchChoices>((resolve, reject) =>
        this.pending.set(id, { resolve, reject, groups, grid: settings.grid }),
      );
      const copy = values.slice().buffer as ArrayBuffer;
      if (!(await this.post({ type: 'gpuSearch', id, rows, cols, settings, values: copy }))) throw new Error('the inspector panel is gone');
      return await answer;
    } catch (e) {
      // The run (streamTensor) records the failure and searches this block and the rest on the CPU.
      this.pending.delete(id);
      throw e;
    }
  }

  /** Whether this backend asked for that id (the provider routes answers by id). */
  owns(id: number): boolean {
    return this.pending.has(id);
  }

  receive(m: Result): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (!m.ok) {
      p.reject(new Error(`WebGPU in the panel failed: ${m.error}`));
      return;
    }
    const problem = checkChoices(m, p.groups, p.grid);
    if (problem) p.reject(new Error(`the panel's search answer was malformed (${problem})`));
    else p.resolve(m);
  }

  dispose(): void {
    for (const p of this.pending.values()) p.reject(new Error('the inspector panel was closed'));
    this.pending.clear();
  }
}
