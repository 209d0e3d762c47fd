/** `weightlens plan` and `weightlens fastewq train|evaluate`: EWQ / FastEWQ mixed-precision plans. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { VARIANTS, type Variant } from '../core/ewq/decide';
import { buildModelFile, csvRow, CSV_HEADER, evaluate, loadForest, parseCsv, precisionType, type FastEwqModel } from '../core/ewq/fast';
import { blockSummary, type Plan } from '../core/ewq/plan';
import { WeightlensError } from '../core/errors';
import { PLAN_FORMATS, type OutputFormat } from '../core/plan';
import { writeFileAtomic } from '../node/atomic-output';
import { planModel } from '../node/ewq';
import { WebGpuEntropy } from '../compute/webgpu/entropy';
import { gpuForBackend } from './backend';
import { resolveModelPath } from '../node/model-path';
import { openModel } from '../node/open-model';
import { inputIdentities, resolveTarget } from '../node/output-target';
import { readTextFile } from '../node/input-file';
import { parseFlags, parseNumber } from './args';
import { makeProgress } from './progress';
import { formatBytes, pad } from './format';
import type { Io } from './main';

export const PLAN_HELP = `Usage: weightlens plan PATH [options]

EWQ: the softmax entropy of every weight matrix of every transformer block decides which blocks stay
raw, go to 8-bit or to 4-bit (variant 4-3: 4-bit / 3-bit), then a memory budget adjusts the plan.

  --budget SIZE            fit the model in SIZE (e.g. 3.5GB, 800MB, 2GiB); empty = no budget
  --threshold-factor K     T = mu - K*sigma (default 1)
  --variant 8-4|4-3        precisions of the middle and low blocks (default 8-4)
  --entropy-epsilon X      eps_H in -sum p log(p + eps) (default 0.01; 0 = Shannon entropy)
  --format FORMAT          size the plan as compressed-tensors (default) or fake (no savings)
  --group-size N           group size the sizes assume (default 128)
  --fast                   FastEWQ: decide from the header alone with the shipped classifier
  --model FILE             FastEWQ classifier file (default: the one shipped with Weightlens)
  --json                   print the plan as JSON: {mu, sigma, threshold, blocks, totalBytes, fits, ...}
  --out PLAN.json          write the plan for "weightlens quantize PATH --plan PLAN.json"
  --force                  replace an existing --out file
  --quiet                  no progress on stderr
  --analyze-csv FILE       append this model's EWQ analysis to FILE in FastEWQ's training format
  --name NAME              model name for --analyze-csv rows (default: the folder's name)
  --backend auto|cpu|webgpu  where the entropy partials are computed (default auto: a real GPU when
                           there is one); they are merged in float64 on the CPU either way
`;

export const FASTEWQ_HELP = `Usage: weightlens fastewq train DATA.csv [--out MODEL.json] [--force] [--holdout FILE.csv] [--seed N]
       weightlens fastewq evaluate DATA.csv [--model MODEL.json]

DATA.csv has the columns ${CSV_HEADER} (write rows with: weightlens plan PATH --analyze-csv DATA.csv).
train fits a random forest (ml-random-forest) and reports its accuracy on the held-out rows;
evaluate reports the accuracy of a classifier on rows it did not see.
`;

export function shippedModelPath(): string {
  return path.join(__dirname, '..', 'data', 'fastewq', 'model.json');
}

export function parseSize(flag: string, v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$/i.exec(v);
  if (!m) throw new WeightlensError(`${flag} must be a size like 3.5GB, 800MB or 2GiB (got "${v}")`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const mult: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KIB: 2 ** 10,
    MIB: 2 ** 20,
    GIB: 2 ** 30,
    TIB: 2 ** 40,
  };
  return Math.floor(Number(m[1]) * mult[unit]);
}

export async function readFastModel(file: string): Promise<FastEwqModel> {
  const text = await readTextFile(file);
  let m: FastEwqModel;
  try {
    m = JSON.parse(text) as FastEwqModel;
    loadForest(m);
  } catch (e) {
    throw new WeightlensError(`is not a FastEWQ classifier file (${(e as Error).message})`, file);
  }
  return m;
}

export function planJson(p: Plan): Record<string, unknown> {
  return {
    mu: p.mu,
    sigma: p.sigma,
    threshold: p.threshold,
    blocks: p.blocks.map((b) => ({ ...blockSummary(b), tensors: b.tensors })),
    totalBytes: p.totalBytes,
    fits: p.fits,
    source: p.source,
    model: p.model,
    variant: p.variant,
    thresholdFactor: p.thresholdFactor,
    entropyEpsilon: p.entropyEpsilon,
    format: p.format,
    groupSize: p.groupSize,
    budget: p.budget,
    otherBytes: p.otherBytes,
    rawBytes: p.rawBytes,
  };
}

export async function runPlan(args: string[], io: Io, signal?: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    budget: { type: 'string' },
    'threshold-factor': { type: 'string' },
    variant: { type: 'string' },
    'entropy-epsilon': { type: 'string' },
    format: { type: 'string' },
    'group-size': { type: 'string' },
    fast: { type: 'boolean' },
    model: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    'analyze-csv': { type: 'string' },
    name: { type: 'string' },
    backend: { type: 'string' },
    force: { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    io.out(PLAN_HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new WeightlensError(`plan takes exactly one PATH (got ${positionals.length}; see weightlens help plan)`);
  const variant = (v.variant ?? '8-4') as Variant;
  if (!VARIANTS.includes(variant)) throw new WeightlensError(`--variant must be one of ${VARIANTS.join(', ')} (got "${v.variant}")`);
  const format = (v.format ?? 'compressed-tensors') as OutputFormat;
  if (!PLAN_FORMATS.includes(format)) throw new WeightlensError(`--format must be one of ${PLAN_FORMATS.join(', ')} (got "${v.format}")`);
  if (v.fast && v['analyze-csv']) throw new WeightlensError('--analyze-csv needs the full EWQ analysis; drop --fast');
  const fast = v.fast ? await readFastModel(v.model ?? shippedModelPath()) : undefined;
  // The model first: a bad header is refused before Dawn takes its moment to start.
  const modelPath = await resolveModelPath(positionals[0], { gguf: false });
  const opened = await openModel(modelPath);
  let gpu: Awaited<ReturnType<typeof gpuForBackend>>;
  let entropyBackend: (WebGpuEntropy & { description: string }) | undefined;
  try {
    gpu = await gpuForBackend(v.backend, !v.fast);
    entropyBackend = gpu ? Object.assign(new WebGpuEntropy(gpu.device), { description: gpu.description }) : undefined;
    const progress = makeProgress(io, Boolean(v.quiet) || Boolean(v.json));
    const plan = await planModel(opened, {
      entropyBackend,
      variant,
      thresholdFactor: parseNumber('threshold-factor', v['threshold-factor'], { integer: false, min: 0 }) ?? 1,
      entropyEpsilon: parseNumber('entropy-epsilon', v['entropy-epsilon'], { integer: false, min: 0 }) ?? 0.01,
      format,
      groupSize: parseNumber('group-size', v['group-size'], { integer: true, min: 0 }) ?? 128,
      budget: v.budget === undefined || v.budget === '' ? undefined : parseSize('--budget', v.budget),
      fast,
      signal,
      onProgress: (fraction, tensor) => progress.update({ fraction, done: fraction, total: 1, what: tensor }, 'share'),
    });
    progress.done();
    const inputs = await inputIdentities(opened.inputPaths);
    if (v.out) {
      const target = await resolveTarget(v.out, { role: 'output', defaultName: 'ewq-plan.json', inputs });
      await writeFileAtomic(target.path, JSON.stringify(planJson(plan), null, 2) + '\n', v.force);
    }
    if (v['analyze-csv']) {
      const csv = (await resolveTarget(v['analyze-csv'], { role: 'output', defaultName: 'fastewq-data.csv', inputs })).path;
      await refuseNonCsv(csv, v['analyze-csv']);
      const name = v.name ?? path.basename(path.dirname(path.resolve(modelPath)));
      const exists = await fsp.stat(csv).then(
        () => true,
        () => false,
      );
      const rows = plan.blocks.map((b) =>
        csvRow({ model: name, numBlocks: plan.blocks.length, execIndex: b.execIndex, params: b.params, type: precisionType(b.precision) }),
      );
      await fsp.appendFile(csv, (exists ? '' : CSV_HEADER + '\n') + rows.join('\n') + '\n');
    }
    if (v.json) {
      io.out(JSON.stringify(planJson(plan), null, 2) + '\n');
      return 0;
    }
    const lines = [
      `${plan.source === 'ewq' ? 'EWQ' : 'FastEWQ (from the header alone)'} plan for ${plan.model}: variant ${plan.variant}, ${plan.blocks.length} blocks`,
      plan.mu === null
        ? ''
        : `block entropy mu ${plan.mu.toFixed(9)}, sigma ${plan.sigma!.toExponential(3)}, threshold T = mu - ${plan.thresholdFactor} sigma = ${plan.threshold!.toFixed(9)}`,
      ...plan.blocks.map(
        (b) =>
          `  block ${pad(String(b.index), 4)} exec ${pad(String(b.execIndex), 4)} ${pad(b.entropy === null ? '' : b.entropy.toFixed(9), 12)} ${pad(b.precision, 8)} ${formatBytes(b.bytes)}`,
      ),
      `size: ${formatBytes(plan.rawBytes)} -> ${formatBytes(plan.totalBytes)} as ${plan.format}${plan.budget !== null ? `; budget ${formatBytes(plan.budget)}: ${plan.fits ? 'fits' : 'no plan fits, even with every block ternary'}` : ''}`,
    ].filter(Boolean);
    io.out(lines.join('\n') + '\n');
    return plan.fits ? 0 : 1;
  } finally {
    entropyBackend?.dispose();
    gpu?.search.dispose();
    gpu?.device.destroy();
    await opened.close();
  }
}

/** --analyze-csv appends: only to a new file or to one that is already FastEWQ data. */
async function refuseNonCsv(csv: string, display: string): Promise<void> {
  const head = await fsp.open(csv, 'r').then(
    async (fh) => {
      try {
        const buf = Buffer.alloc(CSV_HEADER.length);
        await fh.read(buf, 0, buf.length, 0);
        return buf.toString('utf8');
      } finally {
        await fh.close();
      }
    },
    () => undefined,
  );
  if (head !== undefined && head !== CSV_HEADER)
    throw new WeightlensError(
      `exists and is not FastEWQ training data (its first line is not "${CSV_HEADER}"); refusing to append to it`,
      display,
    );
}

export async function runFastEwq(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(FASTEWQ_HELP);
    return sub === undefined ? 1 : 0;
  }
  const { values: v, positionals } = parseFlags(rest, {
    out: { type: 'string' },
    holdout: { type: 'string' },
    seed: { type: 'string' },
    model: { type: 'string' },
    force: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new WeightlensError(`fastewq ${sub} takes one DATA.csv`);
  const file = path.resolve(positionals[0]);
  const rows = parseCsv(await readTextFile(file, positionals[0]), positionals[0]);
  if (sub === 'evaluate') {
    const m = await readFastModel(v.model ?? shippedModelPath());
    const acc = evaluate(loadForest(m), rows);
    io.out(`accuracy of the quantize/keep decision on ${rows.length} rows: ${(acc * 100).toFixed(1)}%\n`);
    return 0;
  }
  if (sub !== 'train') throw new WeightlensError(`unknown fastewq command "${sub}" (expected train or evaluate)`);
  const heldOut = v.holdout ? parseCsv(await readTextFile(path.resolve(v.holdout), v.holdout), v.holdout) : [];
  const model = buildModelFile(
    rows,
    heldOut,
    heldOut.length ? `held-out rows of ${path.basename(v.holdout!)}` : 'none',
    parseNumber('seed', v.seed, { integer: true, min: 0 }) ?? 42,
  );
  const inputs = await inputIdentities([file, ...(v.holdout ? [path.resolve(v.holdout)] : [])]);
  const out = (await resolveTarget(v.out ?? 'fastewq-model.json', { role: 'output', defaultName: 'fastewq-model.json', inputs })).path;
  await writeFileAtomic(out, JSON.stringify(model) + '\n', v.force);
  io.out(
    `trained on ${rows.length} rows of ${model.trainedOn.length} model(s); ${model.evaluation.accuracy === null ? 'no held-out rows given (--holdout FILE.csv), so no accuracy is claimed' : `held-out accuracy ${(model.evaluation.accuracy * 100).toFixed(1)}% on ${heldOut.length} rows`}\nwrote ${out}\n`,
  );
  return 0;
}
