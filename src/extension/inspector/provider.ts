/**
 * The inspector: a read-only custom editor for `*.safetensors` (and, on request, sharded models'
 * `*.safetensors.index.json`). It opens from the header alone — instant even for a 100 GB sharded
 * model — and answers the webview's typed requests (tensor rows as transferred ArrayBuffers).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { oneLine } from '../../core/errors';
import { inspectModel } from '../../core/inspect';
import { readRows } from '../../core/model';
import { openModel, type OpenModel } from '../../node/open-model';
import type { FastEwqModel } from '../../core/ewq/fast';
import {
  MAX_READ_BYTES,
  parseWebviewMessage,
  type GpuDetailJob,
  type HostMessage,
  type PanelSettings,
  type WebviewRequest,
} from '../../shared/protocol';
import { SETTING_SPECS, type ComputeBackend, type EwqConfig, type RunConfig } from '../config';
import { resolveSettings } from '../../core/quant/settings';
import { tileGrid } from '../../core/quant/tiles';
import { logLine, showError } from '../log';
import { inspectorHtml, makeNonce } from './html';
import { DocumentPlans } from './plans';
import { comparisonDetail, comparisonOverview, presentQuantized, type PanelComparison } from './compare-view';
import { openCheckpoint } from '../../node/checkpoint';
import type { InspectSummary } from '../../core/inspect';
import type { Comparison } from '../../node/compare';
import { OverviewComputer } from './overview';
import { computeChannel, computeDetail } from './detail';
import { PanelSearchBackend } from './panel-search';
import { gpuRuns } from '../../compute/backend';
import { JobPool } from '../../node/pool';
import { CancelledError } from '../../core/errors';
import { matrixView, selectTargets } from '../../core/select';
import { isQuantizableFloat } from '../../core/dtypes';
import * as os from 'node:os';

export const INSPECTOR_VIEW_TYPE = 'weightlens.inspector';
/**
 * The same inspector offered ("Open With…") on a sharded model's index JSON. A second viewType and
 * not a second selector entry under the first: VS Code keeps one contribution per viewType and logs
 * "Custom editor with id … already registered" for the other, and the priorities differ (a JSON file
 * still opens as text by default).
 */
export const INSPECTOR_INDEX_VIEW_TYPE = 'weightlens.inspectorIndex';

class InspectorDocument implements vscode.CustomDocument {
  constructor(
    readonly uri: vscode.Uri,
    readonly opened: OpenModel,
    /** compressed-tensors modules (`<m>.weight`): type, logical shape and bytes of their parts. */
    readonly packed: ReadonlyMap<string, { rows: number; cols: number; type: string; bytes: number }> = new Map(),
  ) {}

  get summary(): InspectSummary {
    return presentQuantized(inspectModel(this.opened.model), this.packed);
  }

  dispose(): void {
    void this.opened.close();
  }
}

export interface InspectorConfig {
  panel: () => PanelSettings;
  run: () => RunConfig;
  ewq: () => EwqConfig;
  fastModel: () => FastEwqModel | undefined;
  backend: () => { backend: ComputeBackend; problem?: string };
}

/** What the provider keeps per open panel. */
interface PanelEntry {
  panel: vscode.WebviewPanel;
  doc: InspectorDocument;
  plans: DocumentPlans;
  overview: OverviewComputer;
  detailRun?: AbortController;
  /** The webview's WebGPU adapter, once it has looked (undefined: not reported yet). */
  gpu?: { available: boolean; adapter: string; fallback: boolean };
  /** Quantize runs borrowing this panel's GPU. */
  searches: Set<PanelSearchBackend>;
  /** A comparison shown instead of the quantization (Compare Weights → Show in the inspector). */
  compare?: PanelComparison;
  /** The webview said it is ready (its init was sent). */
  ready?: boolean;
}

export class InspectorProvider implements vscode.CustomReadonlyEditorProvider<InspectorDocument> {
  private readonly panels = new Set<PanelEntry>();
  private active: InspectorDocument | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly config: InspectorConfig,
  ) {}

  /** The EWQ plans of an open inspector of `uri`, if one is open. */
  plansFor(uri: vscode.Uri): DocumentPlans | undefined {
    for (const e of this.panels) if (e.doc.uri.toString() === uri.toString()) return e.plans;
    return undefined;
  }

  /**
   * Shows a comparison of `uri` (A) with another checkpoint in A's inspector, opening it if needed:
   * the grid coloured by the comparison's statistics, the detail of a tensor as |A - B|.
   */
  async showComparison(uri: vscode.Uri, other: string, comparison: Comparison): Promise<void> {
    let entry = [...this.panels].find((e) => e.doc.uri.toString() === uri.toString());
    if (!entry) {
      await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR_VIEW_TYPE);
      for (let i = 0; !entry && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        entry = [...this.panels].find((e) => e.doc.uri.toString() === uri.toString() && e.ready);
      }
      if (!entry) throw new Error(`the inspector of ${path.basename(uri.fsPath)} did not open`);
    } else entry.panel.reveal();
    entry.compare = { other, name: path.basename(other), comparison };
    const { layout, cells } = comparisonOverview(entry.doc.opened.model, comparison);
    await entry.panel.webview.postMessage({
      type: 'overview',
      key: `compare:${other}`,
      layout,
      cells,
      compareWith: path.basename(other),
    } satisfies HostMessage);
  }

  /** Shows a perplexity result in the open inspectors of these models. */
  showPerplexity(models: readonly vscode.Uri[], text: string): void {
    const wanted = new Set(models.map((u) => u.toString()));
    for (const e of this.panels)
      if (wanted.has(e.doc.uri.toString())) void e.panel.webview.postMessage({ type: 'perplexity', text } satisfies HostMessage);
  }

  /** The model of the inspector the user looked at last (for palette commands). */
  get activeUri(): vscode.Uri | undefined {
    return this.active?.uri;
  }

  async openCustomDocument(uri: vscode.Uri): Promise<InspectorDocument> {
    if (uri.scheme !== 'file') throw new Error(`Weightlens reads local files only (got ${uri.scheme}:)`);
    const t0 = Date.now();
    let opened: OpenModel;
    try {
      opened = await openModel(uri.fsPath);
    } catch (e) {
      // A corrupt file gets the one-line cause as a notification, not just a blank editor.
      void showError(oneLine(e));
      throw e;
    }
    logLine(`inspector: opened ${uri.fsPath} from its header in ${Date.now() - t0} ms (${opened.model.tensors.length} tensors)`);
    // A compressed-tensors checkpoint: its packed modules are shown with their quantized types.
    const packed = new Map<string, { rows: number; cols: number; type: string; bytes: number }>();
    if (opened.model.tensors.some((t) => t.name.endsWith('.weight_packed'))) {
      const cp = await openCheckpoint(uri.fsPath).catch((e) => void logLine(`inspector: ${oneLine(e)}`));
      if (cp) {
        for (const t of cp.tensors.values()) if (/^int\d/.test(t.type)) packed.set(t.name, t);
        await cp.close();
      }
    }
    return new InspectorDocument(uri, opened, packed);
  }

  async resolveCustomEditor(doc: InspectorDocument, panel: vscode.WebviewPanel): Promise<void> {
    const media = vscode.Uri.joinPath(this.context.extensionUri, 'media');
    const dist = vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview');
    const webview = panel.webview;
    webview.options = { enableScripts: true, localResourceRoots: [media, dist] };
    const nonce = makeNonce();
    webview.html = inspectorHtml({
      cspSource: webview.cspSource,
      nonce,
      script: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'inspector.js')).toString(),
      css: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.css')).toString(),
      codicons: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'codicon.css')).toString(),
      title: path.basename(doc.uri.fsPath),
    });
    const post = (m: HostMessage) => webview.postMessage(m);
    const plans = new DocumentPlans(doc.opened, this.config.fastModel(), (m) => void post(m));
    const run = this.config.run();
    const overview = new OverviewComputer(
      doc.opened,
      selectTargets(doc.opened.model.tensors, { include: run.include, exclude: run.exclude }),
      vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'worker.js').fsPath,
      Math.max(1, os.availableParallelism() - 1),
      (m) => void post(m),
    );
    const entry: PanelEntry = { panel, doc, plans, overview, searches: new Set() };
    this.panels.add(entry);
    this.active = doc;
    panel.onDidChangeViewState(() => {
      if (panel.active) this.active = doc;
    });
    panel.onDidDispose(() => {
      plans.dispose();
      overview.dispose();
      entry.detailRun?.abort();
      for (const b of entry.searches) b.dispose();
      this.panels.delete(entry);
      if (this.active === doc) this.active = undefined;
    });
    webview.onDidReceiveMessage(async (raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (!msg) {
        logLine('inspector: ignored an invalid message from the webview');
        return;
      }
      if (msg.type === 'endCompare') {
        entry.compare = undefined;
        overview.start(this.config.run().settings);
      } else if (msg.type === 'ready') {
        entry.ready = true;
        await post({ type: 'init', file: doc.uri.fsPath, summary: doc.summary, settings: this.config.panel() });
        overview.start(this.config.run().settings);
        await plans.refresh(this.config.ewq(), this.config.run()).catch((e) => logLine(`FastEWQ: ${oneLine(e)}`));
      } else if (msg.type === 'gpu') {
        entry.gpu = { available: msg.available, adapter: msg.adapter, fallback: msg.fallback };
        logLine(`inspector: ${msg.available ? `WebGPU in the panel: ${msg.adapter}` : `no WebGPU in the panel (${msg.adapter})`}`);
      } else if (msg.type === 'gpuSearchResult') {
        for (const b of entry.searches) if (b.owns(msg.id)) b.receive(msg);
      } else if (msg.type === 'detailGpuDone') {
        if (msg.ok) logLine(`inspector: ${msg.tensor} computed on WebGPU in ${msg.seconds.toFixed(2)} s`);
        else {
          logLine(`inspector: WebGPU failed on ${msg.tensor} (${msg.error}); computing it on the CPU`);
          await this.detail(doc, entry, { type: 'detail', tensor: msg.tensor }, post, `WebGPU failed: ${msg.error}`);
        }
      } else if (msg.type === 'prioritize') {
        overview.prioritize(msg.row);
      } else if (msg.type === 'setSetting') {
        // Untrusted: validated against the same rules as settings.json before anything is written.
        const spec = SETTING_SPECS.find((x) => x.key === msg.key);
        if (!spec || !spec.check(msg.value)) {
          await post({ type: 'detailStatus', text: `weightlens.${msg.key} must be ${spec?.expect ?? 'valid'}` });
          return;
        }
        await vscode.workspace
          .getConfiguration('weightlens')
          .update(
            msg.key,
            msg.value,
            vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global,
          );
      } else if (msg.type === 'detail' || msg.type === 'channel') {
        await this.detail(doc, entry, msg, post);
      } else if (msg.type === 'command') {
        const id = msg.command === 'openSettings' ? 'workbench.action.openSettings' : `weightlens.${msg.command}`;
        await vscode.commands.executeCommand(id, msg.command === 'openSettings' ? '@ext:weightlens.weightlens' : doc.uri);
      } else {
        await this.answer(doc, msg, post);
      }
    });
  }

  /**
   * A tensor's detail, or one channel of it; a newer request cancels the older one. The detail runs
   * in the webview on WebGPU when the backend setting and the webview's adapter allow it (the
   * webview pulls the rows it needs), else on the CPU workers here; `gpuFailed` forces the CPU.
   */
  private async detail(
    doc: InspectorDocument,
    entry: PanelEntry,
    msg: { type: 'detail'; tensor: string } | { type: 'channel'; tensor: string; row: number; group: number },
    post: (m: HostMessage) => Thenable<boolean>,
    gpuFailed?: string,
  ): Promise<void> {
    if (entry.compare) {
      if (msg.type === 'channel') {
        await post({ type: 'detailStatus', text: "The loss curve is a quantization's: go back to the quantization view for it." });
        return;
      }
      entry.detailRun?.abort();
      const ctl = new AbortController();
      entry.detailRun = ctl;
      try {
        await post({ type: 'detailStatus', text: `Comparing ${msg.tensor} with ${entry.compare.name}…` });
        const detail = await comparisonDetail(doc.uri.fsPath, entry.compare, msg.tensor, ctl.signal);
        if (!ctl.signal.aborted) await post({ type: 'detail', detail });
      } catch (e) {
        if (!(e instanceof CancelledError)) await post({ type: 'detailStatus', text: `${msg.tensor}: ${oneLine(e)}` });
      }
      return;
    }
    const run = this.config.run();
    const t = doc.opened.model.tensors.find((x) => x.name === msg.tensor);
    const view = t && isQuantizableFloat(t.dtype) && t.numel > 0 ? matrixView(t) : undefined;
    if (!t || !view) {
      await post({ type: 'detailStatus', text: `${msg.tensor}: not a float tensor that can be quantized` });
      return;
    }
    try {
      if (msg.type === 'channel') {
        if (msg.row >= view.rows) throw new Error(`channel ${msg.row} is outside ${view.rows} channels`);
        await post({ type: 'channel', channel: await computeChannel(doc.opened, t, view, run.settings, msg.row, msg.group) });
        return;
      }
      entry.detailRun?.abort();
      const { backend, problem } = this.config.backend();
      if (problem) logLine(problem);
      const gpu = entry.gpu;
      const gpuFits = gpuRuns(run.settings, t.dtype) && !view.transposed && t.shape.length >= 2;
      // `auto` takes a real GPU only: on a software adapter (SwiftShader) a large tensor would take
      // far longer than on the CPU workers. `webgpu` takes any adapter.
      const gpuAllowed = backend === 'webgpu' || (backend === 'auto' && !gpu?.fallback);
      if (!gpuFailed && gpuAllowed && gpu?.available && gpuFits) {
        const grid = tileGrid(view.rows, view.cols);
        const rowBytes = t.byteLength / view.rows;
        const job: GpuDetailJob = {
          tensor: t.name,
          shape: [...t.shape],
          dtype: t.dtype as GpuDetailJob['dtype'],
          rows: view.rows,
          cols: view.cols,
          grid: { rows: grid.rows, cols: grid.cols, rowStep: grid.rowStep, colStep: grid.colStep },
          // 4 MB blocks: the webview's share of the work between two GPU round trips (decoding,
          // the near-tie groups' contenders scored in float64) stays short, so the panel never freezes.
          blockRows: Math.max(1, Math.floor(Math.min(MAX_READ_BYTES, 4 << 20) / rowBytes)),
          main: run.settings,
          rtn:
            run.settings.method === 'rtn'
              ? undefined
              : resolveSettings({ method: 'rtn', bits: run.settings.bits, groupSize: run.settings.groupSize }),
        };
        await post({ type: 'detailStatus', text: `Computing the detail of ${t.name} on WebGPU (${gpu.adapter})…` });
        await post({ type: 'detailGpu', job });
        return;
      }
      let why: string | undefined;
      if (gpuFailed) why = gpuFailed;
      else if (backend === 'webgpu' && !gpu?.available) why = `no WebGPU adapter in this panel${gpu ? ` (${gpu.adapter})` : ' yet'}`;
      else if (backend === 'webgpu' && !gpuFits)
        why = `WebGPU does not run a ${t.dtype}${view.transposed ? ' transposed' : ''} tensor here`;
      else if (backend === 'auto' && gpu?.available && gpu.fallback)
        why = `the panel's adapter (${gpu.adapter}) is a software one, slower than the CPU; set weightlens.compute.backend to webgpu to use it anyway`;
      const ctl = new AbortController();
      entry.detailRun = ctl;
      const threads = Math.max(1, os.availableParallelism() - 1);
      await post({ type: 'detailStatus', text: `Computing the detail of ${t.name} on the CPU…` });
      const pool = new JobPool(threads, vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'worker.js').fsPath);
      try {
        const detail = {
          ...(await computeDetail(
            doc.opened,
            pool,
            t,
            view,
            run.settings,
            ctl.signal,
            `CPU (${threads} worker thread${threads > 1 ? 's' : ''})`,
          )),
          backendNote: why,
        };
        if (!ctl.signal.aborted) await post({ type: 'detail', detail });
      } finally {
        await pool.close();
      }
    } catch (e) {
      if (!(e instanceof CancelledError)) await post({ type: 'detailStatus', text: `${msg.tensor}: ${oneLine(e)}` });
    }
  }

  /**
   * A WebGPU scale search on an open panel's GPU for a quantize run (the panel of that model first),
   * or why there is none. `auto` skips software adapters (SwiftShader is slower than the CPU
   * workers); `webgpu` takes any. Release the backend with `release` when the run ends.
   */
  gpuSearch(model: vscode.Uri, backend: ComputeBackend): { search?: PanelSearchBackend; release: () => void; why: string } {
    const none = (why: string) => ({ release: () => {}, why });
    if (backend === 'cpu') return none('weightlens.compute.backend is cpu');
    const entries = [...this.panels].sort(
      (a, b) => Number(b.doc.uri.toString() === model.toString()) - Number(a.doc.uri.toString() === model.toString()),
    );
    const withGpu = entries.filter((e) => e.gpu?.available);
    if (!withGpu.length)
      return none(entries.length ? 'no WebGPU adapter in the open inspector panel' : 'no inspector panel is open to lend its GPU');
    const usable = withGpu.find((e) => backend === 'webgpu' || !e.gpu!.fallback);
    if (!usable)
      return none(
        `the panel's adapter (${withGpu[0].gpu!.adapter}) is a software one, slower than the CPU; set weightlens.compute.backend to webgpu to use it anyway`,
      );
    const post = (m: HostMessage) => usable.panel.webview.postMessage(m);
    const search = new PanelSearchBackend(post, `${usable.gpu!.adapter} (the inspector panel's WebGPU)`);
    usable.searches.add(search);
    return {
      search,
      release: () => {
        search.dispose();
        usable.searches.delete(search);
      },
      why: '',
    };
  }

  /** Pushes changed settings to every open inspector at once. */
  settingsChanged(): void {
    const settings = this.config.panel();
    for (const entry of this.panels) {
      const { panel, plans, overview } = entry;
      // New settings bring the quantization view back.
      entry.compare = undefined;
      void panel.webview.postMessage({ type: 'settings', settings } satisfies HostMessage);
      overview.start(this.config.run().settings);
      void plans.refresh(this.config.ewq(), this.config.run()).catch((e) => logLine(`EWQ: ${oneLine(e)}`));
    }
  }

  private async answer(doc: InspectorDocument, req: WebviewRequest, post: (m: HostMessage) => Thenable<boolean>): Promise<void> {
    try {
      if (req.method === 'summary') {
        await post({ type: 'response', id: req.id, ok: true, result: doc.summary });
        return;
      }
      const t = doc.opened.model.tensors.find((x) => x.name === req.params.tensor);
      if (!t) throw new Error(`no tensor named ${JSON.stringify(req.params.tensor)}`);
      const rows = t.shape.length === 0 ? 1 : t.shape[0];
      const rowBytes = rows === 0 ? 0 : t.byteLength / rows;
      if (req.params.count * rowBytes > MAX_READ_BYTES)
        throw new Error(`request of ${req.params.count} rows is over the ${MAX_READ_BYTES >> 20} MB limit of one read`);
      const bytes = await readRows(doc.opened.source(t.file), t, req.params.start, req.params.count);
      const buffer =
        bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
          ? (bytes.buffer as ArrayBuffer)
          : (bytes.slice().buffer as ArrayBuffer);
      await post({ type: 'response', id: req.id, ok: true, result: { dtype: t.dtype, shape: t.shape }, bytes: buffer });
    } catch (e) {
      await post({ type: 'response', id: req.id, ok: false, error: oneLine(e) });
    }
  }
}
