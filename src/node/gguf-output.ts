/**
 * A quantize run's GGUF output: read what the conversion needs beside the weights (config.json and
 * the tokenizer), plan every tensor's GGUF name and type, and write the file tensor by tensor —
 * quantized tensors through the same job pool and scale search as the other formats, their codes
 * and f16 scales packed into Q4_0 / Q8_0 blocks exactly as chosen.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { decodeFloats, encodeFloats, MAX_FINITE, isQuantizableFloat } from '../core/dtypes';
import { WeightlensError } from '../core/errors';
import { GgmlType, layoutGguf, type GgufLayout, type GgufValue } from '../core/formats/gguf';
import {
  fileTypeOfPlan,
  ggufArchitecture,
  ggufMetadata,
  permuteRows,
  planGgufTensors,
  type GgufArchitecture,
  type GgufTarget,
  type GgufTensorPlan,
  type HfConfig,
} from '../core/formats/gguf-llama';
import { bpeVocab, llama2cVocab, sentencePieceVocab, type Vocab } from '../core/formats/vocab';
import { readRows, type ModelTensor } from '../core/model';
import type { QuantSettings } from '../core/quant/settings';
import { readTextFile } from './input-file';
import type { OpenModel } from './open-model';

export interface GgufRunPlan {
  readonly arch: GgufArchitecture;
  readonly vocab: Vocab;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: readonly GgufTensorPlan[];
  readonly layout: GgufLayout;
  readonly target: GgufTarget;
}

async function readConfig(dir: string): Promise<{ config: HfConfig; file: string }> {
  const file = path.join(dir, 'config.json');
  try {
    return { config: (await readJson(file)) as HfConfig, file };
  } catch (e) {
    if (e instanceof WeightlensError && /no such file/.test(e.message))
      throw new WeightlensError("GGUF output needs the model's config.json beside the weights (architecture, heads, RoPE)", file);
    throw e;
  }
}

/** The tokenizer files llama.cpp's model types use, most specific first. */
async function readVocab(dir: string, vocabSize: number): Promise<Vocab> {
  const names = await fsp.readdir(dir);
  if (names.includes('tokenizer.model')) {
    const file = path.join(dir, 'tokenizer.model');
    return sentencePieceVocab(await fsp.readFile(file), file);
  }
  const llama2c = names.find((n) => n === 'tokenizer.bin' || /^tok\d+\.bin$/.test(n));
  if (llama2c) {
    const file = path.join(dir, llama2c);
    return llama2cVocab(await fsp.readFile(file), vocabSize, file);
  }
  if (names.includes('tokenizer.json')) {
    const file = path.join(dir, 'tokenizer.json');
    const json = await readJson(file);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const config = names.includes('tokenizer_config.json') ? await readJson(cfgFile) : undefined;
    return bpeVocab(json as Parameters<typeof bpeVocab>[0], config as Parameters<typeof bpeVocab>[1], vocabSize, file);
  }
  throw new WeightlensError(
    "GGUF output needs the model's tokenizer beside the weights (tokenizer.model, tokenizer.json or llama2.c's tokenizer.bin)",
    dir,
  );
}

async function readJson(file: string): Promise<unknown> {
  const text = await readTextFile(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new WeightlensError(`is not valid JSON (${(e as Error).message})`, file);
  }
}

export async function planGgufRun(
  opened: OpenModel,
  target: GgufTarget,
  settingsFor: (t: ModelTensor, bits: number) => QuantSettings | undefined,
  extra: Record<string, string>,
): Promise<GgufRunPlan> {
  const model = opened.model;
  const { config, file } = await readConfig(opened.dir);
  const arch = ggufArchitecture(config, model, file);
  const embed = model.tensors.find((t) => t.name === 'model.embed_tokens.weight');
  if (!embed)
    throw new WeightlensError(
      'has no model.embed_tokens.weight: GGUF output supports Llama-family checkpoints with HF tensor names',
      model.path,
    );
  const vocab = await readVocab(opened.dir, embed.shape[0]);
  if (vocab.tokens.length !== embed.shape[0]) {
    throw new WeightlensError(`the tokenizer has ${vocab.tokens.length} tokens, the embedding ${embed.shape[0]} rows`, model.path);
  }
  const tensors = planGgufTensors(model, arch, target, settingsFor);
  const name = path.basename(opened.dir);
  const metadata = ggufMetadata(arch, vocab, name, fileTypeOfPlan(target, tensors), extra);
  return {
    arch,
    vocab,
    metadata,
    tensors,
    layout: layoutGguf(
      metadata,
      tensors.map((t) => t.info),
    ),
    target,
  };
}

/** A float tensor as F32 or F16 (rows permuted for q/k when asked), in row chunks. */
export async function* convertedTensor(
  opened: OpenModel,
  p: GgufTensorPlan,
  chunkWeights: number,
): AsyncGenerator<{ bytes: Uint8Array; inputBytes: number }> {
  const t = p.tensor;
  if (!isQuantizableFloat(t.dtype)) throw new Error(`internal: ${t.name} is ${t.dtype}`);
  const src = opened.source(t.file);
  const rows = t.shape.length === 2 ? t.shape[0] : 1;
  const cols = t.numel / Math.max(1, rows);
  const to = p.info.type === GgmlType.F16 ? 'F16' : 'F32';
  const check = (values: ArrayLike<number>, row0: number) => {
    if (to !== 'F16') return;
    for (let i = 0; i < values.length; i++) {
      if (!(Math.abs(values[i]) <= MAX_FINITE.F16 + 16)) {
        throw new WeightlensError(
          `row ${row0 + Math.floor(i / cols)} holds ${values[i]}, beyond F16's range; write this model with --bits 32`,
          opened.model.path,
          t.name,
        );
      }
    }
  };
  if (p.permuteHeads !== undefined || t.shape.length < 2) {
    // q/k rows move across the whole tensor: permute it in memory (one attention matrix).
    const raw = await src.read(t.offset, t.byteLength);
    let values = decodeFloats(t.dtype, raw);
    if (p.permuteHeads !== undefined) {
      values = permuteRows(
        values,
        (n) => new (values.constructor as Float32ArrayConstructor)(n),
        t.shape[0],
        t.shape.length === 2 ? cols : 1,
        p.permuteHeads,
      );
    }
    check(values, 0);
    yield { bytes: encodeFloats(to, values), inputBytes: t.byteLength };
    return;
  }
  const step = Math.max(1, Math.floor(chunkWeights / cols));
  for (let r = 0; r < rows; r += step) {
    const n = Math.min(step, rows - r);
    const raw = await readRows(src, t, r, n);
    const values = decodeFloats(t.dtype, raw);
    check(values, r);
    yield { bytes: encodeFloats(to, values), inputBytes: raw.byteLength };
  }
}
