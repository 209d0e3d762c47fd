/**
 * The quantize command's quick pick: the first item is exactly the user's settings, so the common
 * case is the command plus Enter; a few one-step variations follow. Pure, so it is unit-tested.
 */
import type { OutputFormat } from '../core/plan';
import { CT_BITS } from '../core/formats/compressed-tensors';
import type { SettingsInput } from '../core/quant/settings';
import * as l10n from '@vscode/l10n';
import { describeSettings, type RunConfig } from './config';

export interface QuantizeChoice {
  label: string;
  description?: string;
  detail?: string;
  /** Settings on top of the configured ones; undefined for the "open settings" item. */
  overrides?: SettingsInput;
  format?: OutputFormat;
  openSettings?: boolean;
}

export function quantizeChoices(c: RunConfig): QuantizeChoice[] {
  const s = c.settings;
  const choices: QuantizeChoice[] = [
    {
      label: `$(play) ${describeSettings(s, c.format)}`,
      description: l10n.t('your settings'),
      detail: detailOf(c),
      overrides: {},
      format: c.format,
    },
  ];
  const add = (label: string, overrides: SettingsInput, format: OutputFormat = c.format) => {
    const bits = overrides.bits ?? s.bits;
    if (format === 'compressed-tensors' && !CT_BITS.includes(bits)) return;
    // GGUF: Q4_0 / Q8_0, blocks of 32 weights.
    if (format === 'gguf' && bits !== 4 && bits !== 8) return;
    if (format === 'gguf') overrides = { ...overrides, groupSize: 32 };
    choices.push({ label, description: describeSettings({ ...s, ...overrides }, format), overrides, format });
  };
  if (s.bits !== 8) add(`$(arrow-up) ${l10n.t('8-bit instead')}`, { bits: 8 });
  if (s.bits !== 4) add(`$(arrow-down) ${l10n.t('4-bit instead')}`, { bits: 4 });
  if (c.format !== 'gguf' && s.groupSize !== 0) add(`$(symbol-array) ${l10n.t('One scale per output channel')}`, { groupSize: 0 });
  if (c.format !== 'gguf' && s.groupSize !== 128) add(`$(symbol-array) ${l10n.t('Groups of 128')}`, { groupSize: 128 });
  if (c.format === 'fake') add(`$(package) ${l10n.t('As compressed-tensors (vLLM / transformers)')}`, {}, 'compressed-tensors');
  else add(`$(file-binary) ${l10n.t('As fake-quant (same dtype, drop-in)')}`, {}, 'fake');
  if (c.format !== 'gguf') add(`$(server-process) ${l10n.t('As GGUF for llama.cpp (Q4_0 / Q8_0)')}`, {}, 'gguf');
  choices.push({ label: `$(settings-gear) ${l10n.t('Change the defaults in Settings…')}`, openSettings: true });
  return choices;
}

function detailOf(c: RunConfig): string {
  const s = c.settings;
  if (s.method === 'rtn') return l10n.t('absmax scale per group, round to nearest');
  return `λw ${s.lambdaWeight}, λH ${s.lambdaEntropy}, normalize ${s.normalize ? 'on' : 'off'}, B ${s.bins}, K ${s.grid}${s.range === 'clip' ? `, α ${s.clipAlphaMin}` : ''}${s.search === 'exhaustive' ? '' : `, ${s.search} search`}`;
}
