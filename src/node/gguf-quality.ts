/**
 * The GGUF quality table of the benchmark (and of the test that guards it): one model exported to
 * F32 GGUF, quantized by llama.cpp's own quantizer and by Weightlens's (RTN and the DARE-Q default)
 * to the same tensor types, every file's perplexity measured in llama.cpp on the same tokens.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LlamaFileType } from '../core/formats/gguf';
import { resolveSettings } from '../core/quant/settings';
import { evaluateModels } from './evaluate';
import { llamaQuantize } from './llama-quantize';
import { quantize } from './quantize';

export interface QualityRow {
  readonly name: string;
  readonly file: string;
  readonly bytes: number;
  readonly perplexity: number;
  /** perplexity / the F32 export's perplexity - 1 */
  readonly increase: number;
}

export async function ggufQualityTable(
  model: string,
  dir: string,
  opts: { textFile?: string; threads?: number; version: string },
): Promise<QualityRow[]> {
  const f32 = path.join(dir, 'f32.gguf');
  const q = (name: string) => path.join(dir, `${name}.gguf`);
  const base = { input: model, format: 'gguf' as const, version: opts.version, threads: opts.threads ?? 1 };
  await quantize({
    ...base,
    settings: resolveSettings({ method: 'rtn', groupSize: 32 }),
    ggufFloat: 'F32',
    out: f32,
    report: `${f32}.json`,
    force: true,
  });
  llamaQuantize(f32, q('llamacpp-q8_0'), LlamaFileType.MOSTLY_Q8_0);
  llamaQuantize(f32, q('llamacpp-q4_0'), LlamaFileType.MOSTLY_Q4_0);
  const ours: [string, number, 'rtn' | 'dareq'][] = [
    ['weightlens-q8_0-rtn', 8, 'rtn'],
    ['weightlens-q8_0-dareq', 8, 'dareq'],
    ['weightlens-q4_0-rtn', 4, 'rtn'],
    ['weightlens-q4_0-dareq', 4, 'dareq'],
  ];
  for (const [name, bits, method] of ours) {
    await quantize({
      ...base,
      settings: resolveSettings({ method, bits, groupSize: 32 }),
      out: q(name),
      report: `${q(name)}.json`,
      force: true,
    });
  }
  const rows: [string, string][] = [
    ['F32 (Weightlens export)', f32],
    ['llama.cpp Q8_0', q('llamacpp-q8_0')],
    ['Weightlens Q8_0, RTN', q('weightlens-q8_0-rtn')],
    ['Weightlens Q8_0, DARE-Q default', q('weightlens-q8_0-dareq')],
    ['llama.cpp Q4_0', q('llamacpp-q4_0')],
    ['Weightlens Q4_0, RTN', q('weightlens-q4_0-rtn')],
    ['Weightlens Q4_0, DARE-Q default', q('weightlens-q4_0-dareq')],
  ];
  const out: QualityRow[] = [];
  for (const [name, file] of rows) {
    const r = await evaluateModels({ models: [file], textFile: opts.textFile, version: opts.version, threads: opts.threads });
    out.push({ name, file, bytes: (await fsp.stat(file)).size, perplexity: r.results[0].perplexity, increase: 0 });
  }
  const ref = out[0].perplexity;
  return out.map((r) => ({ ...r, increase: r.perplexity / ref - 1 }));
}
