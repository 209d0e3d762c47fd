/**
 * Where a run's output goes by default: beside the input, named after the method and bits, never
 * the input's own name. A single file quantized to fake-quant stays one file; a sharded model or a
 * compressed-tensors output is a folder (with config.json), loadable as a model directory.
 */
import * as path from 'node:path';
import type { OutputFormat } from '../core/plan';
import { settingsTag, type QuantSettings } from '../core/quant/settings';

export function modelStem(inputPath: string): string {
  const base = path.basename(inputPath);
  for (const suffix of ['.safetensors.index.json', '.index.json', '.safetensors']) {
    if (base.endsWith(suffix) && base.length > suffix.length) return base.slice(0, -suffix.length);
  }
  return base;
}

export function outputIsFolder(format: OutputFormat, sharded: boolean): boolean {
  // A GGUF is one file whatever the input; safetensors outputs keep the input's shards.
  return format === 'compressed-tensors' || (sharded && format !== 'gguf');
}

/**
 * The output-name tag of a run, for the CLI and the extension alike: a plain float GGUF is named
 * by its type, an EWQ plan's output by the method and "ewq" (its bits vary by block), anything else
 * by its settings (settingsTag).
 */
export function runTag(settings: QuantSettings, o: { plan?: boolean; ggufFloat?: 'F32' | 'F16' } = {}): string {
  if (o.ggufFloat) return o.ggufFloat.toLowerCase();
  if (o.plan) return `${settings.method}-ewq${settings.groupSize > 0 ? `-g${settings.groupSize}` : ''}`;
  return settingsTag(settings);
}

export function defaultOutputPath(
  inputPath: string,
  settings: QuantSettings,
  format: OutputFormat,
  sharded: boolean,
  tag?: string,
): string {
  tag ??= settingsTag(settings);
  const dir = path.dirname(path.resolve(inputPath));
  const stem = modelStem(inputPath);
  if (format === 'gguf') return path.join(dir, `${stem}.${tag}.gguf`);
  if (format === 'compressed-tensors') return path.join(dir, `${stem}.${tag}-ct`);
  if (sharded) return path.join(dir, `${stem}.${tag}`);
  return path.join(dir, `${stem}.${tag}.safetensors`);
}

export function defaultReportPath(outputPath: string): string {
  return `${outputPath.replace(/\.(safetensors|gguf)$/, '')}.report.json`;
}

/** Files beside a model that a loader needs with it (config, tokenizer), copied into folder outputs. */
export const SIDECAR_RE =
  /^(config\.json|generation_config\.json|tokenizer(_config)?\.json|tokenizer\.model|special_tokens_map\.json|added_tokens\.json|vocab\.(json|txt)|merges\.txt|chat_template\.(json|jinja)|preprocessor_config\.json|tok[^/]*\.bin)$/;
