/**
 * The benchmark's quality table (and the test that guards it): one model quantized to each format
 * by llama.cpp's own quantizer (GGUF), an HQQ-style solver (formats with a zero point), RTN and
 * each Weightlens preset, every result scored by llama.cpp on the same tokens — perplexity, and
 * the mean KL divergence of its next-token distributions from the unquantized model's (the less
 * noisy measure on a short text: it compares whole distributions, not one token's probability).
 *
 * GGUF rows are the GGUF files themselves. compressed-tensors rows are the fake-quant output of the
 * same settings, converted to F32 GGUF: a test (compressed-tensors.test.ts) holds it equal, value for
 * value, to the pack-quantized checkpoint dequantized as compressed-tensors does; the checkpoint is
 * written too, for its bits per weight.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LlamaFileType } from '../core/formats/gguf';
import { DEFAULTS, resolveSettings, type SettingsInput } from '../core/quant/settings';
import { evaluateModels } from './evaluate';
import { llamaQuantize } from './llama-quantize';
import { openModel } from './open-model';
import { quantize } from './quantize';

export type QualityFormatId = 'Q4_0' | 'Q4_1' | 'ct sym g32' | 'ct asym g32' | 'ct sym g128' | 'ct asym g128' | 'Q8_0';

interface QualityFormat {
  readonly id: QualityFormatId;
  readonly gguf: boolean;
  readonly bits: 4 | 8;
  readonly groupSize: number;
  readonly symmetric: boolean;
  /** llama.cpp's own quantizer for this format, where it writes it. */
  readonly llama?: LlamaFileType;
}

export const QUALITY_FORMATS: readonly QualityFormat[] = [
  { id: 'Q4_0', gguf: true, bits: 4, groupSize: 32, symmetric: true, llama: LlamaFileType.MOSTLY_Q4_0 },
  { id: 'Q4_1', gguf: true, bits: 4, groupSize: 32, symmetric: false, llama: LlamaFileType.MOSTLY_Q4_1 },
  { id: 'ct sym g32', gguf: false, bits: 4, groupSize: 32, symmetric: true },
  { id: 'ct asym g32', gguf: false, bits: 4, groupSize: 32, symmetric: false },
  { id: 'ct sym g128', gguf: false, bits: 4, groupSize: 128, symmetric: true },
  { id: 'ct asym g128', gguf: false, bits: 4, groupSize: 128, symmetric: false },
  { id: 'Q8_0', gguf: true, bits: 8, groupSize: 32, symmetric: true, llama: LlamaFileType.MOSTLY_Q8_0 },
];

export type QualityRowKind = 'reference' | 'peer' | 'default' | 'preset' | 'variant';

export interface QualityRow {
  readonly format: QualityFormatId | 'F32';
  readonly name: string;
  readonly kind: QualityRowKind;
  readonly file: string;
  /** The whole file (GGUF) or checkpoint's weight files (compressed-tensors). */
  readonly bytes: number;
  /** Bits per weight of the quantized linear weights (codes, scales and zero points). */
  readonly bitsPerWeight?: number;
  readonly perplexity: number;
  /** perplexity / the F32 model's perplexity - 1 */
  readonly increase: number;
  /** Mean KL divergence of next-token distributions from the F32 model's, nats. */
  readonly kl: number;
}

/** The Weightlens rows of a format: the default, the published presets, and each trick alone. */
export function weightlensRows(f: QualityFormat): { name: string; kind: QualityRowKind; input: SettingsInput }[] {
  const base: SettingsInput = { bits: f.bits, groupSize: f.groupSize, symmetric: f.symmetric };
  const rows: { name: string; kind: QualityRowKind; input: SettingsInput }[] = [
    { name: 'Weightlens default', kind: 'default', input: base },
  ];
  if (f.symmetric) {
    rows.push(
      { name: 'Weightlens paper preset', kind: 'preset', input: { ...base, preset: 'paper' } },
      { name: 'Weightlens reference preset', kind: 'preset', input: { ...base, preset: 'reference' } },
      { name: `  sign-aware ${DEFAULTS.signAware ? 'off' : 'on'}`, kind: 'variant', input: { ...base, signAware: !DEFAULTS.signAware } },
    );
  }
  rows.push(
    { name: `  refine ${DEFAULTS.refine > 0 ? 0 : 3}`, kind: 'variant', input: { ...base, refine: DEFAULTS.refine > 0 ? 0 : 3 } },
    {
      name: `  weighting ${DEFAULTS.weighting === 'magnitude' ? 'uniform' : 'magnitude'}`,
      kind: 'variant',
      input: { ...base, weighting: DEFAULTS.weighting === 'magnitude' ? 'uniform' : 'magnitude' },
    },
    {
      name: `  lambda-entropy ${DEFAULTS.lambdaEntropy === 0 ? 0.01 : 0}`,
      kind: 'variant',
      input: { ...base, lambdaEntropy: DEFAULTS.lambdaEntropy === 0 ? 0.01 : 0 },
    },
  );
  return rows;
}

/** Bits per weight of a compressed-tensors checkpoint's quantized linears: packed codes, scales and zero points. */
async function ctBitsPerWeight(file: string): Promise<number> {
  const opened = await openModel(file);
  try {
    let bytes = 0;
    let weights = 0;
    for (const t of opened.model.tensors) {
      if (/\.weight_(packed|scale|zero_point)$/.test(t.name)) bytes += t.byteLength;
      if (t.name.endsWith('.weight_shape')) {
        const raw = await opened.source(t.file).read(t.offset, t.byteLength);
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        weights += Number(dv.getBigInt64(0, true)) * Number(dv.getBigInt64(8, true));
      }
    }
    return (bytes * 8) / weights;
  } finally {
    await opened.close();
  }
}

const GGUF_BPW: Partial<Record<QualityFormatId, number>> = { Q4_0: 4.5, Q4_1: 5, Q8_0: 8.5 };

export async function qualityTable(
  model: string,
  dir: string,
  opts: { textFile?: string; threads?: number; version: string; formats?: readonly QualityFormatId[]; onRow?: (r: QualityRow) => void },
): Promise<QualityRow[]> {
  const threads = opts.threads ?? 1;
  const base = { input: model, version: opts.version, threads, force: true };
  const f32 = path.join(dir, 'f32.gguf');
  await quantize({
    ...base,
    format: 'gguf',
    settings: resolveSettings({ method: 'rtn', groupSize: 32 }),
    ggufFloat: 'F32',
    out: f32,
    report: `${f32}.json`,
  });
  const planned: { format: QualityFormatId | 'F32'; name: string; kind: QualityRowKind; file: string; bytes: number; bpw?: number }[] = [
    { format: 'F32', name: 'F32 (Weightlens export)', kind: 'reference', file: f32, bytes: (await fsp.stat(f32)).size },
  ];
  const formats = QUALITY_FORMATS.filter((f) => !opts.formats || opts.formats.includes(f.id));
  let n = 0;
  for (const f of formats) {
    const rows: { name: string; kind: QualityRowKind; input?: SettingsInput }[] = [];
    if (f.llama !== undefined) rows.push({ name: `llama.cpp ${f.id}`, kind: 'peer' });
    if (!f.symmetric)
      rows.push({ name: 'HQQ-style', kind: 'peer', input: { method: 'hqq', bits: f.bits, groupSize: f.groupSize, symmetric: false } });
    // Plain RTN: absmax / qmax (the classic baseline; llama.cpp's sign-aware rule has its own row), or min-max.
    rows.push({
      name: f.symmetric ? 'RTN (absmax)' : 'RTN (min-max)',
      kind: 'peer',
      input: { method: 'rtn', bits: f.bits, groupSize: f.groupSize, symmetric: f.symmetric, ...(f.symmetric ? { signAware: false } : {}) },
    });
    rows.push(...weightlensRows(f));
    for (const r of rows) {
      const stem = path.join(dir, `${n++}`);
      if (!r.input) {
        const file = `${stem}.gguf`;
        llamaQuantize(f32, file, f.llama!);
        planned.push({ format: f.id, name: r.name, kind: r.kind, file, bytes: (await fsp.stat(file)).size, bpw: GGUF_BPW[f.id] });
        continue;
      }
      const settings = resolveSettings(r.input);
      if (f.gguf) {
        const file = `${stem}.gguf`;
        await quantize({ ...base, format: 'gguf', settings, out: file, report: `${file}.json` });
        planned.push({ format: f.id, name: r.name, kind: r.kind, file, bytes: (await fsp.stat(file)).size, bpw: GGUF_BPW[f.id] });
        continue;
      }
      // The checkpoint (for its size), and the same settings as fake-quant beside the sidecars (for llama.cpp).
      const ct = `${stem}-ct`;
      await quantize({ ...base, format: 'compressed-tensors', settings, out: ct, report: `${ct}.json` });
      const fakeDir = `${stem}-fake`;
      await fsp.mkdir(fakeDir);
      for (const e of await fsp.readdir(path.dirname(model))) {
        if (e === 'config.json' || /^tok.*\.(bin|model|json)$/.test(e))
          await fsp.copyFile(path.join(path.dirname(model), e), path.join(fakeDir, e));
      }
      const file = path.join(fakeDir, 'model.safetensors');
      await quantize({ ...base, format: 'fake', settings, out: file, report: `${file}.json` });
      const ctFile = path.join(ct, 'model.safetensors');
      planned.push({
        format: f.id,
        name: r.name,
        kind: r.kind,
        file,
        bytes: (await fsp.stat(ctFile)).size,
        bpw: await ctBitsPerWeight(ctFile),
      });
    }
  }
  const evals = await evaluateModels({
    models: planned.map((p) => p.file),
    textFile: opts.textFile,
    version: opts.version,
    threads,
    kl: true,
  });
  const ref = evals.results[0].perplexity;
  return planned.map((p, i) => {
    const r = evals.results[i];
    const row: QualityRow = {
      format: p.format,
      name: p.name,
      kind: p.kind,
      file: p.file,
      bytes: p.bytes,
      bitsPerWeight: p.bpw,
      perplexity: r.perplexity,
      increase: r.perplexity / ref - 1,
      kl: r.kl ?? 0,
    };
    opts.onRow?.(row);
    return row;
  });
}

/** The rows of one format that the default must beat: every peer. */
export function peersOf(rows: readonly QualityRow[], format: QualityFormatId): QualityRow[] {
  return rows.filter((r) => r.format === format && r.kind === 'peer');
}
