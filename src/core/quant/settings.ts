/**
 * Quantization settings, the presets of docs/methods.md §1, and their validation.
 *
 * A preset fixes every knob its definition fixes (candidate range, rounding, histogram kind,
 * normalize; `reference` also K, B and the lambdas). Explicit values override the preset. Group
 * size is independent of presets.
 */
import { WeightlensError } from '../errors';

export type Method = 'rtn' | 'dareq';
export type Preset = 'paper' | 'reference' | 'clip';
export type ScaleRange = 'paper' | 'clip';
export type Rounding = 'half-up' | 'half-even';
export type HistogramKind = 'probability' | 'density';
/** `exhaustive` scores all K candidates; `coarse-to-fine` about 3 sqrt(K), approximately (see search.ts). */
export type SearchMode = 'exhaustive' | 'coarse-to-fine';
export const SEARCH_MODES: readonly SearchMode[] = ['exhaustive', 'coarse-to-fine'];

export interface QuantSettings {
  readonly method: Method;
  readonly bits: number;
  /** 0 = per-channel (one scale per row); g > 0 = one scale per g consecutive weights of a row. */
  readonly groupSize: number;
  readonly preset: Preset;
  /** Candidate range: `paper` = [absmax/qmax, absmax]; `clip` = [alpha*absmax/qmax, absmax/qmax]. */
  readonly range: ScaleRange;
  readonly rounding: Rounding;
  readonly histogram: HistogramKind;
  /** L = lw*L2/mean(w^2) + lh*H/ln(B) when on; raw L = lw*L2 + lh*H when off. */
  readonly normalize: boolean;
  readonly lambdaWeight: number;
  readonly lambdaEntropy: number;
  /** B, histogram bins. */
  readonly bins: number;
  /** K, candidate scales. */
  readonly grid: number;
  /** alpha_min of the clip range. */
  readonly clipAlphaMin: number;
  /** How the K candidates are searched. */
  readonly search: SearchMode;
  /** Ternary (1.58-bit): codes in {-1, 0, 1}, stored in 2 bits; needs bits = 2. EWQ's last resort. */
  readonly ternary?: boolean;
}

/** What a user may set; anything left out comes from the preset, then the defaults. */
export type SettingsInput = Partial<Omit<QuantSettings, 'range' | 'rounding' | 'histogram'>> & {
  range?: ScaleRange;
  rounding?: Rounding;
  histogram?: HistogramKind;
};

/** Defaults chosen by measured perplexity (docs/methods.md §4; README "How the defaults were chosen"). */
export const DEFAULTS: QuantSettings = {
  method: 'dareq',
  bits: 4,
  groupSize: 128,
  preset: 'clip',
  range: 'clip',
  rounding: 'half-up',
  histogram: 'probability',
  normalize: true,
  lambdaWeight: 1,
  lambdaEntropy: 0.01,
  bins: 256,
  grid: 100,
  clipAlphaMin: 0.5,
  search: 'exhaustive',
};

export const PRESETS: Record<Preset, Partial<QuantSettings>> = {
  // Algorithm 1 as the paper writes it: its range (never clips), floor(x + 0.5), probabilities,
  // raw loss terms. Reproduces the paper's failure with lambda_H 0.01 on purpose.
  paper: { range: 'paper', rounding: 'half-up', histogram: 'probability', normalize: false },
  // The authors' published code: K 20, torch.round, numpy density histogram with 1e-8, B 128.
  reference: {
    range: 'paper',
    rounding: 'half-even',
    histogram: 'density',
    normalize: false,
    grid: 20,
    bins: 128,
    lambdaWeight: 1,
    lambdaEntropy: 0.1,
  },
  // MSE-optimal-style clipping range with normalized terms: the measured best (the default).
  clip: { range: 'clip', rounding: 'half-up', histogram: 'probability', normalize: true },
};

export const METHODS: readonly Method[] = ['rtn', 'dareq'];
/** Groups are indexed with 32-bit integers (here and in the WGSL kernels). */
export const MAX_GROUP_SIZE = 2 ** 31 - 1;
export const PRESET_NAMES: readonly Preset[] = ['paper', 'reference', 'clip'];

/** Merge defaults <- preset <- explicit values, and validate every knob. */
export function resolveSettings(input: SettingsInput = {}): QuantSettings {
  const preset = input.preset ?? DEFAULTS.preset;
  if (!PRESET_NAMES.includes(preset)) throw new WeightlensError(`unknown preset "${preset}" (expected ${PRESET_NAMES.join(', ')})`);
  const explicit = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const s = { ...DEFAULTS, ...PRESETS[preset], ...explicit, preset } as QuantSettings;
  validateSettings(s);
  return s;
}

export function validateSettings(s: QuantSettings): void {
  const bad = (what: string, v: unknown): never => {
    throw new WeightlensError(`${what} (got ${JSON.stringify(v)})`);
  };
  if (!METHODS.includes(s.method)) bad(`method must be one of ${METHODS.join(', ')}`, s.method);
  if (!Number.isInteger(s.bits) || s.bits < 2 || s.bits > 8) bad('bits must be an integer from 2 to 8', s.bits);
  if (!Number.isInteger(s.groupSize) || s.groupSize < 0 || s.groupSize > MAX_GROUP_SIZE)
    bad(`group size must be 0 (per-channel) or a positive integer up to ${MAX_GROUP_SIZE}`, s.groupSize);
  if (!(Number.isFinite(s.lambdaWeight) && s.lambdaWeight >= 0)) bad('lambda-weight must be a finite number >= 0', s.lambdaWeight);
  if (!(Number.isFinite(s.lambdaEntropy) && s.lambdaEntropy >= 0)) bad('lambda-entropy must be a finite number >= 0', s.lambdaEntropy);
  if (!Number.isInteger(s.bins) || s.bins < 2 || s.bins > 65536) bad('bins must be an integer from 2 to 65536', s.bins);
  if (!Number.isInteger(s.grid) || s.grid < 1 || s.grid > 10000) bad('grid must be an integer from 1 to 10000', s.grid);
  if (!(s.clipAlphaMin > 0 && s.clipAlphaMin <= 1)) bad('clip-alpha-min must be in (0, 1]', s.clipAlphaMin);
  if (s.ternary && s.bits !== 2) bad('ternary codes are stored in 2 bits: bits must be 2', s.bits);
  if (!['paper', 'clip'].includes(s.range)) bad('range must be paper or clip', s.range);
  if (!SEARCH_MODES.includes(s.search)) bad(`search must be one of ${SEARCH_MODES.join(', ')}`, s.search);
  if (!['half-up', 'half-even'].includes(s.rounding)) bad('rounding must be half-up or half-even', s.rounding);
  if (!['probability', 'density'].includes(s.histogram)) bad('histogram must be probability or density', s.histogram);
  // Searches that can never pick the round-to-nearest scale would silently do worse than RTN.
  if (s.method === 'dareq' && s.lambdaWeight === 0 && s.lambdaEntropy === 0) {
    bad(
      'lambda-weight and lambda-entropy are both 0: every candidate scale would score 0 and the search would pick the first; set one above 0',
      [s.lambdaWeight, s.lambdaEntropy],
    );
  }
  if (s.method === 'dareq' && s.range === 'clip' && s.grid === 1 && s.clipAlphaMin < 1) {
    bad(
      'grid 1 with the clip range tries only clip-alpha-min x the round-to-nearest scale, never that scale itself: use a grid of 2 or more',
      s.grid,
    );
  }
}

export function qRange(bits: number, ternary = false): { qmin: number; qmax: number } {
  if (ternary) return { qmin: -1, qmax: 1 };
  return { qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 };
}

/**
 * A short tag for file names: `dareq-w4g128`, `rtn-w8`, and for DARE-Q whatever differs from the
 * defaults, so two runs with different settings never collide: `dareq-w4g128-paper`,
 * `dareq-w8g128-lh0.25`, `dareq-w4g128-c2f`.
 */
export function settingsTag(s: QuantSettings): string {
  const base = `${s.method}-w${s.bits}${s.groupSize > 0 ? `g${s.groupSize}` : ''}`;
  if (s.method !== 'dareq') return base;
  const d = resolveSettings({ preset: s.preset });
  const parts: string[] = [];
  if (s.preset !== DEFAULTS.preset) parts.push(s.preset);
  if (s.lambdaWeight !== d.lambdaWeight) parts.push(`lw${s.lambdaWeight}`);
  if (s.lambdaEntropy !== d.lambdaEntropy) parts.push(`lh${s.lambdaEntropy}`);
  if (s.normalize !== d.normalize) parts.push(s.normalize ? 'norm' : 'raw');
  if (s.grid !== d.grid) parts.push(`k${s.grid}`);
  if (s.bins !== d.bins) parts.push(`b${s.bins}`);
  if (s.range === 'clip' && s.clipAlphaMin !== d.clipAlphaMin) parts.push(`a${s.clipAlphaMin}`);
  if (s.search !== d.search) parts.push('c2f');
  return [base, ...parts].join('-');
}
