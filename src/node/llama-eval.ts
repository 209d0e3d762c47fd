/**
 * Perplexity in llama.cpp itself, through node-llama-cpp (an optional dependency, loaded only here):
 * the text is tokenized by the model's own tokenizer, cut into non-overlapping windows, each
 * evaluated from BOS in a fresh sequence, and every token of a window scored given the ones before
 * it: PPL = exp(mean -log p), p from llama.cpp's softmax of its raw logits (no sampling options).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CancelledError, WeightlensError } from '../core/errors';

// Types only: the module itself is imported at run time, when an evaluation starts.
type NodeLlamaCpp = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;
type Token = import('node-llama-cpp').Token;

export interface LlamaRuntime {
  readonly llama: Llama;
  readonly version: string;
  dispose(): Promise<void>;
}

/** A real dynamic import (a bundler would turn `import(variable)` into a require of an ES module). */
const importUrl = new Function('u', 'return import(u)') as (u: string) => Promise<NodeLlamaCpp>;

/** The global node_modules (npm install -g), if npm is there to say where. */
function globalModules(): string | undefined {
  try {
    return (
      execFileSync('npm', ['root', '-g'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/**
 * node-llama-cpp with its prebuilt CPU binary: nothing is downloaded or built. Found at `modulePath`
 * (a package folder) when given, else beside Weightlens, else in the global node_modules.
 */
export async function openLlamaRuntime(modulePath?: string): Promise<LlamaRuntime> {
  const fromFolder = (dir: string) => importUrl(pathToFileURL(path.join(dir, 'dist', 'index.js')).href);
  let mod: NodeLlamaCpp | undefined;
  const tried: string[] = [];
  if (modulePath) {
    mod = await fromFolder(modulePath).catch((e: Error) => void tried.push(`${modulePath}: ${e.message.split('\n')[0]}`));
    if (!mod) throw new WeightlensError(`no usable node-llama-cpp at weightlens.llamaCpp.modulePath (${tried[0]})`);
  }
  mod ??= await import('node-llama-cpp').catch((e: Error) => void tried.push(e.message.split('\n')[0]));
  if (!mod) {
    const global = globalModules();
    if (global) mod = await fromFolder(path.join(global, 'node-llama-cpp')).catch(() => undefined);
  }
  if (!mod)
    throw new WeightlensError(
      `perplexity runs llama.cpp through node-llama-cpp, which is not installed here (npm install -g node-llama-cpp, or set weightlens.llamaCpp.modulePath; ${tried[0] ?? 'not found'})`,
    );
  let llama: Llama;
  try {
    llama = await mod.getLlama({
      gpu: false,
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: mod.LlamaLogLevel.error,
    });
  } catch (e) {
    throw new WeightlensError(
      `node-llama-cpp has no prebuilt llama.cpp binary for ${process.platform}-${process.arch} (${(e as Error).message.split('\n')[0]})`,
    );
  }
  return { llama, version: mod.getModuleVersion ? await mod.getModuleVersion() : 'unknown', dispose: () => llama.dispose() };
}

export interface LoadedModel {
  readonly model: LlamaModel;
  readonly path: string;
  readonly vocabSize: number;
  readonly bos: number;
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}

export async function loadModel(rt: LlamaRuntime, modelPath: string, display = modelPath): Promise<LoadedModel> {
  let model: LlamaModel;
  try {
    model = await rt.llama.loadModel({ modelPath, gpuLayers: 0 });
  } catch (e) {
    throw new WeightlensError(`llama.cpp could not load it (${(e as Error).message.split('\n')[0]})`, display);
  }
  const bos = model.tokens.bos;
  if (bos === null) {
    await model.dispose();
    throw new WeightlensError('has no BOS token; perplexity windows start from BOS', display);
  }
  return {
    model,
    path: modelPath,
    vocabSize: (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: readonly string[] } } }).tokenizer?.ggml?.tokens?.length ?? 0,
    bos,
    tokenize: (text) => [...model.tokenize(text)].map(Number),
    dispose: () => model.dispose(),
  };
}

export interface PerplexityOptions {
  /** Tokens per window, BOS included. */
  readonly ctx: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (scored: number, total: number) => void;
  /**
   * Keep every scored position's whole distribution (positions x vocabulary floats: for small
   * vocabularies, as the benchmark's sample), to measure other models' KL divergence against it.
   */
  readonly keepDistributions?: boolean;
  /** A reference's kept distributions on the same tokens: the result gets mean KL(reference || this model). */
  readonly reference?: Float32Array;
}

export interface PerplexityResult {
  readonly perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  readonly nll: number;
  readonly tokens: number;
  readonly windows: number;
  readonly ctx: number;
  readonly seconds: number;
  /** With keepDistributions: [position][token] probabilities. */
  readonly distributions?: Float32Array;
  /** With a reference: mean over positions of KL(reference || this model), nats. */
  readonly kl?: number;
}

/**
 * Probabilities held at once (positions per controlledEvaluate call x vocabulary): about 1M map
 * entries, so a 512-token vocabulary scores a whole window per call and a 128K one 8 positions.
 */
const PROBABILITIES_PER_CALL = 1 << 20;

/** The smallest positive float32: the floor of a probability llama.cpp reports as 0. */
const MIN_PROBABILITY = 2 ** -149;

/** Non-overlapping windows of ctx - 1 text tokens (BOS makes ctx). */
export function windowsOf(tokens: readonly number[], ctx: number): number[][] {
  const size = ctx - 1;
  const out: number[][] = [];
  for (let i = 0; i + 1 < tokens.length; i += size) {
    const w = tokens.slice(i, i + size);
    if (w.length > 0) out.push(w);
  }
  return out;
}

export async function perplexity(m: LoadedModel, tokens: readonly number[], o: PerplexityOptions): Promise<PerplexityResult> {
  const t0 = performance.now();
  if (o.ctx < 2) throw new WeightlensError(`--ctx must be at least 2 (got ${o.ctx})`);
  const windows = windowsOf(tokens, o.ctx);
  if (windows.length === 0) throw new WeightlensError('the text has no tokens to score');
  // Room beyond the window: a context exactly as long as the window drops its oldest tokens.
  const context = await m.model.createContext({
    contextSize: o.ctx + 256,
    threads: o.threads ?? 1,
    batchSize: Math.min(o.ctx + 256, 512),
    sequences: 1,
  });
  const total = windows.reduce((a, w) => a + w.length, 0);
  const V = m.vocabSize;
  const kept = o.keepDistributions ? new Float32Array(total * V) : undefined;
  if (o.reference && o.reference.length !== total * V)
    throw new Error(`internal: reference distributions of ${o.reference.length} floats for ${total} positions x ${V} tokens`);
  let scored = 0;
  let sumNll = 0;
  let sumKl = 0;
  let position = 0;
  try {
    const seq = context.getSequence();
    const piece = Math.max(1, Math.floor(PROBABILITIES_PER_CALL / Math.max(1, m.vocabSize)));
    for (const w of windows) {
      if (o.signal?.aborted) throw new CancelledError('evaluation cancelled');
      await seq.clearHistory();
      const input = [m.bos, ...w];
      // In pieces: each scored position returns the whole vocabulary's probabilities (llama.cpp's
      // softmax of the raw logits: no sampling options are given), so a piece bounds the memory.
      for (let start = 0; start + 1 < input.length; start += piece) {
        if (o.signal?.aborted) throw new CancelledError('evaluation cancelled');
        const end = Math.min(start + piece, input.length - 1);
        const items = input.slice(start, end).map((tok) => [tok as Token, { generateNext: { probabilities: true } }] as const);
        const out = await seq.controlledEvaluate(items as unknown as Parameters<typeof seq.controlledEvaluate>[0]);
        for (let i = start; i < end; i++) {
          const probs = out[i - start]?.next?.probabilities;
          if (!probs) throw new Error(`internal: llama.cpp returned no probabilities for token ${i} of a window`);
          // A token the model gives exactly 0 (underflow in f32) costs what the smallest float would.
          sumNll -= Math.log(Math.max(probs.get(input[i + 1] as Token) ?? 0, MIN_PROBABILITY));
          if (kept) for (const [tok, p] of probs) kept[position * V + Number(tok)] = p;
          if (o.reference) {
            // KL(P || Q) = sum P log(P / Q) over the reference's tokens; Q floored like the NLL.
            const ref = o.reference;
            let kl = 0;
            for (let t = 0; t < V; t++) {
              const p = ref[position * V + t];
              if (p > 0) kl += p * Math.log(p / Math.max(probs.get(t as Token) ?? 0, MIN_PROBABILITY));
            }
            sumKl += kl;
          }
          position++;
        }
      }
      scored += w.length;
      o.onProgress?.(scored, total);
    }
  } finally {
    await context.dispose();
  }
  const nll = sumNll / scored;
  return {
    perplexity: Math.exp(nll),
    nll,
    tokens: scored,
    windows: windows.length,
    ctx: o.ctx,
    seconds: (performance.now() - t0) / 1000,
    ...(kept ? { distributions: kept } : {}),
    ...(o.reference ? { kl: sumKl / position } : {}),
  };
}
