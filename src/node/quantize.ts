/**
 * The quantize run: open the model (headers only), plan the output, then stream tensor by tensor
 * — whole rows at a time for large tensors — through the job pool into the output files, written
 * under temporary names and renamed when complete. Memory stays bounded by a few chunks whatever
 * the checkpoint's size.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { int32Bytes, int64Bytes, encodeFloats, type QuantizableFloat } from '../core/dtypes';
import { CancelledError, WeightlensError } from '../core/errors';
import { configWithQuantization, packZeroPoints } from '../core/formats/compressed-tensors';
import type { ModelTensor } from '../core/model';
import { planOutput, type OutputFormat, type OutputPlan, type OutputTensor } from '../core/plan';
import type { QuantSettings } from '../core/quant/settings';
import { emptyStats, finishStats, mergeStats, type TensorErrorStats } from '../core/quant/stats';
import { layoutFile } from '../core/safetensors/layout';
import { selectTargets, type MatrixView } from '../core/select';
import { AtomicOutput } from './atomic-output';
import { formatBytes } from '../shared/format';
import { inputIdentities, isWeightlensOutputFolder, resolveTarget } from './output-target';
import { defaultOutputPath, defaultReportPath, outputIsFolder, SIDECAR_RE } from './output-paths';
import { openModel, type OpenModel } from './open-model';
import { JobPool, PRIORITY, type JobRunner } from './pool';
import { CHUNK_WEIGHTS, StreamChain, type GpuCounts, type OnResult, type StreamOptions } from './stream-tensor';
import { convertedTensor, planGgufRun, type GgufRunPlan } from './gguf-output';
import { GgmlType, packQ4_0, packQ4_1, packQ8_0 } from '../core/formats/gguf';
import { QK_K } from '../core/formats/q4k';
import { permuteRows, typeForBits, type GgufTarget, type GgufTensorPlan } from '../core/formats/gguf-llama';
import type { ScaleSearchBackend } from '../compute/backend';

/** A tensor's results, in order, from the run's StreamChain. */
type TensorResults = (onResult: OnResult) => Promise<void>;

/** Copied tensors are streamed in pieces of this size. */
const COPY_PIECE = 16 << 20;

export interface QuantizeProgress {
  /** 0..1 over all tensor bytes (copied and quantized). */
  fraction: number;
  tensor: string;
  doneBytes: number;
  totalBytes: number;
}

export interface QuantizeRequest {
  input: string;
  settings: QuantSettings;
  format: OutputFormat;
  include?: string;
  exclude?: string;
  out?: string;
  report?: string;
  force?: boolean;
  threads?: number;
  /** The worker-thread script (dist/worker.js); without it jobs run in-process. */
  workerScript?: string;
  /** A pool shared with other work (the extension host's); `threads` and `workerScript` are then unused. */
  pool?: JobPool;
  signal?: AbortSignal;
  onProgress?: (p: QuantizeProgress) => void;
  /** Per-tensor settings (mixed precision); undefined keeps a tensor raw. Defaults to `settings` for all. */
  settingsFor?: (name: string) => QuantSettings | undefined;
  /** The mixed-precision plan file behind settingsFor (recorded in the report). */
  plan?: string;
  /** Output-name tag, when the default name should not come from the settings (e.g. a plan). */
  tag?: string;
  /** GGUF only: a plain F32/F16 conversion instead of quantized blocks. */
  ggufFloat?: 'F32' | 'F16';
  /** Runs DARE-Q's scale search (the WebGPU backend); the CPU does everything else, and decides the candidates the GPU could not rule out. */
  searchBackend?: ScaleSearchBackend;
  /**
   * Opens the search backend when there is none in searchBackend: called once the input is read and
   * the output claimed, so that a bad input or a taken output is reported before a GPU starts.
   */
  openSearch?: () => Promise<ScaleSearchBackend | undefined>;
  version: string;
}

export interface TensorReport extends TensorErrorStats {
  name: string;
  bits: number;
  groupSize: number;
  shape: number[];
  dtype: string;
}

export interface QuantizeReport {
  tool: string;
  input: string;
  output: string;
  settings: Record<string, unknown>;
  tensors: TensorReport[];
  summary: {
    inputBytes: number;
    outputBytes: number;
    seconds: number;
    weightsPerSecond: number;
    quantizedWeights: number;
    tensorsQuantized: number;
    tensorsCopied: number;
  };
}

export interface QuantizeResult {
  outputPath: string;
  outputIsFolder: boolean;
  reportPath: string;
  report: QuantizeReport;
}

export async function quantize(req: QuantizeRequest): Promise<QuantizeResult> {
  const t0 = performance.now();
  const opened = await openModel(req.input);
  // A shared pool (the extension host's) is borrowed through a lane; otherwise the run owns one.
  const owned = req.pool ? undefined : new JobPool(req.threads ?? 1, req.workerScript);
  const pool: JobRunner = req.pool ? req.pool.lane(PRIORITY.quantize, req.signal) : owned!;
  const outputs: AtomicOutput[] = [];
  let outPath = '';
  try {
    const model = opened.model;
    const sharded = model.index !== undefined;
    const gguf = req.format === 'gguf' ? await planGguf(opened, req) : undefined;
    const plan = gguf
      ? undefined
      : planOutput(
          model,
          selectTargets(model.tensors, { include: req.include, exclude: req.exclude }),
          req.format,
          req.settingsFor ?? (() => req.settings),
        );
    const isFolder = outputIsFolder(req.format, sharded);

    // Where the files go, checked against the inputs by identity (see output-target.ts).
    const inputs = await inputIdentities(opened.inputPaths);
    const defaultOut = defaultOutputPath(req.input, req.settings, req.format, sharded, req.tag);
    const out = await resolveTarget(req.out ?? defaultOut, { role: 'output', defaultName: path.basename(defaultOut), inputs });
    outPath = out.path;
    const report = await resolveTarget(req.report ?? defaultReportPath(outPath), {
      role: 'report',
      defaultName: path.basename(defaultReportPath(outPath)),
      inputs,
      taken: [out.landing],
    });
    const reportPath = report.path;

    // The output's size is known before its first byte: refuse now rather than fill the disk.
    const files = (plan?.files ?? []).map((f) => {
      const name = isFolder ? (sharded ? f.name : 'model.safetensors') : path.basename(outPath);
      const metadata = outputMetadata(model.files.find((m) => m.name === f.name)!.header.metadata, req);
      return {
        plan: f,
        name,
        metadata,
        layout: layoutFile(
          f.tensors.map((t) => t.spec),
          metadata,
        ),
      };
    });
    const expected = gguf
      ? gguf.layout.totalBytes
      : files.reduce((a, f) => a + f.layout.headerBytes.byteLength + f.layout.byteLengths.reduce((x, y) => x + y, 0), 0) +
        (isFolder ? await sidecarBytes(opened.dir) : 0);
    await checkFreeSpace(out.landing, expected, outPath);

    const replaceable = async (p: string) => {
      const st = await fsp.lstat(p);
      return st.isDirectory() ? isWeightlensOutputFolder(p) : st.isFile() || st.isSymbolicLink();
    };
    outputs.push(
      await AtomicOutput.create(outPath, { isDir: isFolder, force: req.force, mayReplace: replaceable, role: 'output' }).catch((e) =>
        Promise.reject(asOutputError(e, outPath)),
      ),
    );
    outputs.push(
      await AtomicOutput.create(reportPath, { isDir: false, force: req.force, mayReplace: replaceable, role: 'report' }).catch((e) =>
        Promise.reject(asOutputError(e, reportPath)),
      ),
    );
    const [output, reportOut] = outputs;
    if (!req.searchBackend && req.openSearch) req = { ...req, searchBackend: await req.openSearch() };

    const totalBytes = model.tensors.reduce((a, t) => a + t.byteLength, 0);
    const writer = new RunWriter(opened, pool, req, totalBytes);
    const outputNames = new Map(files.map((f) => [f.plan.name, f.name]));
    try {
      if (gguf) await writer.writeGguf(output.tempPath, gguf);
      for (const f of files) await writer.writeFile(output.pathFor(isFolder ? f.name : undefined), f.plan.tensors, f.metadata);
      if (isFolder && plan) await writeFolderExtras(opened, plan, output, outputNames);
    } catch (e) {
      throw asOutputError(e, outPath);
    }

    await opened.checkUnchanged();
    const seconds = (performance.now() - t0) / 1000;
    const outputBytes = await sizeOf(output.tempPath);
    const result = buildReport(req, opened, writer, {
      outPath,
      tensorsQuantized: plan?.quantized.size ?? gguf!.tensors.filter((t) => t.settings).length,
      seconds,
      outputBytes,
      gguf,
    });
    // Output and report are committed together: never one without the other.
    try {
      await fsp.writeFile(reportOut.tempPath, JSON.stringify(result, null, 2) + '\n');
      await AtomicOutput.commitAll(outputs);
    } catch (e) {
      throw asOutputError(e, outPath);
    }
    return { outputPath: outPath, outputIsFolder: isFolder, reportPath, report: result };
  } catch (e) {
    for (const o of outputs) await o.abort().catch(() => undefined);
    throw e;
  } finally {
    await owned?.close();
    await opened.close();
  }
}

/** The GGUF plan of a run: groups of 32 (Q4_0/Q8_0 blocks), 8-bit where llama.cpp keeps 8 bits. */
async function planGguf(opened: OpenModel, req: QuantizeRequest): Promise<GgufRunPlan> {
  if (req.settings.groupSize !== 32)
    throw new WeightlensError(`GGUF blocks hold 32 weights: --group-size must be 32 (got ${req.settings.groupSize})`, opened.model.path);
  const target: GgufTarget = req.ggufFloat
    ? { kind: 'float', type: req.ggufFloat === 'F32' ? GgmlType.F32 : GgmlType.F16 }
    : {
        kind: 'quant',
        bits: typeForBits(req.settings.bits, req.settings.symmetric) === GgmlType.Q8_0 ? 8 : 4,
        asymmetric: !req.settings.symmetric,
      };
  const include = req.include === undefined ? undefined : new RegExp(req.include);
  const exclude = req.exclude === undefined ? undefined : new RegExp(req.exclude);
  const settingsFor = (t: ModelTensor, bits: number): QuantSettings | undefined => {
    if ((include && !include.test(t.name)) || exclude?.test(t.name)) return undefined;
    const s = req.settingsFor ? req.settingsFor(t.name) : req.settings;
    if (!s) return undefined;
    // A uniform run takes the bits this tensor's role asks for; an EWQ plan keeps each block's own.
    const out = { ...s, bits: req.settingsFor ? s.bits : bits, groupSize: 32 };
    // Q8_0 has no zero point: an asymmetric run's 8-bit output matrix is symmetric (HQQ's peer there is RTN).
    return out.bits === 8 && !out.symmetric ? { ...out, symmetric: true, method: out.method === 'hqq' ? 'rtn' : out.method } : out;
  };
  return planGgufRun(opened, target, settingsFor, {
    'weightlens.version': req.version,
    'weightlens.method': req.settings.method,
    ...(req.settings.method === 'dareq' ? { 'weightlens.preset': req.settings.preset } : {}),
    ...gridMetadata(req.settings),
  });
}

/** Bytes of the sidecar files (config, tokenizer) a folder output copies. */
async function sidecarBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && SIDECAR_RE.test(e.name)) total += (await fsp.stat(path.join(dir, e.name))).size;
  }
  return total;
}

/**
 * Refuse a run whose output cannot fit on its device, before anything is written. The margin
 * covers what is not counted exactly (the report, config.json, the index, file-system overhead).
 */
export async function checkFreeSpace(landing: string, bytes: number, display: string): Promise<void> {
  let dir = path.dirname(landing);
  for (;;) {
    try {
      const fs = await fsp.statfs(dir);
      const free = fs.bavail * fs.bsize;
      const needed = bytes + Math.max(1 << 20, bytes * 0.005);
      if (needed > free)
        throw new WeightlensError(
          `not enough free space: the output needs ${formatBytes(needed)}, the device has ${formatBytes(free)} free; nothing was written`,
          display,
        );
      return;
    } catch (e) {
      if (e instanceof WeightlensError) throw e;
      const up = path.dirname(dir);
      if (up === dir || (e as NodeJS.ErrnoException).code !== 'ENOENT') return; // statfs unsupported: the writes will tell
      dir = up;
    }
  }
}

const FS_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EFBIG: 'file too large for the file system',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EXDEV: 'the temporary and final names are on different devices',
};

/** A failed write names the output and the cause in one line (the temporary files are gone by then). */
function asOutputError(e: unknown, outPath: string): unknown {
  const err = e as NodeJS.ErrnoException | undefined;
  const code = err?.code;
  if (typeof code !== 'string' || typeof err?.syscall !== 'string') return e;
  return new WeightlensError(`writing the output failed: ${FS_ERRORS[code] ?? err.message} (${code}); nothing was left behind`, outPath);
}

function outputMetadata(input: Readonly<Record<string, string>>, req: QuantizeRequest): Record<string, string> {
  const s = req.settings;
  return Object.assign(Object.create(null), {
    // transformers refuses safetensors whose metadata lacks a known "format".
    format: 'pt',
    ...input,
    'weightlens.version': req.version,
    'weightlens.format': req.format,
    'weightlens.method': s.method,
    'weightlens.bits': String(s.bits),
    'weightlens.group_size': String(s.groupSize),
    ...(s.method === 'dareq'
      ? {
          'weightlens.preset': s.preset,
          'weightlens.lambda_weight': String(s.lambdaWeight),
          'weightlens.lambda_entropy': String(s.lambdaEntropy),
          'weightlens.normalize': String(s.normalize),
          'weightlens.bins': String(s.bins),
          'weightlens.grid': String(s.grid),
          ...(s.range === 'clip' ? { 'weightlens.clip_alpha_min': String(s.clipAlphaMin) } : {}),
          'weightlens.search': s.search,
        }
      : {}),
    ...gridMetadata(s),
  });
}

/** The grid knobs, written only where they differ from the plain symmetric grid (older outputs keep their bytes). */
function gridMetadata(s: QuantSettings): Record<string, string> {
  return {
    ...(s.symmetric ? {} : { 'weightlens.symmetric': 'false' }),
    ...(s.signAware ? { 'weightlens.sign_aware': 'true' } : {}),
    ...(s.refine > 0 ? { 'weightlens.refine': String(s.refine) } : {}),
  };
}

async function writeFolderExtras(opened: OpenModel, plan: OutputPlan, output: AtomicOutput, names: Map<string, string>): Promise<void> {
  const entries = await fsp.readdir(opened.dir, { withFileTypes: true });
  let config: string | undefined;
  for (const e of entries) {
    if (!e.isFile() || !SIDECAR_RE.test(e.name)) continue;
    if (e.name === 'config.json') {
      config = await fsp.readFile(path.join(opened.dir, e.name), 'utf8');
      continue;
    }
    await fsp.copyFile(path.join(opened.dir, e.name), output.pathFor(e.name));
  }
  if (plan.quantizationConfig) {
    await fsp.writeFile(
      output.pathFor('config.json'),
      configWithQuantization(config, plan.quantizationConfig, path.join(opened.dir, 'config.json')),
    );
  } else if (config !== undefined) {
    await fsp.writeFile(output.pathFor('config.json'), config);
  }
  const model = opened.model;
  if (model.index) {
    const weightMap: Record<string, string> = Object.create(null);
    let totalSize = 0;
    for (const f of plan.files) {
      for (const t of f.tensors) weightMap[t.spec.name] = names.get(f.name)!;
      // As in Hugging Face indexes: the bytes of tensor data, headers not counted.
      const layout = layoutFile(
        f.tensors.map((t) => t.spec),
        {},
      );
      totalSize += layout.byteLengths.reduce((a, b) => a + b, 0);
    }
    const indexName = path.basename(model.path);
    const index = { metadata: { ...model.index.metadata, total_size: totalSize }, weight_map: weightMap };
    await fsp.writeFile(output.pathFor(indexName), JSON.stringify(index, null, 2) + '\n');
  }
}

async function sizeOf(p: string): Promise<number> {
  const st = await fsp.stat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fsp.readdir(p)) total += await sizeOf(path.join(p, e));
  return total;
}

/** What a finished run adds to its request for the report. */
interface RunOutcome {
  outPath: string;
  tensorsQuantized: number;
  seconds: number;
  outputBytes: number;
  gguf?: GgufRunPlan;
}

function buildReport(req: QuantizeRequest, opened: OpenModel, writer: RunWriter, outcome: RunOutcome): QuantizeReport {
  const { outPath, tensorsQuantized, seconds, outputBytes, gguf } = outcome;
  const s = req.settings;
  // The GPU ranks only the exhaustive search's candidates (gpuSearches; an EWQ plan's tensors share
  // the run's search mode, whatever its method).
  const gpu = req.searchBackend && s.search === 'exhaustive' ? req.searchBackend : undefined;
  const quantizedWeights = writer.tensorReports.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  return {
    tool: `weightlens ${req.version}`,
    input: path.resolve(req.input),
    output: outPath,
    settings: {
      ...s,
      format: req.format,
      include: req.include ?? null,
      exclude: req.exclude ?? null,
      backend: gpu ? gpu.name : 'cpu',
      ...(gpu
        ? {
            adapter: gpu.description,
            gpuGroups: writer.gpu.groups,
            gpuGroupsLeftToCpu: writer.gpu.undecided,
            gpuCandidates: writer.gpu.candidates,
            candidatesScoredOnCpu: writer.gpu.rescored,
            gpuFailure: writer.gpu.failure ?? null,
          }
        : {}),
      threads: writer.threads,
      plan: req.plan ?? null,
      ...(gguf
        ? {
            gguf: {
              architecture: gguf.arch.arch,
              fileType: gguf.target.kind === 'float' ? GgmlType[gguf.target.type] : GgmlType[typeForBits(gguf.target.bits)],
              qkRowsPermuted: gguf.arch.permute !== undefined,
              vocabulary: `${gguf.vocab.tokens.length} tokens from the ${gguf.vocab.source}`,
              tensorTypes: Object.fromEntries(gguf.tensors.map((t) => [t.info.name, GgmlType[t.info.type]])),
              notes: [...new Set(gguf.tensors.map((t) => t.note).filter((n): n is string => n !== undefined))],
            },
          }
        : {}),
    },
    tensors: writer.tensorReports,
    summary: {
      inputBytes: opened.model.files.reduce((a, f) => a + f.header.fileSize, 0),
      outputBytes,
      seconds,
      weightsPerSecond: seconds > 0 ? quantizedWeights / seconds : 0,
      quantizedWeights,
      tensorsQuantized,
      tensorsCopied: opened.model.tensors.length - tensorsQuantized,
    },
  };
}

/** Appends bytes to a file being written front to back. */
interface SequentialWriter {
  readonly write: (bytes: Uint8Array) => Promise<void>;
  /** Bytes written so far. */
  readonly pos: number;
}

/** Creates `filePath`, lets `fill` append to it, then syncs it to disk and closes it. */
async function writeSequentially(filePath: string, fill: (out: SequentialWriter) => Promise<void>): Promise<void> {
  const fh = await fsp.open(filePath, 'w');
  try {
    let pos = 0;
    const out = {
      get pos() {
        return pos;
      },
      write: async (bytes: Uint8Array) => {
        let done = 0;
        while (done < bytes.byteLength) {
          const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, pos + done);
          done += bytesWritten;
        }
        pos += bytes.byteLength;
      },
    };
    await fill(out);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Streams the planned tensors of each output file, in order, through the pool. */
class RunWriter {
  readonly tensorReports: TensorReport[] = [];
  /** What the WebGPU search decided, and what it left to the CPU (see SearchChoices). */
  readonly gpu: GpuCounts = { groups: 0, undecided: 0, candidates: 0, rescored: 0 };
  private doneBytes = 0;
  /** Scales (and zero points) of the last packed tensor, written as its `weight_scale` (`weight_zero_point`) right after it. */
  private lastScales:
    { of: string; scales: Float64Array; zeros?: Float64Array; rows: number; settings: QuantSettings; dtype: QuantizableFloat } | undefined;

  constructor(
    private readonly opened: OpenModel,
    private readonly pool: JobRunner,
    private readonly req: QuantizeRequest,
    private readonly totalBytes: number,
  ) {}

  get threads(): number {
    return this.pool.inProcess ? 1 : this.pool.threads;
  }

  async writeFile(filePath: string, tensors: readonly OutputTensor[], metadata: Record<string, string>): Promise<void> {
    const layout = layoutFile(
      tensors.map((t) => t.spec),
      metadata,
    );
    // The quantized tensors' jobs run ahead of the writer, across the copies between them.
    const chain = new StreamChain(
      this.opened,
      this.pool,
      tensors.map(({ source: src }) =>
        src.kind === 'fake' || src.kind === 'packed'
          ? { t: src.tensor, view: src.view, settings: src.settings, o: this.streamOptions(src.kind) }
          : undefined,
      ),
    );
    try {
      await writeSequentially(filePath, async (out) => {
        await out.write(layout.headerBytes);
        for (let i = 0; i < tensors.length; i++) {
          const before = out.pos;
          await this.writeTensor(tensors[i], (onResult) => chain.consume(i, onResult), out.write);
          if (out.pos - before !== layout.byteLengths[i]) {
            throw new Error(`internal: wrote ${out.pos - before} bytes for ${tensors[i].spec.name}, planned ${layout.byteLengths[i]}`);
          }
        }
      });
    } finally {
      await chain.stop();
    }
  }

  /** How a tensor of this run streams: its output, cancellation and the GPU search where one is used. */
  private streamOptions(output: StreamOptions['output']): StreamOptions {
    const base = { signal: this.req.signal, gpuCounts: this.gpu };
    switch (output) {
      case 'q4k':
        // Q4_K's two-level scales are made on the workers from the weights: no GPU search.
        return { ...base, output };
      case 'codes':
        return { ...base, output, scaleDtype: 'F16', zeroKind: 'float', searchBackend: this.req.searchBackend };
      default:
        return { ...base, output, searchBackend: this.req.searchBackend };
    }
  }

  /** The GGUF file: header, then each tensor at its aligned offset. */
  async writeGguf(filePath: string, g: GgufRunPlan): Promise<void> {
    const chain = new StreamChain(
      this.opened,
      this.pool,
      g.tensors.map((p) =>
        p.settings
          ? {
              t: p.tensor,
              view: { rows: p.tensor.shape[0], cols: p.tensor.shape[1], transposed: false },
              settings: p.settings,
              o: this.streamOptions(p.info.type === GgmlType.Q4_K ? 'q4k' : 'codes'),
            }
          : undefined,
      ),
    );
    try {
      await writeSequentially(filePath, async (out) => {
        const write = out.write;
        await write(g.layout.header);
        const base = g.layout.header.byteLength;
        for (let i = 0; i < g.tensors.length; i++) {
          const p = g.tensors[i];
          const at = base + g.layout.offsets[i];
          if (out.pos < at) await write(new Uint8Array(at - out.pos));
          const before = out.pos;
          if (p.settings) await this.quantizeGgufTensor(p, (onResult) => chain.consume(i, onResult), write);
          else {
            for await (const c of convertedTensor(this.opened, p, CHUNK_WEIGHTS)) {
              this.checkCancel();
              await write(c.bytes);
              this.progress(p.tensor.name, c.inputBytes);
            }
          }
          if (out.pos - before !== g.layout.byteLengths[i])
            throw new Error(`internal: wrote ${out.pos - before} bytes for ${p.info.name}, planned ${g.layout.byteLengths[i]}`);
        }
      });
    } finally {
      await chain.stop();
    }
  }

  /** Codes, f16 scales (and Q4_1's f16 offsets) of the run's quantizer, packed into Q4_0 / Q4_1 / Q8_0 blocks; Q4_K goes to its own packer. */
  private async quantizeGgufTensor(p: GgufTensorPlan, results: TensorResults, write: (b: Uint8Array) => Promise<void>): Promise<void> {
    const t = p.tensor;
    const settings = p.settings!;
    const [rows, cols] = t.shape;
    const type = p.info.type;
    if (type === GgmlType.Q4_K) return this.quantizeQ4KTensor(p, results, write);
    const pack = (codes: Int8Array, scales: Float64Array, zeros: Float64Array | undefined, n: number) =>
      type === GgmlType.Q4_1
        ? packQ4_1(codes, scales, zeros!, n, cols)
        : (type === GgmlType.Q4_0 ? packQ4_0 : packQ8_0)(codes, scales, n, cols);
    const stats = emptyStats(settings.bits);
    // q/k rows move across the whole tensor: their codes are collected, then permuted.
    const whole =
      p.permuteHeads !== undefined
        ? {
            codes: new Int8Array(rows * cols),
            scales: new Float64Array((rows * cols) / 32),
            zeros: new Float64Array((rows * cols) / 32),
            row: 0,
          }
        : undefined;
    await results(async (r, bytes) => {
      const codes = new Int8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength);
      const n = codes.length / cols;
      mergeStats(stats, r.stats);
      if (whole) {
        whole.codes.set(codes, whole.row * cols);
        whole.scales.set(r.scales, (whole.row * cols) / 32);
        if (r.zeros) whole.zeros.set(r.zeros, (whole.row * cols) / 32);
        whole.row += n;
      } else await write(pack(codes, r.scales, r.zeros, n));
      this.progress(t.name, bytes);
    });
    if (whole) {
      const codes = permuteRows(whole.codes, (n) => new Int8Array(n), rows, cols, p.permuteHeads!);
      const scales = permuteRows(whole.scales, (n) => new Float64Array(n), rows, cols / 32, p.permuteHeads!);
      const zeros = permuteRows(whole.zeros, (n) => new Float64Array(n), rows, cols / 32, p.permuteHeads!);
      await write(pack(codes, scales, zeros, rows));
    }
    this.tensorReports.push({
      name: t.name,
      bits: settings.bits,
      groupSize: 32,
      shape: [...t.shape],
      dtype: t.dtype,
      ...finishStats(stats),
    });
  }

  /** Q4_K blocks, made on the workers from the weights (their two-level scales need them). */
  private async quantizeQ4KTensor(p: GgufTensorPlan, results: TensorResults, write: (b: Uint8Array) => Promise<void>): Promise<void> {
    const t = p.tensor;
    const [rows, cols] = t.shape;
    const rowBytes = (cols / QK_K) * 144;
    const stats = emptyStats(4);
    // q/k rows move across the whole tensor: their blocks are collected, then permuted as rows.
    const whole = p.permuteHeads !== undefined ? { bytes: new Uint8Array(rows * rowBytes), row: 0 } : undefined;
    await results(async (r, bytes) => {
      mergeStats(stats, r.stats);
      if (whole) {
        whole.bytes.set(r.data, whole.row * rowBytes);
        whole.row += r.data.byteLength / rowBytes;
      } else await write(r.data);
      this.progress(t.name, bytes);
    });
    if (whole) await write(permuteRows(whole.bytes, (n) => new Uint8Array(n), rows, rowBytes, p.permuteHeads!));
    this.tensorReports.push({ name: t.name, bits: 4, groupSize: 32, shape: [...t.shape], dtype: t.dtype, ...finishStats(stats) });
  }

  private checkCancel(): void {
    if (this.req.signal?.aborted) throw new CancelledError('quantization cancelled; no output was written');
  }

  private progress(tensor: string, bytes: number): void {
    this.doneBytes += bytes;
    this.req.onProgress?.({
      fraction: this.totalBytes > 0 ? this.doneBytes / this.totalBytes : 1,
      tensor,
      doneBytes: this.doneBytes,
      totalBytes: this.totalBytes,
    });
  }

  private async writeTensor(t: OutputTensor, results: TensorResults, write: (b: Uint8Array) => Promise<void>): Promise<void> {
    const src = t.source;
    switch (src.kind) {
      case 'copy': {
        const file = this.opened.source(src.tensor.file);
        for (let off = 0; off < src.tensor.byteLength; off += COPY_PIECE) {
          this.checkCancel();
          const len = Math.min(COPY_PIECE, src.tensor.byteLength - off);
          await write(await file.read(src.tensor.offset + off, len));
          this.progress(src.tensor.name, len);
        }
        return;
      }
      case 'fake':
      case 'packed':
        return this.quantizeTensor(src.tensor, src.view, src.settings, src.kind, results, write);
      case 'scale': {
        const last = this.lastScales;
        if (!last || last.of !== src.of) throw new Error(`internal: scales of ${src.of} are not ready`);
        if (!last.zeros) this.lastScales = undefined;
        return write(encodeFloats(last.dtype, last.scales));
      }
      case 'zero': {
        const last = this.lastScales;
        if (!last?.zeros || last.of !== src.of) throw new Error(`internal: zero points of ${src.of} are not ready`);
        this.lastScales = undefined;
        const groups = last.zeros.length / last.rows;
        return write(int32Bytes(packZeroPoints(last.zeros, last.rows, groups, last.settings.bits)));
      }
      case 'shape':
        return write(int64Bytes(src.shape));
    }
  }

  private async quantizeTensor(
    t: ModelTensor,
    view: MatrixView,
    settings: QuantSettings,
    output: 'fake' | 'packed',
    results: TensorResults,
    write: (b: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const stats = emptyStats(settings.bits);
    const scaleParts: Float64Array[] = [];
    const zeroParts: Float64Array[] = [];
    await results(async (r, bytes) => {
      await write(r.data);
      scaleParts.push(r.scales);
      if (r.zeros) zeroParts.push(r.zeros);
      mergeStats(stats, r.stats);
      this.progress(t.name, bytes);
    });
    const dtype = t.dtype as QuantizableFloat;
    if (output === 'packed') {
      const join = (parts: Float64Array[]) => {
        const all = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
        let o = 0;
        for (const p of parts) {
          all.set(p, o);
          o += p.length;
        }
        return all;
      };
      this.lastScales = {
        of: t.name,
        scales: join(scaleParts),
        zeros: settings.symmetric ? undefined : join(zeroParts),
        rows: view.rows,
        settings,
        dtype,
      };
    }
    this.tensorReports.push({
      name: t.name,
      bits: settings.bits,
      groupSize: settings.groupSize,
      shape: [...t.shape],
      dtype: t.dtype,
      ...finishStats(stats),
    });
  }
}
