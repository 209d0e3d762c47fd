/**
 * `weightlens.*` settings -> quantization settings, without the vscode module (a getter is passed
 * in), so it is unit-tested. A value a user typed into settings.json that is out of range or of the
 * wrong type becomes a one-line problem naming the setting; it never throws.
 */
import * as l10n from '@vscode/l10n';
import { OUTPUT_FORMATS, type OutputFormat } from '../core/plan';
import {
  DEFAULTS,
  inRange,
  KNOB_RANGES,
  METHODS,
  PRESET_NAMES,
  SEARCH_MODES,
  WEIGHTINGS,
  rangeWords,
  resolveSettings,
  type Knob,
  type KnobRange,
  type QuantSettings,
  type SettingsInput,
} from '../core/quant/settings';
import type { PanelSettings } from '../shared/protocol';

/** Returns the user's value of a setting, or undefined when the user has not set it. */
export type ConfigReader = (key: string) => unknown;

export interface RunConfig {
  settings: QuantSettings;
  format: OutputFormat;
  include?: string;
  exclude?: string;
  problems: string[];
}

interface Spec {
  key: string;
  field: keyof SettingsInput | 'format' | 'include' | 'exclude';
  check: (v: unknown) => boolean;
  expect: string;
  /** Numeric settings: the engine's range (package.json's minimum/maximum must match it). */
  range?: KnobRange;
}

/** A numeric setting: its range is the engine's (KNOB_RANGES), so the two can never disagree. */
const knob = (k: Knob, field: keyof SettingsInput, key: string): Spec => {
  const r: KnobRange = KNOB_RANGES[k];
  return { key, field, check: (v) => inRange(r, v), expect: rangeWords(r), range: r };
};
/** A number in [lo, hi] (the EWQ settings, which have no engine knob). */
const num = (lo: number, hi: number) => (v: unknown) => inRange({ min: lo, max: hi }, v);
const oneOf = (xs: readonly string[]) => (v: unknown) => typeof v === 'string' && xs.includes(v);
const regex = (v: unknown) => {
  if (typeof v !== 'string') return false;
  try {
    new RegExp(v);
    return true;
  } catch {
    return false;
  }
};

export const SETTING_SPECS: readonly Spec[] = [
  { key: 'quantization.method', field: 'method', check: oneOf(METHODS), expect: `one of ${METHODS.join(', ')}` },
  knob('bits', 'bits', 'quantization.bits'),
  knob('groupSize', 'groupSize', 'quantization.groupSize'),
  { key: 'quantization.outputFormat', field: 'format', check: oneOf(OUTPUT_FORMATS), expect: `one of ${OUTPUT_FORMATS.join(', ')}` },
  { key: 'quantization.include', field: 'include', check: regex, expect: 'a valid regular expression' },
  { key: 'quantization.exclude', field: 'exclude', check: regex, expect: 'a valid regular expression' },
  { key: 'dareq.preset', field: 'preset', check: oneOf(PRESET_NAMES), expect: `one of ${PRESET_NAMES.join(', ')}` },
  knob('lambdaWeight', 'lambdaWeight', 'dareq.lambdaWeight'),
  knob('lambdaEntropy', 'lambdaEntropy', 'dareq.lambdaEntropy'),
  knob('bins', 'bins', 'dareq.histogramBins'),
  knob('grid', 'grid', 'dareq.gridSize'),
  knob('clipAlphaMin', 'clipAlphaMin', 'dareq.clipAlphaMin'),
  { key: 'dareq.search', field: 'search', check: oneOf(SEARCH_MODES), expect: `one of ${SEARCH_MODES.join(', ')}` },
  { key: 'dareq.normalize', field: 'normalize', check: (v) => typeof v === 'boolean', expect: 'true or false' },
  { key: 'quantization.symmetric', field: 'symmetric', check: (v) => typeof v === 'boolean', expect: 'true or false' },
  { key: 'quantization.signAware', field: 'signAware', check: (v) => typeof v === 'boolean', expect: 'true or false' },
  knob('refine', 'refine', 'quantization.refine'),
  { key: 'quantization.weighting', field: 'weighting', check: oneOf(WEIGHTINGS), expect: `one of ${WEIGHTINGS.join(', ')}` },
];

/**
 * Reads the settings a user has set (unset ones come from the preset, then the defaults, exactly
 * as CLI flags do), with `overrides` (e.g. the method of the command that was run) on top.
 */
export function readRunConfig(read: ConfigReader, overrides: SettingsInput = {}): RunConfig {
  const input: Record<string, unknown> = {};
  const problems: string[] = [];
  let format: OutputFormat = 'fake';
  let include: string | undefined;
  let exclude: string | undefined;
  for (const spec of SETTING_SPECS) {
    const v = read(spec.key);
    if (v === undefined || v === null) continue;
    if (!spec.check(v)) {
      problems.push(`weightlens.${spec.key} must be ${spec.expect} (got ${JSON.stringify(v)}); using the default`);
      continue;
    }
    if (spec.field === 'format') format = v as OutputFormat;
    else if (spec.field === 'include') include = (v as string) || undefined;
    else if (spec.field === 'exclude') exclude = (v as string) || undefined;
    else input[spec.field] = v;
  }
  let settings: QuantSettings;
  try {
    settings = resolveSettings({ ...(input as SettingsInput), ...overrides });
  } catch (e) {
    problems.push(`${(e as Error).message}; using the defaults`);
    settings = resolveSettings(overrides);
  }
  return { settings, format, include, exclude, problems };
}

export function panelSettings(c: RunConfig, compute: { backend: string; problem?: string } = { backend: 'auto' }): PanelSettings {
  const s = c.settings;
  return {
    method: s.method,
    bits: s.bits,
    groupSize: s.groupSize,
    preset: s.preset,
    lambdaEntropy: s.lambdaEntropy,
    format: c.format,
    compute: compute.backend,
    problems: compute.problem ? [...c.problems, compute.problem] : c.problems,
  };
}

const FORMAT_NAMES: Record<OutputFormat, string> = { fake: 'fake-quant', 'compressed-tensors': 'compressed-tensors', gguf: 'GGUF' };

export function describeSettings(s: QuantSettings, format: OutputFormat): string {
  const method = s.method === 'rtn' ? l10n.t('round-to-nearest') : `DARE-Q (${s.preset})`;
  const group = s.groupSize > 0 ? l10n.t('groups of {0}', s.groupSize) : l10n.t('per-channel');
  return l10n.t('{0}, {1}-bit, {2}, {3}', method, s.bits, group, FORMAT_NAMES[format]);
}

export { DEFAULTS };

export interface EwqConfig {
  budgetGB: number | undefined;
  thresholdFactor: number;
  entropyEpsilon: number;
  variant: '8-4' | '4-3';
  autoAnalyzeMaxGB: number;
  problems: string[];
}

/** `weightlens.ewq.*`, validated like the quantization settings. */
export function readEwqConfig(read: ConfigReader): EwqConfig {
  const problems: string[] = [];
  const get = <T>(key: string, ok: (v: unknown) => boolean, expect: string, dflt: T): T => {
    const v = read(key);
    if (v === undefined || v === null) return dflt;
    if (!ok(v)) {
      problems.push(`weightlens.${key} must be ${expect} (got ${JSON.stringify(v)}); using the default`);
      return dflt;
    }
    return v as T;
  };
  return {
    budgetGB: get<number | undefined>('ewq.memoryBudgetGB', num(0, 1e9), 'a number of GB >= 0, or null for no budget', undefined),
    thresholdFactor: get('ewq.thresholdFactor', num(0, 100), 'a number >= 0', 1),
    entropyEpsilon: get('ewq.entropyEpsilon', num(0, 1), 'a number from 0 to 1', 0.01),
    variant: get<'8-4' | '4-3'>('ewq.variant', oneOf(['8-4', '4-3']), 'one of 8-4, 4-3', '8-4'),
    autoAnalyzeMaxGB: get('ewq.autoAnalyzeMaxGB', num(0, 1e9), 'a number of GB >= 0', 2),
    problems,
  };
}

export const COMPUTE_BACKENDS = ['auto', 'webgpu', 'cpu'] as const;
export type ComputeBackend = (typeof COMPUTE_BACKENDS)[number];

/** `weightlens.compute.backend`, validated like the rest (a bad value is reported, `auto` used). */
export function readComputeBackend(read: ConfigReader): { backend: ComputeBackend; problem?: string } {
  const v = read('compute.backend');
  if (v === undefined || v === null) return { backend: 'auto' };
  if (typeof v === 'string' && (COMPUTE_BACKENDS as readonly string[]).includes(v)) return { backend: v as ComputeBackend };
  return {
    backend: 'auto',
    problem: `weightlens.compute.backend must be one of ${COMPUTE_BACKENDS.join(', ')} (got ${JSON.stringify(v)}); using auto`,
  };
}
