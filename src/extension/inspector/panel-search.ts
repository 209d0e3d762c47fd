/**
 * The quantize command's WebGPU: DARE-Q's scale search of each block of rows runs on an open
 * inspector panel's GPU (the webview), the rest on the CPU workers — the same split as the CLI's
 * `--backend webgpu`, so the output is byte-identical to the CPU's. The webview's answer is
 * untrusted input: it is checked against the request before use. If the panel closes or its GPU
 * fails, the run searches the remaining blocks on the CPU (said in the log and the report).
 */
import { checkChoices, gpuRuns, gpuSearches, type ScaleSearchBackend, type SearchChoices } from '../../compute/backend';
import { oneLine } from '../../core/errors';
import { groupsPerRow } from '../../core/quant/matrix';
import type { QuantSettings } from '../../core/quant/settings';
import { replyFromWebview } from '../../shared/protocol';
import type { WebviewChannel } from './webview-panel';

export class PanelSearchBackend implements ScaleSearchBackend {
  readonly name = 'webgpu' as const;

  constructor(
    private readonly channel: WebviewChannel,
    readonly description: string,
  ) {}

  async search(values: Float32Array, rows: number, cols: number, settings: QuantSettings): Promise<SearchChoices | undefined> {
    if (!gpuSearches(settings) || !gpuRuns(settings, 'F32')) return undefined;
    const groups = rows * groupsPerRow(cols, settings.groupSize);
    const copy = values.slice().buffer as ArrayBuffer;
    // A rejection (panel closed, GPU lost) reaches the run (streamTensor), which records it and
    // searches this block and the rest on the CPU.
    const raw = await this.channel.request('gpuSearch', { rows, cols, settings, values: copy }, [copy]).catch((e: unknown) => {
      throw new Error(`WebGPU in the panel failed: ${oneLine(e)}`);
    });
    const answer = replyFromWebview('gpuSearch', raw);
    const problem = answer ? checkChoices(answer, groups, settings.grid) : 'not the arrays of a search';
    if (problem || !answer) throw new Error(`the panel's search answer was malformed (${problem})`);
    return answer;
  }

  /** Nothing to release: the requests end with the panel's channel. */
  dispose(): void {}
}
