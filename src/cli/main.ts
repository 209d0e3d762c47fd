/**
 * The `weightlens` CLI. Its flags, JSON shapes and exit codes are a contract other tools and the
 * tests rely on: exit 0 on success; exit 1 with one line `error: ...` on stderr (no stack trace,
 * no output left behind) on bad input or bad flags.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, oneLine, WeightlensError } from '../core/errors';
import { inspectModel, type InspectSummary } from '../core/inspect';
import { inspectGgufFile } from '../node/checkpoint';
import { OUTPUT_FORMATS, type OutputFormat } from '../core/plan';
import {
  MAX_GROUP_SIZE,
  METHODS,
  PRESET_NAMES,
  SEARCH_MODES,
  WEIGHTINGS,
  resolveSettings,
  type Method,
  type Preset,
  type SearchMode,
  type SettingsInput,
  type Weighting,
} from '../core/quant/settings';
import { removeLiveTempsSync } from '../node/atomic-output';
import { runTag } from '../node/output-paths';
import { gpuForBackend } from './backend';
import type { NodeGpu } from '../compute/webgpu/node-device';
import { gpuSearches } from '../compute/backend';
import { resolveModelPath } from '../node/model-path';
import { openModel } from '../node/open-model';
import { readTextFile } from '../node/input-file';
import { quantize } from '../node/quantize';
import { parsePlanFile, settingsFromPlan } from '../core/ewq/apply';
import { FASTEWQ_HELP, PLAN_HELP, runFastEwq, runPlan } from './plan-command';
import { parseChoice, parseFlags, parseNumber } from './args';
import { formatBytes, formatCount, pad } from './format';
import { makeProgress } from './progress';
import { COMPARE_HELP, EVAL_HELP, INSPECT_HELP, MAIN_HELP, QUANTIZE_HELP } from './usage';
import { compareCheckpoints, formatComparison } from '../node/compare';
import { evaluateModels } from '../node/evaluate';

declare const WEIGHTLENS_VERSION: string;
const VERSION = typeof WEIGHTLENS_VERSION === 'string' ? WEIGHTLENS_VERSION : '0.0.0-dev';

class UsageError extends Error {}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  errIsTty: boolean;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  errIsTty: Boolean(process.stderr.isTTY),
};

export async function main(argv: string[], io: Io = defaultIo, signal?: AbortSignal): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h') {
      io.out(MAIN_HELP);
      return cmd === undefined ? 1 : 0;
    }
    if (cmd === '--version' || cmd === '-v') {
      io.out(`${VERSION}\n`);
      return 0;
    }
    if (cmd === 'help') {
      const texts: Record<string, string> = {
        quantize: QUANTIZE_HELP,
        inspect: INSPECT_HELP,
        plan: PLAN_HELP,
        fastewq: FASTEWQ_HELP,
        eval: EVAL_HELP,
        compare: COMPARE_HELP,
      };
      io.out(texts[rest[0]] ?? MAIN_HELP);
      return 0;
    }
    if (cmd === 'inspect') return await runInspect(rest, io);
    if (cmd === 'quantize') return await runQuantize(rest, io, signal);
    if (cmd === 'plan') return await runPlan(rest, io, signal);
    if (cmd === 'fastewq') return await runFastEwq(rest, io);
    if (cmd === 'eval') return await runEval(rest, io, signal);
    if (cmd === 'compare') return await runCompare(rest, io, signal);
    throw new UsageError(`unknown command "${cmd}" (expected inspect, quantize, plan, eval, compare or fastewq; see weightlens --help)`);
  } catch (e) {
    if (e instanceof CancelledError) {
      io.err(`error: ${e.message}\n`);
      return 130;
    }
    if (e instanceof WeightlensError || e instanceof UsageError || isParseArgsError(e) || isFsError(e)) {
      io.err(`error: ${oneLine(e)}\n`);
      return 1;
    }
    // A bug, not bad input: still one line, plus where to look.
    io.err(`error: internal error: ${oneLine(e)} (set WEIGHTLENS_DEBUG=1 for a stack trace)\n`);
    if (process.env.WEIGHTLENS_DEBUG) io.err(`${(e as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

function isParseArgsError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function isFsError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof (e as { syscall?: unknown }).syscall === 'string';
}

function onePath(positionals: string[], cmd: string): string {
  if (positionals.length !== 1)
    throw new UsageError(`${cmd} takes exactly one PATH (got ${positionals.length}; see weightlens help ${cmd})`);
  return positionals[0];
}

async function runInspect(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(INSPECT_HELP);
    return 0;
  }
  const file = await resolveModelPath(onePath(positionals, 'inspect'), { gguf: true });
  const { summary, close } = await summaryOf(file);
  try {
    if (values.json) {
      io.out(JSON.stringify(summary, null, 2) + '\n');
      return 0;
    }
    const lines: string[] = [];
    lines.push(
      `${file}: ${summary.files.length} file(s), ${formatBytes(summary.totalBytes)}, ${formatCount(summary.totalParams)} parameters, ${summary.tensors.length} tensors`,
    );
    for (const [d, v] of Object.entries(summary.byDtype))
      lines.push(
        `  ${pad(d, 8)} ${pad(formatCount(v.params), 9)} params  ${formatBytes(v.bytes)}  ${v.params ? ((v.bytes * 8) / v.params).toFixed(2) : '0'} bits/weight`,
      );
    const meta = Object.entries(summary.metadata);
    if (meta.length) lines.push(`metadata: ${meta.map(([k, v]) => `${k}=${v.length > 60 ? v.slice(0, 57) + '...' : v}`).join(', ')}`);
    lines.push(`blocks: ${summary.blocks.length}${summary.other.length ? `; outside blocks: ${summary.other.join(', ')}` : ''}`);
    // A loop, not Math.max(...names): a header of a million tensors overflows the call stack.
    let width = 0;
    for (const t of summary.tensors) width = Math.max(width, Math.min(64, t.name.length));
    for (const t of summary.tensors)
      lines.push(`  ${pad(t.name, width)}  ${pad(t.dtype, 7)} ${pad(JSON.stringify(t.shape), 16)} ${formatBytes(t.bytes)}`);
    io.out(lines.join('\n') + '\n');
    return 0;
  } finally {
    await close();
  }
}

/** What inspect shows: a safetensors model from its headers, or a GGUF from its header. */
async function summaryOf(file: string): Promise<{ summary: InspectSummary; close: () => Promise<void> }> {
  if (file.endsWith('.gguf')) return { summary: await inspectGgufFile(file), close: async () => {} };
  const opened = await openModel(file);
  return { summary: inspectModel(opened.model), close: () => opened.close() };
}

async function runQuantize(args: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseFlags(
    args,
    {
      method: { type: 'string' },
      preset: { type: 'string' },
      bits: { type: 'string' },
      'group-size': { type: 'string' },
      'lambda-weight': { type: 'string' },
      'lambda-entropy': { type: 'string' },
      normalize: { type: 'boolean' },
      bins: { type: 'string' },
      grid: { type: 'string' },
      'clip-alpha-min': { type: 'string' },
      search: { type: 'string' },
      asymmetric: { type: 'boolean' },
      'sign-aware': { type: 'boolean' },
      refine: { type: 'string' },
      weighting: { type: 'string' },
      format: { type: 'string' },
      include: { type: 'string' },
      exclude: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      force: { type: 'boolean' },
      plan: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (v.help) {
    io.out(QUANTIZE_HELP);
    return 0;
  }
  const input = await resolveModelPath(onePath(positionals, 'quantize'), { gguf: false });
  refuseIgnoredFlags(v);
  const format = parseChoice<OutputFormat>('format', v.format, OUTPUT_FORMATS) ?? 'fake';
  // GGUF: blocks of 32 weights; --bits 16/32 is a plain F16/F32 conversion.
  let ggufFloat: 'F16' | 'F32' | undefined;
  if (format === 'gguf') {
    if (v['group-size'] !== undefined && v['group-size'] !== '32')
      throw new UsageError(`GGUF blocks hold 32 weights: --group-size must be 32 (got "${v['group-size']}")`);
    v['group-size'] = '32';
    if (v.bits === '16' || v.bits === '32') {
      ggufFloat = v.bits === '16' ? 'F16' : 'F32';
      v.bits = undefined;
    }
  }
  const input_: SettingsInput = {
    method: parseChoice<Method>('method', v.method, METHODS),
    preset: parseChoice<Preset>('preset', v.preset, PRESET_NAMES),
    bits: parseNumber('bits', v.bits, { integer: true }),
    groupSize: parseNumber('group-size', v['group-size'], { integer: true, min: 0, max: MAX_GROUP_SIZE }),
    lambdaWeight: parseNumber('lambda-weight', v['lambda-weight'], { integer: false }),
    lambdaEntropy: parseNumber('lambda-entropy', v['lambda-entropy'], { integer: false }),
    normalize: v.normalize,
    bins: parseNumber('bins', v.bins, { integer: true }),
    grid: parseNumber('grid', v.grid, { integer: true }),
    clipAlphaMin: parseNumber('clip-alpha-min', v['clip-alpha-min'], { integer: false }),
    search: parseChoice<SearchMode>('search', v.search, SEARCH_MODES),
    symmetric: v.asymmetric === undefined ? undefined : !v.asymmetric,
    signAware: v['sign-aware'],
    refine: parseNumber('refine', v.refine, { integer: true }),
    weighting: parseChoice<Weighting>('weighting', v.weighting, WEIGHTINGS),
  };
  const settings = resolveSettings(input_);
  const threads = parseNumber('threads', v.threads, { integer: true }) ?? os.availableParallelism();
  if (threads < 1 || threads > 256) throw new UsageError(`--threads must be from 1 to 256 (got ${threads})`);
  // A plan sets each block's bit width (raw blocks are copied); the other knobs still apply.
  let settingsFor: ((name: string) => ReturnType<typeof resolveSettings> | undefined) | undefined;
  if (v.plan) {
    const planFile = parsePlanFile(await readTextFile(path.resolve(v.plan), v.plan), v.plan);
    settingsFor = settingsFromPlan(
      planFile.blocks,
      v['group-size'] === undefined && planFile.groupSize !== undefined ? { ...settings, groupSize: planFile.groupSize } : settings,
    );
  }
  // A GPU only ranks the candidates of the exhaustive search (see gpuSearches). quantize opens it
  // once the input is read and the output claimed: Dawn takes a moment to start, and a bad input or
  // a taken output is reported without waiting for it (or its driver's warnings).
  let gpu: NodeGpu | undefined;
  const progress = makeProgress(io, Boolean(v.quiet));
  let result: Awaited<ReturnType<typeof quantize>>;
  try {
    result = await quantize({
      input,
      settings,
      format,
      include: v.include,
      exclude: v.exclude,
      out: v.out,
      report: v.report,
      force: v.force,
      threads,
      workerScript: threads > 1 ? path.join(__dirname, 'worker.js') : undefined,
      signal,
      onProgress: (p) => progress.update({ fraction: p.fraction, done: p.doneBytes, total: p.totalBytes, what: p.tensor }),
      settingsFor,
      openSearch: async () => (gpu = await gpuForBackend(v.backend, gpuSearches(settings)))?.search,
      plan: v.plan ? path.resolve(v.plan) : undefined,
      ggufFloat,
      tag: runTag(settings, { plan: v.plan !== undefined, ggufFloat }),
      version: VERSION,
    });
  } finally {
    gpu?.search.dispose();
    gpu?.device.destroy();
  }
  progress.done();
  const searchBackend = gpu?.search;
  const r = result.report;
  if (r.settings.gpuFailure)
    io.err(`warning: WebGPU stopped (${r.settings.gpuFailure}); the rest was searched on the CPU, with the same result\n`);
  const sq = r.tensors.map((t) => t.sqnrDb).filter((x): x is number => x !== null);
  const meanSqnr = sq.length ? sq.reduce((a, b) => a + b, 0) / sq.length : NaN;
  io.out(
    [
      `wrote ${result.outputPath}${result.outputIsFolder ? '/' : ''} (${formatBytes(r.summary.outputBytes)})`,
      `report ${result.reportPath}`,
      `${r.summary.tensorsQuantized} tensors quantized (${settings.method} ${v.plan ? `${[...new Set(r.tensors.map((t) => t.bits))].sort((a, b) => a - b).join('/') || 'no'}-bit by the EWQ plan` : `${settings.bits}-bit`}, group ${settings.groupSize || 'per-channel'}${settings.method === 'dareq' ? `, preset ${settings.preset}` : ''}; ${searchBackend ? `scale search on WebGPU: ${searchBackend.description}` : 'CPU'}), ${r.summary.tensorsCopied} copied; mean SQNR ${Number.isNaN(meanSqnr) ? 'n/a' : meanSqnr.toFixed(2) + ' dB'}; ${r.summary.seconds.toFixed(2)} s, ${formatCount(Math.round(r.summary.weightsPerSecond))} weights/s`,
    ].join('\n') + '\n',
  );
  return 0;
}

async function runEval(args: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    text: { type: 'string' },
    ctx: { type: 'string' },
    'max-tokens': { type: 'string' },
    threads: { type: 'string' },
    compare: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    io.out(EVAL_HELP);
    return 0;
  }
  const model = onePath(positionals, 'eval');
  const progress = makeProgress(io, Boolean(v.quiet));
  const r = await evaluateModels({
    models: v.compare ? [model, v.compare] : [model],
    textFile: v.text,
    ctx: parseNumber('ctx', v.ctx, { integer: true, min: 2, max: 1 << 20 }),
    maxTokens: parseNumber('max-tokens', v['max-tokens'], { integer: true, min: 2 }),
    threads: parseNumber('threads', v.threads, { integer: true, min: 1, max: 256 }) ?? 1,
    signal,
    version: VERSION,
    onProgress: (m, done, total) => progress.update({ fraction: total ? done / total : 1, done, total, what: path.basename(m) }, 'tokens'),
  });
  progress.done();
  if (v.json) {
    io.out(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  const lines = r.results.map(
    (x) =>
      `perplexity ${x.perplexity.toFixed(4)}  ${x.model} (${formatBytes(x.bytes)}): ${x.tokens} tokens in ${x.windows} window(s) of ${x.ctx}, ${x.seconds.toFixed(1)} s`,
  );
  if (r.ratio !== undefined)
    lines.push(
      `ratio ${r.ratio.toFixed(4)} (${r.ratio >= 1 ? '+' : ''}${((r.ratio - 1) * 100).toFixed(2)}%): ${r.results[1].model} against ${r.results[0].model}, same ${r.results[0].tokens} tokens of ${r.text}`,
    );
  io.out(lines.join('\n') + '\n');
  return 0;
}

async function runCompare(args: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    json: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    io.out(COMPARE_HELP);
    return 0;
  }
  if (positionals.length !== 2)
    throw new UsageError(`compare takes two checkpoints, A (the reference) and B (got ${positionals.length}; see weightlens help compare)`);
  const progress = makeProgress(io, Boolean(v.quiet));
  const c = await compareCheckpoints(positionals[0], positionals[1], {
    signal,
    onProgress: (done, total, tensor) => progress.update({ fraction: total ? done / total : 1, done, total, what: tensor }, 'weights'),
  });
  progress.done();
  io.out(v.json ? JSON.stringify(c, null, 2) + '\n' : formatComparison(c));
  return 0;
}

/** Flags that only DARE-Q's search reads. */
const SEARCH_FLAGS = ['preset', 'lambda-weight', 'lambda-entropy', 'normalize', 'bins', 'grid', 'clip-alpha-min', 'search'] as const;

/** A flag the run would not use is an error, not a silent no-op. */
function refuseIgnoredFlags(v: Record<string, unknown>): void {
  if (v.method === 'rtn' || v.method === 'hqq') {
    const given = SEARCH_FLAGS.filter((f) => v[f] !== undefined);
    if (given.length)
      throw new UsageError(
        v.method === 'rtn'
          ? `--${given[0]} applies to DARE-Q's scale search only; round-to-nearest (--method rtn) has none: drop it, or use --method dareq`
          : `--${given[0]} applies to DARE-Q's scale search only; HQQ (--method hqq) has its own solver: drop it, or use --method dareq`,
      );
  }
  if (v.plan !== undefined && v.bits !== undefined)
    throw new UsageError("--bits does not apply with --plan: the plan sets each block's bits (weightlens plan --variant)");
}

/** Entry point when run as a program: signals cancel the run and remove temporary output. */
export function runAsProgram(): void {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    controller.abort();
    if (signals > 1) {
      removeLiveTempsSync();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', removeLiveTempsSync);
  // `weightlens inspect BIG | head`: a reader that stops early is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    removeLiveTempsSync();
    process.exit(0);
  });
  main(process.argv.slice(2), defaultIo, controller.signal).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`error: internal error: ${oneLine(e)}\n`);
      process.exitCode = 1;
    },
  );
}
