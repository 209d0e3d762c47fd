/**
 * `npm run bench`: throughput of the quantizers on the same data in one run, and an end-to-end
 * quantize of a generated checkpoint against the time to simply read it. Prints a table and writes
 * bench-results.json. Quote the ratios: absolute figures move with the machine and its load.
 *
 *   node dist/bench.js [--smoke] [--e2e-size 2GB] [--rows N] [--cols N] [--out FILE]
 */
import { estimateTensorStats } from '../src/node/estimate-tensor';
import { openModel } from '../src/node/open-model';
import { defaultReportPath } from '../src/node/output-paths';
import { streamTensor } from '../src/node/stream-tensor';
import { selectTargets } from '../src/core/select';
import { sqnrHalfWidth } from '../src/core/quant/estimate';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeFloats } from '../src/core/dtypes';
import type { QuantJob } from '../src/core/quant/job';
import { quantizeMatrix } from '../src/core/quant/matrix';
import { resolveSettings, type QuantSettings, type SettingsInput } from '../src/core/quant/settings';
import { makeScratch, searchCoarseToFine, searchScale } from '../src/core/quant/search';
import { scalesFromChoices } from '../src/core/quant/scales';
import { generateModel, layersForSize, GENERATE_DEFAULTS } from '../src/node/generate-model';
import { JobPool } from '../src/node/pool';
import { openNodeGpu } from '../src/compute/webgpu/node-device';
import { WebGpuQuantizer } from '../src/compute/webgpu/quantize';
import { WebGpuEntropy } from '../src/compute/webgpu/entropy';
import { softmaxEntropy } from '../src/core/ewq/entropy';
import { fillNormals, mulberry32 } from '../src/core/random';
import { peersOf, qualityTable, QUALITY_FORMATS, type QualityRow } from '../src/node/quality-table';

const root = path.resolve(__dirname, '..');
/** Generated models are made on worker threads (dist/generate-worker.js beside this bundle). */
const GENERATE_RUN = { workerScript: path.join(__dirname, 'generate-worker.js') };
/** The fifth session's default: an entropy term (every candidate's histogram counts) and plain scales. */
const WITH_ENTROPY: SettingsInput = { preset: 'clip', lambdaEntropy: 0.01, signAware: false };

function matrix(rows: number, cols: number, seed = 7): Float32Array {
  const out = new Float32Array(rows * cols);
  fillNormals(out, mulberry32(seed), 0.02);
  for (let r = 0; r < rows; r += 37) for (let c = 0; c < cols; c++) out[r * cols + c] *= 12;
  return out;
}

/**
 * Algorithm 1 as a plain loop (the baseline the issue quotes): per group, K candidates, each a pass
 * for the residuals and their range, a fresh B-bin histogram and its entropy — typed arrays, none
 * of the search's tricks (pruning, visiting order, the entropy summed while counting).
 */
function naiveAlgorithm1(w: Float32Array, rows: number, cols: number, s: QuantSettings): number {
  const qmin = -(2 ** (s.bits - 1));
  const qmax = 2 ** (s.bits - 1) - 1;
  const g = s.groupSize > 0 ? s.groupSize : cols;
  const e = new Float64Array(g);
  let acc = 0;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += g) {
      const off = r * cols + c0;
      const n = Math.min(g, cols - c0);
      let absmax = 0;
      let msq = 0;
      for (let i = 0; i < n; i++) {
        absmax = Math.max(absmax, Math.abs(w[off + i]));
        msq += w[off + i] * w[off + i];
      }
      msq /= n;
      const lo = (s.clipAlphaMin * absmax) / qmax;
      const hi = absmax / qmax;
      let best = Infinity;
      let bestS = hi;
      for (let k = 0; k < s.grid; k++) {
        const sc = lo + ((hi - lo) * k) / (s.grid - 1);
        let l2 = 0;
        let mn = Infinity;
        let mx = -Infinity;
        for (let i = 0; i < n; i++) {
          const x = w[off + i];
          e[i] = x - Math.min(qmax, Math.max(qmin, Math.floor(x / sc + 0.5))) * sc;
          l2 += e[i] * e[i];
          mn = Math.min(mn, e[i]);
          mx = Math.max(mx, e[i]);
        }
        l2 /= n;
        const hist = new Int32Array(s.bins);
        if (mx > mn) for (let i = 0; i < n; i++) hist[Math.min(s.bins - 1, Math.floor(((e[i] - mn) / (mx - mn)) * s.bins))]++;
        let h = 0;
        for (let b = 0; b < s.bins; b++) if (hist[b] > 0) h -= (hist[b] / n) * Math.log(hist[b] / n + 1e-10);
        const loss = (s.lambdaWeight * l2) / msq + (s.lambdaEntropy * h) / Math.log(s.bins);
        if (loss < best) {
          best = loss;
          bestS = sc;
        }
      }
      acc += bestS;
    }
  }
  return acc;
}

/**
 * What the coarse-to-fine search gives up, on the same matrix: per group, its loss against the
 * exhaustive search's minimum, and the quantization error (sum of squares) of the whole matrix.
 * Measured with an entropy term (λH 0.01): without one, coarse-to-fine returns the exact sweep.
 */
function coarseGap(w: Float32Array, rows: number, cols: number): Record<string, number> {
  const exact = resolveSettings(WITH_ENTROPY);
  const coarse = resolveSettings({ ...WITH_ENTROPY, search: 'coarse-to-fine' });
  const g = exact.groupSize;
  const se = makeScratch(g, exact.bins);
  const sc = makeScratch(g, exact.bins);
  let groups = 0;
  let differ = 0;
  let gapSum = 0;
  let gapMax = 0;
  for (let off = 0; off + g <= rows * cols; off += g) {
    let absmax = 0;
    let sq = 0;
    for (let i = 0; i < g; i++) {
      absmax = Math.max(absmax, Math.abs(w[off + i]));
      sq += w[off + i] * w[off + i];
    }
    if (absmax === 0) continue;
    const group = { w, off, n: g, absmax, msq: sq / g };
    const a = searchScale(group, exact, se);
    const b = searchCoarseToFine(group, coarse, sc);
    const gap = (b.loss - a.loss) / a.loss;
    groups++;
    if (a.index !== b.index) differ++;
    gapSum += gap;
    gapMax = Math.max(gapMax, gap);
  }
  const e2 = (s: QuantSettings) =>
    quantizeMatrix(Float32Array.from(w.subarray(0, rows * cols)), rows, cols, { settings: s, dtype: 'F32', tensor: 'w' }).stats.sumE2;
  return {
    groups,
    groupsWithAnotherScale: differ,
    meanLossGap: gapSum / groups,
    maxLossGap: gapMax,
    mseIncrease: e2(coarse) / e2(exact) - 1,
  };
}

function time(fn: () => void, minMs = 300): number {
  // One call untimed (the JIT compiles the hot loops on it: in the smoke run's 50 ms that first
  // call alone weighed more than the rest), then repeat until at least minMs has passed.
  fn();
  let calls = 0;
  const t0 = performance.now();
  do {
    fn();
    calls++;
  } while (performance.now() - t0 < minMs);
  return (performance.now() - t0) / 1000 / calls;
}

/**
 * Seconds for the matrix on a pool of `threads` workers, in row blocks: the mean of five passes
 * after a first, so that neither the workers' start nor their JIT's first compile is counted (a
 * real quantize keeps one pool for every tensor), and a mean as time() takes for one thread. One
 * pass is a fraction of a second: timed alone, it put 2 threads anywhere from 0.9x to 1.9x of one.
 */
async function threaded(w: Float32Array, rows: number, cols: number, s: QuantSettings, threads: number): Promise<number> {
  const raw = encodeFloats('F32', w);
  const pool = new JobPool(threads, path.join(root, 'dist', 'worker.js'));
  try {
    await onPool(pool, raw, rows, cols, s, threads);
    const t0 = performance.now();
    for (let pass = 0; pass < 5; pass++) await onPool(pool, raw, rows, cols, s, threads);
    return (performance.now() - t0) / 1000 / 5;
  } finally {
    await pool.close();
  }
}

async function onPool(pool: JobPool, raw: Uint8Array, rows: number, cols: number, s: QuantSettings, threads: number): Promise<void> {
  const per = Math.ceil(rows / (threads * 4));
  const jobs: Promise<unknown>[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const job: QuantJob = {
      file: 'bench',
      tensor: 'w',
      dtype: 'F32',
      raw: raw.slice(r * cols * 4, (r + n) * cols * 4),
      rows: n,
      cols,
      transposed: false,
      rowBase: r,
      settings: s,
      output: 'fake',
    };
    jobs.push(pool.run(job));
  }
  await Promise.all(jobs);
}

function peakRssOf(cmd: string, args: string[]): Promise<{ seconds: number; peakRssMB: number; code: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let peak = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // the process has exited
      }
    }, 50);
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed: ${err}`));
      resolve({ seconds: (performance.now() - t0) / 1000, peakRssMB: peak, code: code ?? -1 });
    });
  });
}

/**
 * The overview's two phases on a model, as the inspector runs them with the shared pool: the
 * estimate of every cell, two cells at a time, timed; the exact rate on two cells, to say how long
 * the background refinement takes.
 */
async function overviewTimes(model: string): Promise<Record<string, number>> {
  const opened = await openModel(model);
  // The extension host's shared pool (src/extension/jobs.ts).
  const threads = Math.max(2, os.availableParallelism() - 1);
  const pool = new JobPool(threads, path.join(root, 'dist', 'worker.js'));
  try {
    const settings = resolveSettings();
    const targets = [...selectTargets(opened.model.tensors, {})];
    const t0 = performance.now();
    const widths: number[] = [];
    let exactCells = 0;
    const queue = [...targets];
    const next = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [name, view] = item;
        const t = opened.model.tensors.find((x) => x.name === name)!;
        const est = await estimateTensorStats(opened, pool, t, view, settings);
        if (est.groups >= est.of) exactCells++;
        else widths.push(sqnrHalfWidth(est));
      }
    };
    await Promise.all([next(), next()]);
    const estimateSeconds = (performance.now() - t0) / 1000;
    widths.sort((a, b) => a - b);
    // The exact refinement's rate, from two cells (q_proj and k_proj of the first block), for the
    // time the background pass takes over every cell.
    const timed = targets.filter(([n]) => /layers\.0\.self_attn\.[qk]_proj/.test(n));
    const t1 = performance.now();
    let weights = 0;
    for (const [name, view] of timed) {
      const t = opened.model.tensors.find((x) => x.name === name)!;
      weights += t.numel;
      await streamTensor(opened, pool, t, view, settings, { output: 'fake' }, () => undefined);
    }
    const exactRate = weights / ((performance.now() - t1) / 1000);
    const allWeights = targets.reduce((a, [n]) => a + opened.model.tensors.find((x) => x.name === n)!.numel, 0);
    return {
      cells: targets.length,
      threads,
      estimateSeconds,
      exactCells,
      medianHalfWidthDb: widths.length ? widths[Math.floor(widths.length / 2)] : 0,
      maxHalfWidthDb: widths.length ? widths[widths.length - 1] : 0,
      exactWeightsPerSecond: exactRate,
      exactSeconds: allWeights / exactRate,
    };
  } finally {
    await pool.close();
    await opened.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean' },
      'overview-layers': { type: 'string' },
      'e2e-size': { type: 'string' },
      rows: { type: 'string' },
      cols: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const smoke = Boolean(values.smoke);
  const rows = Number(values.rows ?? (smoke ? 64 : 512));
  const cols = Number(values.cols ?? (smoke ? 512 : 4096));
  const w = matrix(rows, cols);
  const n = rows * cols;
  const results: Record<string, unknown>[] = [];
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} threads, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
  console.log(`machine: ${machine}\nmatrix: ${rows} x ${cols} float32 with outlier rows (${(n / 1e6).toFixed(2)}M weights)\n`);

  const variants: [string, SettingsInput][] = [
    ['rtn', { method: 'rtn' }],
    ['dareq clip', { preset: 'clip' }],
    ['dareq paper', { preset: 'paper' }],
    ['dareq reference', { preset: 'reference' }],
    // The default until the sixth session: its entropy term made every candidate's histogram count.
    ['dareq clip, λH 0.01, plain scales', WITH_ENTROPY],
    // Coarse-to-fine only approximates where there is an entropy term (at λH 0 it is the exact sweep).
    ['dareq clip, λH 0.01, coarse-to-fine', { ...WITH_ENTROPY, search: 'coarse-to-fine' }],
  ];
  const rate: Record<string, number> = {};
  for (const [name, input] of variants) {
    const s = resolveSettings(input);
    const sec = time(() => quantizeMatrix(Float32Array.from(w), rows, cols, { settings: s, dtype: 'F32', tensor: 'w' }), smoke ? 50 : 500);
    rate[`${name} 1t`] = n / sec;
    results.push({ variant: name, backend: 'cpu', threads: 1, weightsPerSecond: n / sec });
  }
  console.log(
    `exact DARE-Q default, one thread: ${(rate['dareq clip 1t'] / 1e6).toFixed(2)} M weights/s, ${(rate['dareq clip 1t'] / rate['dareq clip, λH 0.01, plain scales 1t']).toFixed(2)}x the fifth session's default (λH 0.01, plain scales), ${(rate['rtn 1t'] / rate['dareq clip 1t']).toFixed(1)}x RTN's time`,
  );
  const threads = os.availableParallelism();
  if (threads > 1) {
    for (const [name, input] of variants.slice(0, 2)) {
      const s = resolveSettings(input);
      const sec = await threaded(w, rows, cols, s, threads);
      rate[`${name} ${threads}t`] = n / sec;
      results.push({ variant: name, backend: 'cpu', threads, weightsPerSecond: n / sec });
    }
  }
  // The WebGPU search, where an adapter exists (on a machine without a GPU: SwiftShader, a CPU
  // Vulkan, which measures correctness costs, not GPU speed). Groups it cannot decide with
  // certainty are searched on the CPU: that share is reported too.
  const gpu = await openNodeGpu().catch(() => undefined);
  let gpuInfo: Record<string, unknown> | undefined;
  if (gpu) {
    const s = resolveSettings({ preset: 'clip' });
    const grows = smoke ? rows : Math.min(rows, 64);
    const part = w.subarray(0, grows * cols);
    const t0 = performance.now();
    const found = (await gpu.search.search(part, grows, cols, s))!;
    const searchSec = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    quantizeMatrix(Float32Array.from(part), grows, cols, {
      settings: s,
      dtype: 'F32',
      tensor: 'w',
      found,
    });
    const cpuSec = (performance.now() - t1) / 1000;
    const groups = found.choices.length;
    // The CPU's share alone, warm (the scales from the GPU's choices, contenders scored in float64):
    // what the panel's web workers do per block, scaled to a 4096 x 14336 tensor on one core.
    const absmax = new Float32Array(groups);
    for (let gi = 0; gi < groups; gi++)
      for (let i = 0; i < s.groupSize; i++) absmax[gi] = Math.max(absmax[gi], Math.abs(part[gi * s.groupSize + i]));
    const shareSec = time(() => scalesFromChoices(part, grows, cols, s, 'F32', absmax, found), smoke ? 20 : 300);
    const shareFor4096x14336 = (shareSec * (4096 * 14336)) / (grows * cols);
    rate[`dareq clip webgpu+cpu`] = (grows * cols) / (searchSec + cpuSec);
    gpuInfo = {
      adapter: gpu.description,
      fallbackAdapter: gpu.isFallback,
      groups,
      groupsLeftToCpu: found.undecided,
      candidates: groups * s.grid,
      candidatesScoredOnCpu: found.rescored,
      searchSeconds: searchSec,
      cpuSeconds: cpuSec,
      cpuShareSecondsFor4096x14336: shareFor4096x14336,
    };
    results.push({
      variant: 'dareq clip',
      backend: 'webgpu',
      adapter: gpu.description,
      weightsPerSecond: (grows * cols) / (searchSec + cpuSec),
      groups,
      groupsLeftToCpu: found.undecided,
      candidatesScoredOnCpu: found.rescored,
      candidates: groups * s.grid,
      gpuSeconds: searchSec,
      cpuSeconds: cpuSec,
    });
    // The other kernels: RTN quantization with statistics (group absmax -> scales -> codes, values,
    // error terms) and EWQ's entropy partials, each against its CPU path on the same data.
    const qz = new WebGpuQuantizer(gpu.device, gpu.search);
    const rtn = resolveSettings({ method: 'rtn' });
    await qz.quantizeBlock(part, grows, cols, rtn, 'F32'); // compile the pipelines before timing
    const tq = performance.now();
    await qz.quantizeBlock(w, rows, cols, rtn, 'F32');
    rate['rtn webgpu'] = n / ((performance.now() - tq) / 1000);
    results.push({
      variant: 'rtn (codes, values, statistics)',
      backend: 'webgpu',
      adapter: gpu.description,
      weightsPerSecond: rate['rtn webgpu'],
    });
    qz.dispose();
    const ent = new WebGpuEntropy(gpu.device);
    await ent.entropy(part, 0.01);
    const te = performance.now();
    const hGpu = await ent.entropy(w, 0.01);
    rate['ewq entropy webgpu'] = n / ((performance.now() - te) / 1000);
    const ecpu = time(() => softmaxEntropy(w, 0.01), smoke ? 20 : 300);
    rate['ewq entropy 1t'] = n / ecpu;
    const hCpu = softmaxEntropy(w, 0.01);
    results.push({
      variant: 'ewq entropy',
      backend: 'webgpu',
      adapter: gpu.description,
      weightsPerSecond: rate['ewq entropy webgpu'],
      entropyDiff: Math.abs(hGpu - hCpu),
    });
    results.push({ variant: 'ewq entropy', backend: 'cpu', threads: 1, weightsPerSecond: rate['ewq entropy 1t'] });
    ent.dispose();
    gpu.search.dispose();
    gpu.device.destroy();
  }
  // The naive baseline on a slice (it is hundreds of times slower).
  const nrows = Math.max(1, Math.floor(rows / (smoke ? 8 : 32)));
  const ns = resolveSettings({ preset: 'clip' });
  const naiveSec = time(() => naiveAlgorithm1(w, nrows, cols, ns), smoke ? 20 : 300);
  rate['naive algorithm 1 1t'] = (nrows * cols) / naiveSec;
  results.push({
    variant: 'naive algorithm 1 (clip range, K 100, B 256)',
    backend: 'cpu',
    threads: 1,
    weightsPerSecond: (nrows * cols) / naiveSec,
  });
  const gap = coarseGap(w, smoke ? rows : Math.min(rows, 128), cols);

  console.log('variant                         weights/s');
  for (const [k, v] of Object.entries(rate)) console.log(`${k.padEnd(32)}${(v / 1e6).toFixed(3).padStart(9)} M`);
  const ratios = {
    dareqClipOverRtnTime: rate['rtn 1t'] / rate['dareq clip 1t'],
    dareqClipSpeedupOverNaive: rate['dareq clip 1t'] / rate['naive algorithm 1 1t'],
    coarseToFineOverRtnTime: rate['rtn 1t'] / rate['dareq clip, λH 0.01, coarse-to-fine 1t'],
    coarseToFineSpeedup: rate['dareq clip, λH 0.01, coarse-to-fine 1t'] / rate['dareq clip, λH 0.01, plain scales 1t'],
    threadScaling: threads > 1 ? rate[`dareq clip ${threads}t`] / rate['dareq clip 1t'] : 1,
  };
  if (gpuInfo) {
    const g = gpuInfo as {
      adapter: string;
      fallbackAdapter: boolean;
      groups: number;
      groupsLeftToCpu: number;
      candidates: number;
      candidatesScoredOnCpu: number;
      searchSeconds: number;
      cpuSeconds: number;
      cpuShareSecondsFor4096x14336: number;
    };
    console.log(
      `\nWebGPU (${g.adapter}${g.fallbackAdapter ? ', a software fallback adapter' : ''}): ${g.groupsLeftToCpu} of ${g.groups} groups left to the CPU, ` +
        `${g.candidatesScoredOnCpu} of ${g.candidates} candidates (${((100 * g.candidatesScoredOnCpu) / g.candidates).toFixed(2)}%) scored there; GPU ${g.searchSeconds.toFixed(2)} s, CPU ${g.cpuSeconds.toFixed(2)} s; ` +
        `the CPU's share warm, scaled to a 4096 x 14336 tensor: ${g.cpuShareSecondsFor4096x14336.toFixed(2)} s on one core`,
    );
  }
  console.log(
    `\nDARE-Q (clip) takes ${ratios.dareqClipOverRtnTime.toFixed(1)}x the time of RTN; it is ${ratios.dareqClipSpeedupOverNaive.toFixed(1)}x faster than the naive loop; ${threads} threads give ${ratios.threadScaling.toFixed(2)}x`,
  );
  console.log(
    `coarse-to-fine search at λH 0.01: ${ratios.coarseToFineOverRtnTime.toFixed(1)}x the time of RTN (${ratios.coarseToFineSpeedup.toFixed(2)}x faster than exhaustive); ` +
      `another scale in ${gap.groupsWithAnotherScale} of ${gap.groups} groups, loss +${(100 * gap.meanLossGap).toFixed(3)}% on average (at most +${(100 * gap.maxLossGap).toFixed(2)}%), squared error +${(100 * gap.mseIncrease).toFixed(3)}%`,
  );

  let e2e: Record<string, unknown> | undefined;
  const size = values['e2e-size'] ?? (smoke ? '8MB' : undefined);
  if (size) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wl-bench-'));
    try {
      const bytes =
        Number(/^(\d+(?:\.\d+)?)/.exec(size)![1]) *
        ({ MB: 1e6, GB: 1e9 } as Record<string, number>)[size.replace(/^[\d.]+/, '').toUpperCase()];
      const o = { ...GENERATE_DEFAULTS, hidden: smoke ? 256 : 2048, intermediate: smoke ? 704 : 5632 };
      const model = await generateModel(dir, { ...o, layers: layersForSize(bytes, o) }, GENERATE_RUN);
      const fileBytes = (await fsp.stat(model)).size;
      // Both the best of three: the generated file's pages are still being written back at first.
      const best = (cmd: string) => {
        let sec = Infinity;
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          execFileSync('sh', ['-c', cmd]);
          sec = Math.min(sec, (performance.now() - t0) / 1000);
        }
        return sec;
      };
      execFileSync('sync');
      const catSec = best(`cat '${model}' > /dev/null`);
      // The floor for any tool that writes a new checkpoint: read the file and write it again (not
      // copyFile: that may reflink and write nothing).
      const copy = path.join(dir, 'copy.safetensors');
      const copySec = best(`cat '${model}' > '${copy}'`);
      await fsp.rm(copy, { force: true });
      e2e = { fileBytes, catSeconds: catSec, copySeconds: copySec };
      console.log(
        `\nend to end: weightlens quantize of a ${(fileBytes / 1e9).toFixed(2)} GB bf16 checkpoint (cat > /dev/null: ${catSec.toFixed(2)} s; a copy of the file: ${copySec.toFixed(2)} s = ${(copySec / catSec).toFixed(1)}x cat)`,
      );
      let rtnSec = 0;
      // With a hardware GPU (which auto takes for the search), the same run on the CPU beside it.
      const hardwareGpu = gpuInfo !== undefined && gpuInfo.fallbackAdapter === false;
      const runs: Record<string, string[]> = {
        rtn: ['--method', 'rtn'],
        exhaustive: ['--method', 'dareq', '--search', 'exhaustive'],
        ...(hardwareGpu ? { 'exhaustive cpu': ['--method', 'dareq', '--search', 'exhaustive', '--backend', 'cpu'] } : {}),
      };
      for (const [search, how] of Object.entries(runs)) {
        const out = path.join(dir, 'out.safetensors');
        const run = await peakRssOf(process.execPath, [
          path.join(root, 'bin', 'weightlens.js'),
          'quantize',
          model,
          ...how,
          '--quiet',
          '--force',
          '--out',
          out,
        ]);
        if (search === 'rtn') rtnSec = run.seconds;
        // Where the run computed (auto: a hardware GPU where there is one, for the search).
        const reportPath = defaultReportPath(out);
        const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { settings: { backend: string } };
        const backend = report.settings.backend;
        e2e[search] = {
          backend,
          seconds: run.seconds,
          bytesPerSecond: fileBytes / run.seconds,
          quantizeOverCat: run.seconds / catSec,
          quantizeOverCopy: run.seconds / copySec,
          overRtn: run.seconds / rtnSec,
          peakRssMB: run.peakRssMB,
        };
        console.log(
          `  ${how.join(' ')} (${backend}): ${run.seconds.toFixed(1)} s (${(fileBytes / run.seconds / 1e6).toFixed(1)} MB/s), ${(run.seconds / catSec).toFixed(1)}x the time of cat (${(run.seconds / copySec).toFixed(1)}x a copy), ${(run.seconds / rtnSec).toFixed(1)}x RTN's, peak RSS ${run.peakRssMB.toFixed(0)} MB`,
        );
        await fsp.rm(out, { force: true });
        await fsp.rm(reportPath, { force: true });
      }
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  // The inspector's overview of a 7B-shaped model: every cell estimated from a sample of its groups.
  let overview: Record<string, unknown> | undefined;
  {
    const layers = Number(values['overview-layers'] ?? (smoke ? 2 : 32));
    const shape = smoke
      ? { hidden: 512, intermediate: 1792, vocab: 4096, heads: 8, kvHeads: 2 }
      : { hidden: 4096, intermediate: 14336, vocab: 32000, heads: 32, kvHeads: 8 };
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wl-overview-'));
    try {
      const g0 = performance.now();
      const model = await generateModel(
        dir,
        {
          ...GENERATE_DEFAULTS,
          ...shape,
          layers,
          dtype: 'BF16',
          shards: Math.max(1, Math.ceil(layers / 4)),
        },
        GENERATE_RUN,
      );
      const genSec = (performance.now() - g0) / 1000;
      overview = { layers, ...shape, generateSeconds: genSec, ...(await overviewTimes(model)) };
      const ov = overview as {
        cells: number;
        estimateSeconds: number;
        exactCells: number;
        maxHalfWidthDb: number;
        medianHalfWidthDb: number;
        exactSeconds: number;
      };
      console.log(
        `\noverview of a generated ${layers}-layer ${shape.hidden}/${shape.intermediate} bf16 model (${ov.cells} cells): every cell shown in ${ov.estimateSeconds.toFixed(1)} s ` +
          `(${ov.exactCells} exact at once, the rest estimated; 99% SQNR interval half-width median ${ov.medianHalfWidthDb.toFixed(3)} dB, at most ${ov.maxHalfWidthDb.toFixed(3)} dB); ` +
          `the exact values then take ~${ov.exactSeconds.toFixed(0)} s in the background`,
      );
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  // Quality in a real runtime: every format, peers' quantizers beside ours, scored by llama.cpp.
  let quality: QualityRow[] | undefined;
  {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wl-quality-'));
    try {
      console.log(
        `\nQuality: stories260K, llama.cpp (node-llama-cpp, CPU) on data/eval/stories.txt — perplexity, and the mean KL divergence of each\n` +
          `next-token distribution from the F32 model's (nats); bits per weight of the quantized linear weights:`,
      );
      const rows = await qualityTable(path.join(root, 'samples', 'stories260K', 'model.safetensors'), dir, { version: 'bench' });
      quality = rows;
      let last = '';
      for (const r of rows) {
        if (r.format !== last) console.log(`  ${r.format}`);
        last = r.format;
        console.log(
          `    ${r.name.padEnd(30)} ppl ${r.perplexity.toFixed(4)} ${r.increase === 0 ? '        ' : `${r.increase >= 0 ? '+' : ''}${(100 * r.increase).toFixed(2)}%`.padStart(8)}` +
            `  KL ${r.kl.toExponential(2).padStart(9)}${r.bitsPerWeight ? `  ${r.bitsPerWeight.toFixed(3)} bpw` : ''}`,
        );
      }
      for (const f of QUALITY_FORMATS) {
        const def = rows.find((r) => r.format === f.id && r.kind === 'default')!;
        const beaten = peersOf(rows, f.id).map(
          (p) =>
            `${p.name}: ppl ${def.perplexity < p.perplexity ? 'better' : 'WORSE'} ${(100 * (def.perplexity / p.perplexity - 1)).toFixed(2)}%, KL ${def.kl < p.kl ? 'better' : 'WORSE'} ${(100 * (def.kl / p.kl - 1)).toFixed(1)}%`,
        );
        console.log(`  the default against the ${f.id} peers — ${beaten.join('; ')}`);
      }
    } catch (e) {
      console.log(`\nllama.cpp quality table skipped: ${(e as Error).message.split('\n')[0]}`);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  const out = values.out ?? path.join(root, 'bench-results.json');
  await fsp.writeFile(
    out,
    JSON.stringify(
      {
        machine,
        date: new Date().toISOString(),
        matrix: { rows, cols },
        results,
        ratios,
        coarseToFineGap: gap,
        webgpu: gpuInfo,
        e2e,
        overview,
        quality,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nresults: ${out}`);
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exitCode = 1;
});
