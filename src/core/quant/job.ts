/**
 * One unit of quantization work: raw bytes of whole rows of a tensor in, output bytes out. Pure and
 * serializable, so the same function runs in-process or in a worker thread; the WebGPU runner
 * hands it the candidates it chose (`choices`).
 */
import { decodeFloats, encodeFloats, int32Bytes, type QuantizableFloat } from '../dtypes';
import type { ZeroKind } from './affine';
import { quantizeQ4K } from '../formats/q4k';
import { quantizeMatrix, type GroupChoices } from './matrix';
import { packRows } from './pack';
import type { QuantSettings } from './settings';
import { makeChannelStats, type ChannelStats, type StatsAccumulator } from './stats';
import { addTiles, emptyTiles, type TileGrid, type TileSums } from './tiles';

export interface QuantJob {
  readonly file: string;
  readonly tensor: string;
  readonly dtype: QuantizableFloat;
  /** Stored bytes of `rows` logical rows (for a transposed tensor: the whole tensor). */
  readonly raw: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  /** Stored as [cols, rows] (GPT-2 Conv1D); output channels are columns of the stored data. */
  readonly transposed: boolean;
  readonly rowBase: number;
  readonly settings: QuantSettings;
  /**
   * `fake`: dequantized values in the input dtype and layout; `packed`: compressed-tensors int32
   * words; `codes`: the int8 codes, row-major (GGUF packs them into its blocks); `q4k`: GGUF Q4_K
   * blocks (two-level scales: the packing needs the weights, so it happens here).
   */
  readonly output: 'fake' | 'packed' | 'codes' | 'q4k';
  /** The dtype scales are stored in, when not the weights' (GGUF: F16 whatever the weights). */
  readonly scaleDtype?: QuantizableFloat;
  readonly channelStats?: boolean;
  /** The WebGPU search's verdict per group (see QuantizeMatrixOptions.found). */
  readonly found?: GroupChoices;
  /** Heatmap tiles of the whole matrix to accumulate this chunk into (the panel's detail view). */
  readonly tiles?: TileGrid;
  /** How the output format stores zero points (asymmetric settings; see QuantizeMatrixOptions). */
  readonly zeroKind?: ZeroKind;
}

export interface QuantJobResult {
  readonly data: Uint8Array;
  /** Dtype-rounded scales, [rows][groups]. */
  readonly scales: Float64Array;
  /** Asymmetric settings: zero points or offsets, [rows][groups] (MatrixResult.zeros). */
  readonly zeros?: Float64Array;
  readonly stats: StatsAccumulator;
  readonly channels?: ChannelStats;
  readonly tiles?: TileSums;
}

/** [rows][cols] -> [cols][rows]. */
export function transpose<T extends Float32Array | Float64Array>(src: T, rows: number, cols: number): T {
  const out = new (src.constructor as { new (n: number): T })(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

/**
 * The decoded chunk's buffer, kept between jobs (one per thread: each worker has its own module).
 * Safe because a job runs to completion synchronously and no result refers to `values`.
 */
let decodeBuffer = new Float32Array(0);

/** Chunks up to this many weights share the buffer; a larger one (a transposed tensor, whole) is its own. */
const REUSED_WEIGHTS = 1 << 23;

function decodeBufferFor(job: QuantJob): Float32Array | undefined {
  const n = job.rows * job.cols;
  if (job.dtype === 'F64' || n > REUSED_WEIGHTS) return undefined;
  if (decodeBuffer.length < n) decodeBuffer = new Float32Array(n);
  return decodeBuffer;
}

/**
 * `ownsInput`: the caller hands job.raw over (a worker, which received it by transfer or copy): a
 * fake-quant result may be written into it instead of a new buffer.
 */
export function runQuantJob(job: QuantJob, ownsInput = false): QuantJobResult {
  const { rows, cols } = job;
  let values = decodeFloats(job.dtype, job.raw, decodeBufferFor(job));
  // A stored [in, out] matrix is [cols][rows] of the logical one.
  if (job.transposed) values = transpose(values, cols, rows);
  if (job.output === 'q4k') {
    const r = quantizeQ4K(values, rows, cols, job.settings, { file: job.file, tensor: job.tensor, rowBase: job.rowBase });
    return { data: r.bytes, scales: new Float64Array(0), stats: r.stats };
  }
  const original = job.tiles ? values.slice() : undefined;
  const codes = job.output === 'fake' ? undefined : new Int8Array(rows * cols);
  const channels = job.channelStats ? makeChannelStats(rows) : undefined;
  const { scales, zeros, stats } = quantizeMatrix(values, rows, cols, {
    settings: job.settings,
    dtype: job.dtype,
    scaleDtype: job.scaleDtype,
    codes,
    channels,
    file: job.file,
    tensor: job.tensor,
    rowBase: job.rowBase,
    found: job.found,
    zeroKind: job.zeroKind,
  });
  let tiles: TileSums | undefined;
  if (job.tiles && original) {
    tiles = emptyTiles(job.tiles);
    addTiles(tiles, job.tiles, original, values, rows, cols, job.rowBase);
  }
  let data: Uint8Array;
  if (codes && job.output === 'codes') data = new Uint8Array(codes.buffer);
  else if (codes) data = int32Bytes(packRows(codes, rows, cols, job.settings.bits));
  else data = encodeFloats(job.dtype, job.transposed ? transpose(values, rows, cols) : values, ownsInput ? job.raw : undefined);
  return { data, scales, zeros, stats, channels, tiles };
}
