/**
 * The inspector: a read-only custom editor for `*.safetensors` (and, on request, sharded models'
 * `*.safetensors.index.json`). It opens from the header alone — instant even for a 100 GB sharded
 * model — and answers its webview over one typed channel (src/shared/protocol.ts): every event and
 * request of the panel is handled in `handlers`, and everything a panel owns ends with its store.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { gpuRuns } from '../../compute/backend';
import { isQuantizableFloat } from '../../core/dtypes';
import { CancelledError, oneLine } from '../../core/errors';
import type { FastEwqModel } from '../../core/ewq/fast';
import { inspectModel, type InspectSummary } from '../../core/inspect';
import { readRows, type ModelTensor } from '../../core/model';
import type { QuantSettings } from '../../core/quant/settings';
import { matrixView, selectTargets, type MatrixView } from '../../core/select';
import { openCheckpoint } from '../../node/checkpoint';
import type { Comparison } from '../../node/compare';
import { openModel, type OpenModel } from '../../node/open-model';
import { PRIORITY, type JobPool } from '../../node/pool';
import type { Handlers } from '../../shared/channel';
import {
  MAX_READ_BYTES,
  replyFromWebview,
  type CellStats,
  type PanelCommand,
  type PanelSettings,
  type TunableSetting,
  type WebviewToHost,
} from '../../shared/protocol';
import { SETTING_SPECS, type ComputeBackend, type EwqConfig, type RunConfig } from '../config';
import { DisposableStore } from '../disposables';
import { describePool } from '../jobs';
import { logLine, showError } from '../log';
import { comparisonDetail, comparisonOverview, presentQuantized, type PanelComparison } from './compare-view';
import { computeChannel, computeDetail, gpuDetailJob } from './detail';
import { gpuRoute, type PanelGpuInfo } from './gpu-route';
import { OverviewComputer } from './overview';
import { PanelSearchBackend } from './panel-search';
import { DocumentPlans } from './plans';
import { openInspectorWebview, type WebviewChannel } from './webview-panel';

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
  channel: WebviewChannel;
  /** Everything the panel owns (channel, plans, overview, runs): disposed with the panel. */
  store: DisposableStore;
  plans: DocumentPlans;
  overview: OverviewComputer;
  /** The detail being computed; a newer one aborts it. */
  detailRun?: AbortController;
  /** The webview's WebGPU adapter, once it has looked (undefined: not reported yet). */
  gpu?: PanelGpuInfo;
  /** A comparison shown instead of the quantization (Compare Weights → Show in the inspector). */
  compare?: PanelComparison;
  /** The webview said it is ready (its init was sent). */
  ready?: boolean;
}

/** A tensor the detail can show: a float matrix, with how its rows are read. */
type DetailTarget = { t: ModelTensor; view: MatrixView };

export class InspectorProvider implements vscode.CustomReadonlyEditorProvider<InspectorDocument> {
  private readonly panels = new Set<PanelEntry>();
  private active: InspectorDocument | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly config: InspectorConfig,
    /** The extension host's shared worker pool (src/extension/jobs.ts). */
    private readonly pool: () => JobPool,
  ) {}

  /** The EWQ plans of an open inspector of `uri`, if one is open. */
  plansFor(uri: vscode.Uri): DocumentPlans | undefined {
    return this.entryFor(uri)?.plans;
  }

  private entryFor(uri: vscode.Uri, ready = false): PanelEntry | undefined {
    return [...this.panels].find((e) => e.doc.uri.toString() === uri.toString() && (!ready || e.ready));
  }

  /**
   * Shows a comparison of `uri` (A) with another checkpoint in A's inspector, opening it if needed:
   * the grid coloured by the comparison's statistics, the detail of a tensor as |A - B|.
   */
  async showComparison(uri: vscode.Uri, other: string, comparison: Comparison): Promise<void> {
    let entry = this.entryFor(uri);
    if (!entry) {
      await vscode.commands.executeCommand('vscode.openWith', uri, INSPECTOR_VIEW_TYPE);
      for (let i = 0; !entry && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        entry = this.entryFor(uri, true);
      }
      if (!entry) throw new Error(`the inspector of ${path.basename(uri.fsPath)} did not open`);
    } else entry.panel.reveal();
    entry.compare = { other, name: path.basename(other), comparison };
    const { layout, cells } = comparisonOverview(entry.doc.opened.model, comparison);
    entry.channel.notify('overview', { key: `compare:${other}`, layout, cells, compareWith: path.basename(other) });
  }

  /** Shows a perplexity result in the open inspectors of these models. */
  showPerplexity(models: readonly vscode.Uri[], text: string): void {
    const wanted = new Set(models.map((u) => u.toString()));
    for (const e of this.panels) if (wanted.has(e.doc.uri.toString())) e.channel.notify('perplexity', { text });
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
    const store = new DisposableStore();
    const entry = { panel, doc, store } as PanelEntry;
    entry.channel = openInspectorWebview(this.context, panel, doc.uri, this.handlers(entry), store);
    const notify = entry.channel.notify.bind(entry.channel);
    entry.plans = store.add(new DocumentPlans(doc.opened, this.config.fastModel(), notify));
    const run = this.config.run();
    const targets = selectTargets(doc.opened.model.tensors, { include: run.include, exclude: run.exclude });
    entry.overview = store.add(
      new OverviewComputer(
        doc.opened,
        targets,
        this.pool(),
        () => panel.visible,
        notify,
        {},
        (t, view, settings) => this.cellOnGpu(entry, t, view, settings),
      ),
    );
    store.onDispose(() => entry.detailRun?.abort());
    this.panels.add(entry);
    store.onDispose(() => this.panels.delete(entry));
    this.active = doc;
    store.onDispose(() => {
      if (this.active === doc) this.active = undefined;
    });
    store.add(
      panel.onDidChangeViewState(() => {
        if (panel.active) this.active = doc;
      }),
    );
    panel.onDidDispose(() => store.dispose());
  }

  /** Every message a panel's webview sends, in one place: its events, and its requests' replies. */
  private handlers(entry: PanelEntry): Handlers<WebviewToHost> {
    return {
      events: {
        ready: () => void this.onReady(entry),
        gpu: (gpu) => {
          entry.gpu = gpu;
          logLine(`inspector: ${gpu.available ? `WebGPU in the panel: ${gpu.adapter}` : `no WebGPU in the panel (${gpu.adapter})`}`);
        },
        prioritize: ({ row }) => entry.overview.prioritize(row),
        endCompare: () => {
          entry.compare = undefined;
          entry.overview.start(this.config.run().settings);
        },
        detail: ({ tensor }) => void this.showDetail(entry, tensor),
        channel: (c) => void this.showChannel(entry, c.tensor, c.row, c.group),
        command: ({ command }) => void this.runCommand(entry, command),
      },
      requests: {
        readRows: (p) => this.readRows(entry.doc, p.tensor, p.start, p.count),
        setSetting: ({ key, value }) => this.setSetting(key, value),
      },
    };
  }

  private async onReady(entry: PanelEntry): Promise<void> {
    entry.ready = true;
    entry.channel.notify('init', { file: entry.doc.uri.fsPath, summary: entry.doc.summary, settings: this.config.panel() });
    entry.overview.start(this.config.run().settings);
    await entry.plans.refresh(this.config.ewq(), this.config.run()).catch((e) => logLine(`FastEWQ: ${oneLine(e)}`));
  }

  private async runCommand(entry: PanelEntry, command: PanelCommand): Promise<void> {
    if (command === 'openSettings') await vscode.commands.executeCommand('workbench.action.openSettings', '@ext:weightlens.weightlens');
    else await vscode.commands.executeCommand(`weightlens.${command}`, entry.doc.uri);
  }

  /** A tuning control's value, checked against the same rules as settings.json before it is written. */
  private async setSetting(key: TunableSetting, value: number | string): Promise<void> {
    const spec = SETTING_SPECS.find((x) => x.key === key);
    if (!spec || !spec.check(value)) throw new Error(vscode.l10n.t('weightlens.{0} must be {1}', key, spec?.expect ?? 'valid'));
    const target = vscode.workspace.workspaceFolders ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await vscode.workspace.getConfiguration('weightlens').update(key, value, target);
  }

  /** Starts a detail run, cancelling the one before it. */
  private newDetailRun(entry: PanelEntry): AbortController {
    entry.detailRun?.abort();
    entry.detailRun = new AbortController();
    return entry.detailRun;
  }

  /** The tensor as a float matrix the detail can show, or why not (told to the panel). */
  private detailTarget(entry: PanelEntry, tensor: string): DetailTarget | undefined {
    const t = entry.doc.opened.model.tensors.find((x) => x.name === tensor);
    const view = t && isQuantizableFloat(t.dtype) && t.numel > 0 ? matrixView(t) : undefined;
    if (t && view) return { t, view };
    entry.channel.notify('detailStatus', { text: vscode.l10n.t('{0}: not a float tensor that can be quantized', tensor) });
    return undefined;
  }

  /**
   * A tensor's detail: of the comparison when one is shown; else on the panel's WebGPU when the
   * backend setting and the adapter allow it (the webview pulls the rows it needs), else — or when
   * the GPU fails — on the shared CPU workers here.
   */
  private async showDetail(entry: PanelEntry, tensor: string): Promise<void> {
    if (entry.compare) return this.comparisonDetail(entry, entry.compare, tensor);
    const target = this.detailTarget(entry, tensor);
    if (!target) return;
    const settings = this.config.run().settings;
    const ctl = this.newDetailRun(entry);
    const { backend, problem } = this.config.backend();
    if (problem) logLine(problem);
    const route = gpuRoute(backend, entry.gpu);
    const fits = gpuRuns(settings, target.t.dtype) && !target.view.transposed && target.t.shape.length >= 2;
    if (route.use && fits) {
      entry.channel.notify('detailStatus', {
        text: vscode.l10n.t('Computing the detail of {0} on WebGPU ({1})…', tensor, entry.gpu!.adapter),
      });
      try {
        const raw = await entry.channel.request('detailGpu', gpuDetailJob(target.t, target.view, settings));
        const done = replyFromWebview('detailGpu', raw);
        if (done && !done.superseded) logLine(`inspector: ${tensor} computed on WebGPU in ${done.seconds.toFixed(2)} s`);
        return;
      } catch (e) {
        if (ctl.signal.aborted) return;
        logLine(`inspector: WebGPU failed on ${tensor} (${oneLine(e)}); computing it on the CPU`);
        return this.cpuDetail(entry, target, settings, ctl, `WebGPU failed: ${oneLine(e)}`);
      }
    }
    // Why it runs on the CPU, said only where the setting asked for the GPU or a GPU was passed over.
    let why: string | undefined;
    if (backend === 'webgpu' && !route.use) why = route.why;
    else if (backend === 'webgpu')
      why = target.view.transposed
        ? vscode.l10n.t('WebGPU does not run a transposed {0} tensor here', target.t.dtype)
        : vscode.l10n.t('WebGPU does not run a {0} tensor here', target.t.dtype);
    else if (backend === 'auto' && !route.use && entry.gpu?.available) why = route.why;
    return this.cpuDetail(entry, target, settings, ctl, why);
  }

  private async cpuDetail(
    entry: PanelEntry,
    target: DetailTarget,
    settings: QuantSettings,
    ctl: AbortController,
    why?: string,
  ): Promise<void> {
    const { t, view } = target;
    try {
      entry.channel.notify('detailStatus', { text: vscode.l10n.t('Computing the detail of {0} on the CPU…', t.name) });
      const pool = this.pool();
      const lane = pool.lane(entry.panel.visible ? PRIORITY.visible : PRIORITY.background, ctl.signal);
      const detail = await computeDetail(
        { opened: entry.doc.opened, pool: lane, t, view, signal: ctl.signal },
        settings,
        describePool(pool),
      );
      if (!ctl.signal.aborted) entry.channel.notify('detail', { detail: { ...detail, backendNote: why } });
    } catch (e) {
      if (!(e instanceof CancelledError)) entry.channel.notify('detailStatus', { text: `${t.name}: ${oneLine(e)}` });
    }
  }

  private async comparisonDetail(entry: PanelEntry, compare: PanelComparison, tensor: string): Promise<void> {
    const ctl = this.newDetailRun(entry);
    try {
      entry.channel.notify('detailStatus', { text: vscode.l10n.t('Comparing {0} with {1}…', tensor, compare.name) });
      const detail = await comparisonDetail(entry.doc.uri.fsPath, compare, tensor, ctl.signal);
      if (!ctl.signal.aborted) entry.channel.notify('detail', { detail });
    } catch (e) {
      if (!(e instanceof CancelledError)) entry.channel.notify('detailStatus', { text: `${tensor}: ${oneLine(e)}` });
    }
  }

  /**
   * An overview cell's exact statistics on the panel's GPU, where the backend setting and the
   * adapter allow it (gpuRoute) and the kernels run the tensor; undefined otherwise.
   */
  private cellOnGpu(entry: PanelEntry, t: ModelTensor, view: MatrixView, settings: QuantSettings): Promise<CellStats> | undefined {
    if (!gpuRoute(this.config.backend().backend, entry.gpu).use) return undefined;
    if (!gpuRuns(settings, t.dtype) || view.transposed || t.shape.length < 2) return undefined;
    return entry.channel.request('cellGpu', { ...gpuDetailJob(t, view, settings), rtn: undefined }).then((raw) => {
      const cell = replyFromWebview('cellGpu', raw);
      if (!cell) throw new Error("the panel's answer was malformed");
      return cell;
    });
  }

  /** One channel's histograms and loss curve (a quantization's: not in the comparison view). */
  private async showChannel(entry: PanelEntry, tensor: string, row: number, group: number): Promise<void> {
    if (entry.compare) {
      entry.channel.notify('detailStatus', {
        text: vscode.l10n.t("The loss curve is a quantization's: go back to the quantization view for it."),
      });
      return;
    }
    const target = this.detailTarget(entry, tensor);
    if (!target) return;
    try {
      if (row >= target.view.rows) throw new Error(vscode.l10n.t('channel {0} is outside {1} channels', row, target.view.rows));
      const settings = this.config.run().settings;
      entry.channel.notify('channel', { channel: await computeChannel(entry.doc.opened, target.t, target.view, settings, row, group) });
    } catch (e) {
      entry.channel.notify('detailStatus', { text: `${tensor}: ${oneLine(e)}` });
    }
  }

  /**
   * A WebGPU scale search on an open panel's GPU for a quantize run (the panel of that model first),
   * or why there is none (gpuRoute's rule). The run ends with the panel: closing it rejects the
   * search's requests, and the run goes on on the CPU.
   */
  gpuSearch(model: vscode.Uri, backend: ComputeBackend): { search?: PanelSearchBackend; why: string } {
    const none = (why: string) => ({ why });
    if (backend === 'cpu') return none('weightlens.compute.backend is cpu');
    const entries = [...this.panels].sort(
      (a, b) => Number(b.doc.uri.toString() === model.toString()) - Number(a.doc.uri.toString() === model.toString()),
    );
    if (!entries.length) return none(vscode.l10n.t('no inspector panel is open to lend its GPU'));
    const routes = entries.map((e) => ({ e, route: gpuRoute(backend, e.gpu) }));
    const usable = routes.find((r) => r.route.use)?.e;
    if (!usable) {
      const first = routes.find((r) => r.e.gpu?.available) ?? routes[0];
      return none(
        first.e.gpu?.available ? (first.route as { why: string }).why : vscode.l10n.t('no WebGPU adapter in the open inspector panel'),
      );
    }
    return {
      search: new PanelSearchBackend(usable.channel, vscode.l10n.t("{0} (the inspector panel's WebGPU)", usable.gpu!.adapter)),
      why: '',
    };
  }

  /** Pushes changed settings to every open inspector at once. */
  settingsChanged(): void {
    const settings = this.config.panel();
    for (const entry of this.panels) {
      // New settings bring the quantization view back.
      entry.compare = undefined;
      entry.channel.notify('settings', { settings });
      entry.overview.start(this.config.run().settings);
      void entry.plans.refresh(this.config.ewq(), this.config.run()).catch((e) => logLine(`EWQ: ${oneLine(e)}`));
    }
  }

  /** Stored bytes of rows [start, start + count) of a tensor, within one read's limit. */
  private async readRows(
    doc: InspectorDocument,
    tensor: string,
    start: number,
    count: number,
  ): Promise<{ dtype: string; shape: number[]; bytes: ArrayBuffer }> {
    const t = doc.opened.model.tensors.find((x) => x.name === tensor);
    if (!t) throw new Error(`no tensor named ${JSON.stringify(tensor)}`);
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    const rowBytes = rows === 0 ? 0 : t.byteLength / rows;
    if (count * rowBytes > MAX_READ_BYTES)
      throw new Error(`request of ${count} rows is over the ${MAX_READ_BYTES >> 20} MB limit of one read`);
    const bytes = await readRows(doc.opened.source(t.file), t, start, count);
    const buffer =
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
        ? (bytes.buffer as ArrayBuffer)
        : (bytes.slice().buffer as ArrayBuffer);
    return { dtype: t.dtype, shape: [...t.shape], bytes: buffer };
  }
}
