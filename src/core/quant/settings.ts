/**
 * Quantization settings, the presets of docs/methods.md §1, and their validation.
 *
 * A preset fixes every knob its definition fixes (candidate range, rounding, histogram kind,
 * normalize; `reference` also K, B and the lambdas). Explicit values override the preset. Group
 * size is independent of presets.
 */
import { WeightlensError } from '../errors';

/**
 * `rtn`: round to nearest (absmax, or min-max with a zero point); `dareq`: the scale search of
 * docs/methods.md §1; `hqq`: HQQ's half-quadratic zero-point optimization, re-implemented as a
 * data-free peer to measure against (asymmetric only).
 */
export type Method = 'rtn' | 'dareq' | 'hqq';
export type Preset = 'paper' | 'reference' | 'clip';
export type ScaleRange = 'paper' | 'clip';
export type Rounding = 'half-up' | 'half-even';
export type HistogramKind = 'probability' | 'density';
/**
 * `exhaustive` scores all K candidates (exactly; with λH 0 through the sweep, see sweep.ts);
 * `coarse-to-fine` about 3 sqrt(K), approximately where λH > 0, and exactly, as the sweep, at λH 0.
 */
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
  /**
   * false: each group also gets a zero point (value = scale * (q - zp), or Q4_1's d * q + m), so
   * the codes span [min, max] instead of [-absmax, absmax] (docs/methods.md §1, "Zero points").
   */
  readonly symmetric: boolean;
  /** Symmetric only: the scale's sign follows the largest-magnitude weight, which takes code qmin. */
  readonly signAware: boolean;
  /** Alternating least-squares steps after the search: codes fixed -> best scale (and zero) -> recode. */
  readonly refine: number;
  /** The L2 term's weights: `uniform`, or `magnitude` (rms + |w|, llama.cpp's without an importance matrix). */
  readonly weighting: Weighting;
}

export type Weighting = 'uniform' | 'magnitude';
export const WEIGHTINGS: readonly Weighting[] = ['uniform', 'magnitude'];

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
  lambdaEntropy: 0,
  bins: 256,
  grid: 100,
  clipAlphaMin: 0.5,
  search: 'exhaustive',
  symmetric: true,
  signAware: true,
  refine: 0,
  weighting: 'uniform',
};

export const PRESETS: Record<Preset, Partial<QuantSettings>> = {
  // Algorithm 1 as the paper writes it: its range (never clips), floor(x + 0.5), probabilities,
  // raw loss terms. Reproduces the paper's failure with lambda_H 0.01 on purpose.
  paper: { range: 'paper', rounding: 'half-up', histogram: 'probability', normalize: false, signAware: false, lambdaEntropy: 0.01 },
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
    signAware: false,
  },
  // MSE-optimal-style clipping range with normalized terms: the measured best (the default).
  clip: { range: 'clip', rounding: 'half-up', histogram: 'probability', normalize: true },
};

export const METHODS: readonly Method[] = ['rtn', 'dareq', 'hqq'];
/** Groups are indexed with 32-bit integers (here and in the WGSL kernels). */
export const MAX_GROUP_SIZE = 2 ** 31 - 1;
export const PRESET_NAMES: readonly Preset[] = ['paper', 'reference', 'clip'];

/** Merge defaults <- preset <- explicit values, and validate every knob. */
export function resolveSettings(input: SettingsInput = {}): QuantSettings {
  const preset = input.preset ?? DEFAULTS.preset;
  if (!PRESET_NAMES.includes(preset)) throw new WeightlensError(`unknown preset "${preset}" (expected ${PRESET_NAMES.join(', ')})`);
  const explicit = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const s = { ...DEFAULTS, ...PRESETS[preset], ...explicit, preset } as QuantSettings;
  // Sign-aware scales are a symmetric grid's choice: a zero point takes their place unless asked for both.
  if (s.symmetric === false && input.signAware === undefined) (s as { signAware: boolean }).signAware = false;
  validateSettings(s);
  return s;
}

/** A numeric knob's valid values. */
export interface KnobRange {
  min: number;
  max: number;
  integer?: boolean;
  /** min itself is not allowed. */
  openMin?: boolean;
  /** How a user reads the range, when the generated words would not do. */
  words?: string;
}

/**
 * The one place each numeric knob's range is written: validateSettings (CLI and engine), the
 * extension's settings checks and the panel's setSetting use it, and a test holds package.json's
 * minimum / maximum to it.
 */
export const KNOB_RANGES = {
  bits: { min: 2, max: 8, integer: true },
  groupSize: { min: 0, max: MAX_GROUP_SIZE, integer: true, words: `0 (per-channel) or a positive integer up to ${MAX_GROUP_SIZE}` },
  lambdaWeight: { min: 0, max: Number.MAX_VALUE, words: 'a finite number >= 0' },
  lambdaEntropy: { min: 0, max: Number.MAX_VALUE, words: 'a finite number >= 0' },
  bins: { min: 2, max: 65536, integer: true },
  grid: { min: 1, max: 10000, integer: true },
  clipAlphaMin: { min: 0, max: 1, openMin: true, words: 'in (0, 1]' },
  refine: { min: 0, max: 100, integer: true },
} as const satisfies Record<string, KnobRange>;

export type Knob = keyof typeof KNOB_RANGES;

export function inRange(r: KnobRange, v: unknown): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (r.integer && !Number.isInteger(v))) return false;
  return (r.openMin ? v > r.min : v >= r.min) && v <= r.max;
}

/** "an integer from 2 to 8", or the range's own words. */
export function rangeWords(r: KnobRange): string {
  return r.words ?? (r.integer ? `an integer from ${r.min} to ${r.max}` : `a number from ${r.min} to ${r.max}`);
}

export function validateSettings(s: QuantSettings): void {
  const bad = (what: string, v: unknown): never => {
    throw new WeightlensError(`${what} (got ${JSON.stringify(v)})`);
  };
  if (!METHODS.includes(s.method)) bad(`method must be one of ${METHODS.join(', ')}`, s.method);
  // The names users know them by (the CLI's flags).
  const names: Record<Knob, string> = {
    bits: 'bits',
    groupSize: 'group size',
    lambdaWeight: 'lambda-weight',
    lambdaEntropy: 'lambda-entropy',
    bins: 'bins',
    grid: 'grid',
    clipAlphaMin: 'clip-alpha-min',
    refine: 'refine',
  };
  for (const k of Object.keys(KNOB_RANGES) as Knob[]) {
    const r: KnobRange = KNOB_RANGES[k];
    if (!inRange(r, s[k])) bad(`${names[k]} must be ${rangeWords(r)}`, s[k]);
  }
  if (s.ternary && s.bits !== 2) bad('ternary codes are stored in 2 bits: bits must be 2', s.bits);
  if (!['paper', 'clip'].includes(s.range)) bad('range must be paper or clip', s.range);
  if (!SEARCH_MODES.includes(s.search)) bad(`search must be one of ${SEARCH_MODES.join(', ')}`, s.search);
  if (!WEIGHTINGS.includes(s.weighting)) bad(`weighting must be one of ${WEIGHTINGS.join(', ')}`, s.weighting);
  if (typeof s.symmetric !== 'boolean') bad('symmetric must be true or false', s.symmetric);
  if (typeof s.signAware !== 'boolean') bad('sign-aware must be true or false', s.signAware);
  if (!s.symmetric && s.ternary) bad('ternary codes are symmetric: they take no zero point', s.symmetric);
  if (!s.symmetric && s.signAware)
    bad('sign-aware scales are for symmetric codes; with a zero point the codes already span [min, max]', s.signAware);
  if (s.method === 'hqq' && s.symmetric) bad('hqq optimizes a zero point: it needs asymmetric codes (--asymmetric)', s.method);
  if (!s.symmetric && s.method === 'dareq' && s.range !== 'clip')
    bad(
      `the ${s.preset} preset reproduces the published symmetric search; asymmetric codes search the clip range (--preset clip)`,
      s.preset,
    );
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

type CodeRange = Readonly<{ qmin: number; qmax: number }>;
const TERNARY_RANGE: CodeRange = Object.freeze({ qmin: -1, qmax: 1 });
/** One shared object per bit width: the quantizer asks per group, and allocation showed in profiles. */
const RANGES: CodeRange[] = Array.from({ length: 33 }, (_, b) => Object.freeze({ qmin: -(2 ** (b - 1)), qmax: 2 ** (b - 1) - 1 }));

export function qRange(bits: number, ternary = false): CodeRange {
  if (ternary) return TERNARY_RANGE;
  return RANGES[bits] ?? { qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 };
}

/**
 * A short tag for file names: `dareq-w4g128`, `rtn-w8`, and for DARE-Q whatever differs from the
 * defaults, so two runs with different settings never collide: `dareq-w4g128-paper`,
 * `dareq-w8g128-lh0.25`, `dareq-w4g128-c2f`.
 */
export function settingsTag(s: QuantSettings): string {
  const base = `${s.method}-w${s.bits}${s.groupSize > 0 ? `g${s.groupSize}` : ''}${s.symmetric ? '' : 'a'}`;
  const d = resolveSettings({ preset: s.preset });
  const shared: string[] = [];
  if (s.signAware !== d.signAware) shared.push(s.signAware ? 'sign' : 'nosign');
  if (s.refine !== d.refine) shared.push(`r${s.refine}`);
  if (s.weighting !== d.weighting) shared.push(s.weighting === 'magnitude' ? 'wmag' : 'wuni');
  if (s.method !== 'dareq') return [base, ...shared].join('-');
  const parts: string[] = [];
  if (s.preset !== DEFAULTS.preset) parts.push(s.preset);
  if (s.lambdaWeight !== d.lambdaWeight) parts.push(`lw${s.lambdaWeight}`);
  if (s.lambdaEntropy !== d.lambdaEntropy) parts.push(`lh${s.lambdaEntropy}`);
  if (s.normalize !== d.normalize) parts.push(s.normalize ? 'norm' : 'raw');
  if (s.grid !== d.grid) parts.push(`k${s.grid}`);
  if (s.bins !== d.bins) parts.push(`b${s.bins}`);
  if (s.range === 'clip' && s.clipAlphaMin !== d.clipAlphaMin) parts.push(`a${s.clipAlphaMin}`);
  if (s.search !== d.search) parts.push('c2f');
  return [base, ...parts, ...shared].join('-');
}
