/**
 * The typed message protocol between the extension host and the inspector webview (the pattern of
 * microsoft/vscode-hexeditor): requests carry an id and get exactly one response with that id;
 * binary payloads travel as ArrayBuffers, never through JSON. Everything arriving from the webview
 * is untrusted and goes through `parseWebviewMessage` before the host acts on it.
 */
import type { InspectSummary } from '../core/inspect';
import type { QuantSettings } from '../core/quant/settings';

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
  rtnScale: number;
  normalize: boolean;
  lambdaWeight: number;
  lambdaEntropy: number;
  bins: number;
}

// ---- host -> webview ----------------------------------------------------------------------------
export type HostMessage =
  /** `compareWith`: the grid shows a comparison with that checkpoint (Compare Weights), not a quantization. */
  | { type: 'overview'; key: string; layout: OverviewLayout; cells: Record<string, CellStats>; compareWith?: string }
  | { type: 'cell'; key: string; tensor: string; stats: CellStats }
  | { type: 'detail'; detail: DetailView }
  | { type: 'channel'; channel: ChannelView }
  | { type: 'detailStatus'; text: string }
  | { type: 'detailGpu'; job: GpuDetailJob }
  /** The quantize command borrows the panel's GPU for DARE-Q's scale search of one block of rows. */
  | { type: 'gpuSearch'; id: number; rows: number; cols: number; settings: QuantSettings; values: ArrayBuffer }
  /** `headerOnly`: a file shown from its header alone (GGUF): no statistics, plans or tuning. */
  | { type: 'init'; file: string; summary: InspectSummary; settings: PanelSettings; headerOnly?: boolean }
  | { type: 'plan'; plan: PlanView }
  | { type: 'planStatus'; text: string; running: boolean }
  /** A perplexity measured in llama.cpp for this model (Evaluate Perplexity). */
  | { type: 'perplexity'; text: string }
  | { type: 'settings'; settings: PanelSettings }
  | { type: 'response'; id: number; ok: true; result: unknown; bytes?: ArrayBuffer }
  | { type: 'response'; id: number; ok: false; error: string };

// ---- webview -> host ----------------------------------------------------------------------------
export type WebviewRequest =
  | { type: 'request'; id: number; method: 'readRows'; params: { tensor: string; start: number; count: number } }
  | { type: 'request'; id: number; method: 'summary'; params: Record<string, never> };

export type WebviewMessage =
  | { type: 'ready' }
  /** What the webview found: a WebGPU adapter (described) or why there is none. */
  | { type: 'gpu'; available: boolean; adapter: string; fallback: boolean }
  /** The answer to a gpuSearch: the SearchChoices arrays (checked again against the request by the host). */
  | {
      type: 'gpuSearchResult';
      id: number;
      ok: true;
      choices: Int32Array;
      contenderStart: Int32Array;
      contenders: Int32Array;
      undecided: number;
      rescored: number;
    }
  | { type: 'gpuSearchResult'; id: number; ok: false; error: string }
  /** A detailGpu job ended: done (its backend shown to the user) or failed (the host computes it on the CPU). */
  | { type: 'detailGpuDone'; tensor: string; ok: boolean; error: string; seconds: number }
  | { type: 'prioritize'; row: string }
  /** Leave the comparison view for the quantization view. */
  | { type: 'endCompare' }
  | { type: 'detail'; tensor: string }
  | { type: 'setSetting'; key: TunableSetting; value: number | string }
  | { type: 'channel'; tensor: string; row: number; group: number }
  | { type: 'command'; command: (typeof PANEL_COMMANDS)[number] }
  | WebviewRequest;

/** Settings the panel's tuning controls may write (to the workspace settings). */
export const TUNABLE_SETTINGS = ['quantization.bits', 'quantization.groupSize', 'dareq.preset', 'dareq.lambdaEntropy'] as const;
export type TunableSetting = (typeof TUNABLE_SETTINGS)[number];

export const PANEL_COMMANDS = ['quantizeDareq', 'quantizeRtn', 'openSettings', 'planEwq', 'quantizeWithPlan'] as const;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** An Int32Array from what the webview sent (an ArrayBuffer or a typed array), or undefined. */
function int32s(v: unknown): Int32Array | undefined {
  if (v instanceof ArrayBuffer) return v.byteLength % 4 === 0 ? new Int32Array(v.slice(0)) : undefined;
  if (ArrayBuffer.isView(v) && v.byteLength % 4 === 0) return new Int32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return undefined;
}

/** Validates a message from the webview; returns undefined (and the caller ignores it) when invalid. */
export function parseWebviewMessage(raw: unknown): WebviewMessage | undefined {
  if (!isObj(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
      return { type: 'ready' };
    case 'endCompare':
      return { type: 'endCompare' };
    case 'gpu':
      return typeof raw.available === 'boolean' &&
        typeof raw.adapter === 'string' &&
        raw.adapter.length <= 512 &&
        typeof raw.fallback === 'boolean'
        ? { type: 'gpu', available: raw.available, adapter: raw.adapter, fallback: raw.fallback }
        : undefined;
    case 'gpuSearchResult': {
      if (!isCount(raw.id)) return undefined;
      if (raw.ok === false)
        return typeof raw.error === 'string'
          ? { type: 'gpuSearchResult', id: raw.id, ok: false, error: raw.error.slice(0, 1000) }
          : undefined;
      const choices = int32s(raw.choices);
      const contenderStart = int32s(raw.contenderStart);
      const contenders = int32s(raw.contenders);
      if (raw.ok !== true || !choices || !contenderStart || !contenders || !isCount(raw.undecided) || !isCount(raw.rescored))
        return undefined;
      return {
        type: 'gpuSearchResult',
        id: raw.id,
        ok: true,
        choices,
        contenderStart,
        contenders,
        undecided: raw.undecided,
        rescored: raw.rescored,
      };
    }
    case 'detailGpuDone':
      return typeof raw.tensor === 'string' &&
        raw.tensor.length <= 4096 &&
        typeof raw.ok === 'boolean' &&
        typeof raw.error === 'string' &&
        typeof raw.seconds === 'number' &&
        Number.isFinite(raw.seconds)
        ? { type: 'detailGpuDone', tensor: raw.tensor, ok: raw.ok, error: raw.error.slice(0, 1000), seconds: raw.seconds }
        : undefined;
    case 'detail':
      return typeof raw.tensor === 'string' && raw.tensor.length <= 4096 ? { type: 'detail', tensor: raw.tensor } : undefined;
    case 'setSetting':
      return (TUNABLE_SETTINGS as readonly unknown[]).includes(raw.key) && (typeof raw.value === 'number' || typeof raw.value === 'string')
        ? { type: 'setSetting', key: raw.key as TunableSetting, value: raw.value }
        : undefined;
    case 'channel':
      return typeof raw.tensor === 'string' && raw.tensor.length <= 4096 && isCount(raw.row) && isCount(raw.group)
        ? { type: 'channel', tensor: raw.tensor, row: raw.row, group: raw.group }
        : undefined;
    case 'prioritize':
      return typeof raw.row === 'string' && raw.row.length <= 256 ? { type: 'prioritize', row: raw.row } : undefined;
    case 'command':
      return (PANEL_COMMANDS as readonly unknown[]).includes(raw.command)
        ? { type: 'command', command: raw.command as (typeof PANEL_COMMANDS)[number] }
        : undefined;
    case 'request': {
      if (!isCount(raw.id) || !isObj(raw.params)) return undefined;
      const p = raw.params;
      if (raw.method === 'summary') return { type: 'request', id: raw.id, method: 'summary', params: {} };
      if (raw.method === 'readRows') {
        if (typeof p.tensor !== 'string' || p.tensor.length > 4096 || !isCount(p.start) || !isCount(p.count)) return undefined;
        return { type: 'request', id: raw.id, method: 'readRows', params: { tensor: p.tensor, start: p.start, count: p.count } };
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** The most rows one readRows request may ask for, in bytes: larger reads are split by the webview. */
export const MAX_READ_BYTES = 64 << 20;
