/**
 * `weightlens eval` and the extension's Evaluate Perplexity: one or two models (GGUF, or safetensors
 * converted to a temporary F32 GGUF first) scored on the same tokens of a text.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WeightlensError } from '../core/errors';
import { GgmlType } from '../core/formats/gguf';
import { resolveSettings } from '../core/quant/settings';
import { inspectGgufFile } from './checkpoint';
import { planGgufRun } from './gguf-output';
import { readTextFile } from './input-file';
import { loadModel, openLlamaRuntime, perplexity, type LoadedModel, type PerplexityResult } from './llama-eval';
import { resolveModelPath } from './model-path';
import { openModel } from './open-model';
import { quantize } from './quantize';

/** The bundled evaluation text (short stories in the style of TinyStories, for the sample model). */
export function bundledTextPath(): string {
  // dist/ (CLI, extension) sits beside data/; bundled tests sit deeper.
  for (let d = __dirname; ; d = path.dirname(d)) {
    const p = path.join(d, 'data', 'eval', 'stories.txt');
    if (existsSync(p) || path.dirname(d) === d) return p;
  }
}

export interface EvalRequest {
  readonly models: readonly string[];
  readonly textFile?: string;
  readonly ctx?: number;
  readonly maxTokens?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly version: string;
  /** A node-llama-cpp package folder to run (the extension's setting); else the usual resolution. */
  readonly llamaModulePath?: string;
  readonly onProgress?: (model: string, scored: number, total: number) => void;
  /** Keep the first model's distributions and give every later one its KL divergence from it (small vocabularies). */
  readonly kl?: boolean;
}

export interface ModelEval extends PerplexityResult {
  readonly model: string;
  readonly bytes: number;
}

export interface EvalResult {
  readonly text: string;
  readonly results: readonly ModelEval[];
  /** results[1].perplexity / results[0].perplexity when two models were compared. */
  readonly ratio?: number;
}

/**
 * The file a model is read from (a folder stands for the model in it: model-path.ts), checked from
 * its headers: a GGUF's, or a safetensors model's with its conversion to GGUF planned (config.json,
 * architecture, tokenizer, tensor names). Every model is checked before llama.cpp starts, so a
 * mistyped or unusable second model fails the run at once rather than after the first model's
 * scoring (hours for a large one).
 */
async function evaluableFile(userPath: string): Promise<string> {
  const model = await resolveModelPath(userPath, { gguf: true });
  if (model.endsWith('.gguf')) {
    await inspectGgufFile(path.resolve(model), model);
    return model;
  }
  const opened = await openModel(model);
  try {
    await planGgufRun(opened, { kind: 'float', type: GgmlType.F32 }, () => undefined, {});
  } finally {
    await opened.close();
  }
  return model;
}

async function asGguf(model: string, tmp: string, version: string, signal?: AbortSignal): Promise<string> {
  if (model.endsWith('.gguf')) return model;
  const out = path.join(tmp, `${path.basename(path.dirname(path.resolve(model)))}-${path.basename(model).replace(/\W+/g, '_')}.f32.gguf`);
  await quantize({
    input: model,
    settings: resolveSettings({ method: 'rtn', groupSize: 32 }),
    format: 'gguf',
    ggufFloat: 'F32',
    out,
    report: `${out}.report.json`,
    version,
    signal,
  });
  return out;
}

export async function evaluateModels(req: EvalRequest): Promise<EvalResult> {
  const textFile = req.textFile ?? bundledTextPath();
  const text = await readTextFile(path.resolve(textFile), textFile);
  const ctx = req.ctx ?? 512;
  // Results name the file read.
  const models: string[] = [];
  for (const m of req.models) models.push(await evaluableFile(m));
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'weightlens-eval-'));
  const rt = await openLlamaRuntime(req.llamaModulePath);
  const loaded: LoadedModel[] = [];
  try {
    const results: ModelEval[] = [];
    let tokens: number[] | undefined;
    let reference: Float32Array | undefined;
    for (const m of models) {
      const file = await asGguf(m, tmp, req.version, req.signal);
      const lm = await loadModel(rt, file, m);
      loaded.push(lm);
      if (!tokens) {
        tokens = lm.tokenize(text);
        if (req.maxTokens !== undefined) tokens = tokens.slice(0, req.maxTokens);
      } else if (lm.vocabSize !== loaded[0].vocabSize) {
        throw new WeightlensError(
          `has a vocabulary of ${lm.vocabSize} tokens and ${models[0]} one of ${loaded[0].vocabSize}: perplexities over different tokens do not compare`,
          m,
        );
      }
      const r = await perplexity(lm, tokens, {
        ctx,
        threads: req.threads,
        signal: req.signal,
        onProgress: (s, t) => req.onProgress?.(m, s, t),
        keepDistributions: req.kl && !reference,
        reference,
      });
      const { distributions, ...kept } = r;
      if (req.kl && !reference) reference = distributions;
      results.push({ ...kept, model: m, bytes: (await fsp.stat(file)).size });
      await lm.dispose();
      loaded.pop();
    }
    return { text: textFile, results, ratio: results.length === 2 ? results[1].perplexity / results[0].perplexity : undefined };
  } finally {
    for (const lm of loaded) await lm.dispose().catch(() => undefined);
    await rt.dispose().catch(() => undefined);
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
