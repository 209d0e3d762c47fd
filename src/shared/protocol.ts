/**
 * What the extension host and the inspector webview say to each other, over one Channel
 * (src/shared/channel.ts; the pattern of microsoft/vscode-hexeditor). Events are one way;
 * requests return a promise that the other side's reply settles. Binary payloads travel as
 * transferred ArrayBuffers, never through JSON. Everything arriving from the webview is untrusted:
 * `validateFromWebview` checks each body before the host's handlers see it.
 */
import type { InspectSummary } from '../core/inspect';
import type { SearchChoices } from '../compute/backend';
import type { QuantSettings } from '../core/quant/settings';
import type { Validate } from './channel';

/** The quantization settings as the panel shows them (resolved from `weightlens.*`). */
export interface PanelSettings {
  method: string;
  bits: number;
  groupSize: number;
  preset: string;
  lambdaEntropy: number;
  format: string;
  /** weightlens.compute.backend: auto, webgpu or cpu. */
  compute: string;
  /** Problems with the user's settings, one line each (shown, never thrown). */
  problems: string[];
}

/** An EWQ / FastEWQ plan as the panel draws it. */
export interface PlanView {
  source: 'ewq' | 'fastewq';
  variant: string;
  mu: number | null;
  sigma: number | null;
  threshold: number | null;
  blocks: { index: number; execIndex: number; params: number; entropy: number | null; precision: string; bytes: number }[];
  rawBytes: number;
  totalBytes: number;
  fits: boolean;
  budget: number | null;
  format: string;
  /** Blocks where FastEWQ's decision differs from the full analysis (full plans only). */
  disagreements: number[];
}

/** The overview grid: rows (blocks), columns (kinds of weight), and which tensor each cell is. */
export interface OverviewLayout {
  rows: string[];
  /** The EWQ block index of each row (-1 for tensors outside blocks). */
  rowBlocks: number[];
  kinds: string[];
  cells: { tensor: string; row: string; kind: string }[];
}

/** One cell's error statistics under the current settings, or against a compared checkpoint. */
export interface CellStats {
  mse: number;
  sqnrDb: number | null;
  /** Of a quantization (absent when comparing two checkpoints). */
  residualEntropy?: number;
  scaleRatio?: number;
  clippedFraction?: number;
  /** Where the exact values were computed, when not on the CPU workers (e.g. "WebGPU (adapter)"). */
  computedOn?: string;
  /** Present while the values are estimated from a sample of the tensor's groups (exact ones replace them). */
  estimate?: {
    groups: number;
    of: number;
    /** The 99% interval of the SQNR (the other statistics are estimates without one). */
    sqnrDb: [number, number];
  };
  /** Of a comparison with another checkpoint (Compare Weights). */
  maxAbs?: number;
  relative?: number;
  cosine?: number;
}

/** One side of a tensor's detail (the configured method, or RTN for comparison). */
export interface DetailSide {
  method: string;
  /** What the side is called when it is not a quantization method (a compared checkpoint). */
  label?: string;
  tiles: { absW: Float32Array; absE: Float32Array; sqE: Float32Array };
  channels: { mse: Float32Array; entropy: Float32Array; scaleRatio: Float32Array; clipped: Float32Array };
  sqnrDb: number | null;
  mse: number;
  /** The tensor's totals, as the overview shows them (absent for a comparison's side). */
  totals?: { residualEntropy: number; scaleRatio: number; clippedFraction: number };
}

export interface DetailView {
  tensor: string;
  shape: number[];
  rows: number;
  cols: number;
  grid: { rows: number; cols: number; rowStep: number; colStep: number };
  main: DetailSide;
  rtn?: DetailSide;
  /** Per output channel, of the original weights (outlier channels stand out here). */
  weights: { absmax: Float32Array; kurtosis: Float32Array };
  /** Where it was computed, for the user: e.g. "WebGPU (SwiftShader …)" or "CPU (1 worker thread)". */
  backend: string;
  /** Why it ran there, when it is not where the settings point (e.g. the adapter is a software one). */
  backendNote?: string;
  /** Seconds it took, end to end. */
  seconds: number;
}

/** The host asks the webview to compute a tensor's detail on its GPU (it pulls rows with readRows). */
export interface GpuDetailJob {
  tensor: string;
  shape: number[];
  dtype: 'F32' | 'F16' | 'BF16';
  rows: number;
  cols: number;
  grid: { rows: number; cols: number; rowStep: number; colStep: number };
  /** Rows per readRows request (within the host's read limit). */
  blockRows: number;
  main: QuantSettings;
  rtn?: QuantSettings;
}

export interface ChannelView {
  tensor: string;
  row: number;
  group: number;
  groups: number;
  weights: { lo: number; hi: number; counts: number[] };
  residual: { lo: number; hi: number; counts: number[] };
  scales: number[];
  l2: number[];
  entropy: number[];
  loss: number[];
  /** Index of the chosen candidate (-1 for an all-zero group). */
  chosen: number;
  /** Round to nearest's scale for these settings (absmax / qmax, absmax / 2^(b-1) sign-aware, or min-max). */
  rtnScale: number;
  /**
   * With a zero point: the chosen one (an integer zp, or a float offset m), and the offset it puts
   * under code qmin. L(s) is then drawn along the scale axis at this zero point.
   */
  zero?: { kind: 'integer' | 'float'; point: number; offset: number };
  /** -1 when the chosen scale is negative (sign-aware: the largest weight is positive). */
  sign?: number;
  normalize: boolean;
  lambdaWeight: number;
  lambdaEntropy: number;
  bins: number;
}

/** The init event: everything the panel shows from the header. */
export interface InitBody {
  file: string;
  summary: InspectSummary;
  settings: PanelSettings;
  /** A file shown from its header alone (GGUF): no statistics, plans or tuning. */
  headerOnly?: boolean;
}

/** The overview event: the grid's layout and the cells known so far for these settings. */
export interface OverviewBody {
  /** Which settings (or comparison) the cells belong to; cells of another key are dropped. */
  key: string;
  layout: OverviewLayout;
  cells: Record<string, CellStats>;
  /** The grid shows a comparison with that checkpoint (Compare Weights), not a quantization. */
  compareWith?: string;
}

/** A block of rows whose DARE-Q scale search a quantize run asks the panel's GPU for. */
export interface GpuSearchBody {
  rows: number;
  cols: number;
  settings: QuantSettings;
  values: ArrayBuffer;
}

/** The search's answer, checked again by the host (checkChoices) before use. */
export type GpuSearchReply = SearchChoices;

/** What the host sends to the webview. */
export interface HostToWebview {
  events: {
    /** The file's header summary and the settings: the first message after `ready`. */
    init: InitBody;
    /** The grid for the current settings (or a comparison), with the cells already known. */
    overview: OverviewBody;
    /** One more cell of the grid `key`. */
    cell: { key: string; tensor: string; stats: CellStats };
    /** The overview could not be computed (one line). */
    overviewStatus: { text: string };
    /** A tensor's detail, computed on the host. */
    detail: { detail: DetailView };
    /** One channel's histograms and loss curve. */
    channel: { channel: ChannelView };
    /** Progress or a problem of the detail, shown above it. */
    detailStatus: { text: string };
    /** An EWQ / FastEWQ plan to draw. */
    plan: { plan: PlanView };
    /** Progress of the EWQ analysis. */
    planStatus: { text: string; running: boolean };
    /** A perplexity measured in llama.cpp for this model (Evaluate Perplexity). */
    perplexity: { text: string };
    /** The settings changed. */
    settings: { settings: PanelSettings };
  };
  requests: {
    /** Compute a tensor's detail on the panel's GPU (pulling rows with readRows) and show it; a rejection sends the host to the CPU. */
    detailGpu: { body: GpuDetailJob; reply: { seconds: number; superseded: boolean } };
    /** One overview cell's exact statistics on the panel's GPU (pulling rows with readRows). */
    cellGpu: { body: GpuDetailJob; reply: CellStats };
    /** DARE-Q's scale search of one block of rows, for a quantize run borrowing the panel's GPU. */
    gpuSearch: { body: GpuSearchBody; reply: GpuSearchReply };
  };
}

/** What the webview sends to the host. */
export interface WebviewToHost {
  events: {
    /** The page is listening: send init. */
    ready: Record<string, never>;
    /** What the webview found: a WebGPU adapter (described) or why there is none. */
    gpu: { available: boolean; adapter: string; fallback: boolean };
    /** This row of the grid is on screen: compute its cells first. */
    prioritize: { row: string };
    /** Leave the comparison view for the quantization view. */
    endCompare: Record<string, never>;
    /** Show this tensor in detail (answered with detail, detailStatus or a detailGpu request). */
    detail: { tensor: string };
    /** Show one channel (row) and group of a tensor (answered with channel or detailStatus). */
    channel: { tensor: string; row: number; group: number };
    /** Run one of the extension's commands on this model. */
    command: { command: PanelCommand };
  };
  requests: {
    /** Stored bytes of rows [start, start + count) of a tensor. */
    readRows: { body: { tensor: string; start: number; count: number }; reply: { dtype: string; shape: number[]; bytes: ArrayBuffer } };
    /** Write one tuning control's value to the workspace settings; rejected when out of range. */
    setSetting: { body: { key: TunableSetting; value: number | string }; reply: void };
  };
}

/** Settings the panel's tuning controls may write (to the workspace settings). */
export const TUNABLE_SETTINGS = ['quantization.bits', 'quantization.groupSize', 'dareq.preset', 'dareq.lambdaEntropy'] as const;
export type TunableSetting = (typeof TUNABLE_SETTINGS)[number];

export const PANEL_COMMANDS = ['quantizeDareq', 'quantizeRtn', 'openSettings', 'planEwq', 'quantizeWithPlan'] as const;
export type PanelCommand = (typeof PANEL_COMMANDS)[number];

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isName = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max;

/** An Int32Array from what the webview sent (an ArrayBuffer or a typed array), or undefined. */
function int32s(v: unknown): Int32Array | undefined {
  if (v instanceof ArrayBuffer) return v.byteLength % 4 === 0 ? new Int32Array(v.slice(0)) : undefined;
  if (ArrayBuffer.isView(v) && v.byteLength % 4 === 0) return new Int32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return undefined;
}

/** Checks each body the webview sends against its type (the channel drops what fails). */
const FROM_WEBVIEW: Record<string, (b: Record<string, unknown>) => unknown> = {
  ready: () => ({}),
  endCompare: () => ({}),
  gpu: (b) =>
    typeof b.available === 'boolean' && isName(b.adapter, 512) && typeof b.fallback === 'boolean'
      ? { available: b.available, adapter: b.adapter, fallback: b.fallback }
      : undefined,
  prioritize: (b) => (isName(b.row, 256) ? { row: b.row } : undefined),
  detail: (b) => (isName(b.tensor) ? { tensor: b.tensor } : undefined),
  channel: (b) => (isName(b.tensor) && isCount(b.row) && isCount(b.group) ? { tensor: b.tensor, row: b.row, group: b.group } : undefined),
  command: (b) => ((PANEL_COMMANDS as readonly unknown[]).includes(b.command) ? { command: b.command } : undefined),
  readRows: (b) =>
    isName(b.tensor) && isCount(b.start) && isCount(b.count) ? { tensor: b.tensor, start: b.start, count: b.count } : undefined,
  setSetting: (b) =>
    (TUNABLE_SETTINGS as readonly unknown[]).includes(b.key) && (typeof b.value === 'number' || typeof b.value === 'string')
      ? { key: b.key, value: b.value }
      : undefined,
};

/** The replies the webview sends to the host's requests, checked the same way. */
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

const REPLIES_FROM_WEBVIEW = {
  cellGpu: (b: Record<string, unknown>): CellStats | undefined =>
    isNum(b.mse) &&
    b.mse >= 0 &&
    (b.sqnrDb === null || isNum(b.sqnrDb)) &&
    isNum(b.residualEntropy) &&
    isNum(b.scaleRatio) &&
    isNum(b.clippedFraction) &&
    isName(b.computedOn, 600)
      ? {
          mse: b.mse,
          sqnrDb: b.sqnrDb as number | null,
          residualEntropy: b.residualEntropy,
          scaleRatio: b.scaleRatio,
          clippedFraction: b.clippedFraction,
          computedOn: b.computedOn,
        }
      : undefined,
  detailGpu: (b: Record<string, unknown>) =>
    typeof b.seconds === 'number' && Number.isFinite(b.seconds) && typeof b.superseded === 'boolean'
      ? { seconds: b.seconds, superseded: b.superseded }
      : undefined,
  gpuSearch: (b: Record<string, unknown>): GpuSearchReply | undefined => {
    const choices = int32s(b.choices);
    const contenderStart = int32s(b.contenderStart);
    const contenders = int32s(b.contenders);
    if (!choices || !contenderStart || !contenders || !isCount(b.undecided) || !isCount(b.rescored)) return undefined;
    return { choices, contenderStart, contenders, undecided: b.undecided, rescored: b.rescored };
  },
};

/** The webview's events and requests, validated before dispatch (untrusted input). */
export const validateFromWebview: Validate = (_kind, type, body) => {
  const check = Object.hasOwn(FROM_WEBVIEW, type) ? FROM_WEBVIEW[type] : undefined;
  if (!check) return { ok: false, why: 'unknown type' };
  const clean = isObj(body) ? check(body) : undefined;
  return clean === undefined ? { ok: false, why: 'malformed body' } : { ok: true, body: clean };
};

/** A reply of the webview to one of the host's requests, cleaned, or undefined when malformed. */
export function replyFromWebview<K extends keyof typeof REPLIES_FROM_WEBVIEW>(
  type: K,
  body: unknown,
): ReturnType<(typeof REPLIES_FROM_WEBVIEW)[K]> | undefined {
  return isObj(body) ? (REPLIES_FROM_WEBVIEW[type](body) as ReturnType<(typeof REPLIES_FROM_WEBVIEW)[K]>) : undefined;
}

/** The most rows one readRows request may ask for, in bytes: larger reads are split by the webview. */
export const MAX_READ_BYTES = 64 << 20;

/** Sends one host event to a webview (the channel's notify, as the host's helpers take it). */
export type NotifyWebview = <K extends keyof HostToWebview['events'] & string>(type: K, body: HostToWebview['events'][K]) => void;
