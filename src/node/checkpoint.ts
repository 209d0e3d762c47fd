/**
 * Any checkpoint as float32 weights under Hugging Face names, row blocks at a time: safetensors
 * (single or sharded), compressed-tensors `pack-quantized` (dequantized: (q - zero point) x scale),
 * and GGUF (ggml's block formats, dequantized as ggml does; GGUF names mapped back to HF names, q/k
 * rows back to the order the other side uses). What `compare` reads.
 */
import * as path from 'node:path';
import { decodeFloats, isDecodableFloat } from '../core/dtypes';
import { WeightlensError } from '../core/errors';
import { canDequantize, dequantize } from '../core/formats/ggml-dequant';
import { GGML_BLOCK, ggmlTypeName, type GgmlType } from '../core/formats/gguf';
import { hfTensorName } from '../core/formats/gguf-llama';
import { inspectGguf, readGgufHeader, type GgufHeader } from '../core/formats/gguf-read';
import type { InspectSummary } from '../core/inspect';
import { readRows, type ModelTensor } from '../core/model';
import { unpackRows } from '../core/quant/pack';
import { unpackZeroPoints } from '../core/formats/compressed-tensors';
import { transpose } from '../core/quant/job';
import { matrixView } from '../core/select';
import { FileByteSource } from './file-source';
import { readTextFile, statRegularFile } from './input-file';
import { resolveModelPath } from './model-path';
import { openModel, type OpenModel } from './open-model';

export interface CheckpointTensor {
  /** The Hugging Face name (GGUF names are mapped back). */
  readonly name: string;
  /** Logical [rows, cols] (1-D tensors: [1, n]). */
  readonly rows: number;
  readonly cols: number;
  /** The stored type: a dtype, a ggml type, or "int4 g128" for pack-quantized. */
  readonly type: string;
  /** Stored bytes (codes, scales and zero points together), for bits per weight. */
  readonly bytes: number;
}

export interface Checkpoint {
  readonly path: string;
  readonly format: 'safetensors' | 'compressed-tensors' | 'gguf';
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /** q/k rows in llama.cpp's interleaved order (GGUF, llama2.c exports) rather than HF's rotate-half. */
  readonly interleavedQk: boolean;
  /** Attention heads of q and of k/v, where the config or metadata says. */
  readonly heads?: { readonly q: number; readonly k: number };
  /** Rows [start, start + count) of a tensor as float32. */
  readRows(name: string, start: number, count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

async function readConfig(dir: string): Promise<Record<string, unknown> | undefined> {
  const file = path.join(dir, 'config.json');
  try {
    return JSON.parse(await readTextFile(file)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** A .gguf file, a .safetensors file, a *.safetensors.index.json, or a folder holding one of them. */
export async function openCheckpoint(userPath: string): Promise<Checkpoint> {
  const p = path.resolve(await resolveModelPath(userPath, { gguf: true }));
  if (p.endsWith('.gguf')) return openGguf(p, userPath);
  const opened = await openModel(p);
  const config = await readConfig(opened.dir);
  const qc = config?.quantization_config as PackQuantizedConfig | undefined;
  if (qc && opened.model.tensors.some((t) => t.name.endsWith('.weight_packed')))
    return {
      ...(await packQuantized(opened, userPath, qc as PackQuantizedConfig, config?.rope_style === 'interleaved')),
      heads: headsOf(config?.num_attention_heads, config?.num_key_value_heads),
    };
  const cp = safetensorsCheckpoint(opened, userPath, config?.rope_style === 'interleaved');
  return { ...cp, heads: headsOf(config?.num_attention_heads, config?.num_key_value_heads) };
}

function headsOf(q: unknown, k: unknown): { q: number; k: number } | undefined {
  if (typeof q !== 'number' || !Number.isInteger(q) || q <= 0) return undefined;
  return { q, k: typeof k === 'number' && Number.isInteger(k) && k > 0 ? k : q };
}

function safetensorsCheckpoint(opened: OpenModel, display: string, interleaved: boolean): Checkpoint {
  const byName = new Map<string, ModelTensor>();
  const tensors = new Map<string, CheckpointTensor>();
  for (const t of opened.model.tensors) {
    if (!isDecodableFloat(t.dtype)) continue;
    // GPT-2's Conv1D weights are stored [in, out]: shown as [out, in] like every other format stores them.
    const view = matrixView(t);
    byName.set(t.name, t);
    tensors.set(t.name, { name: t.name, rows: view.rows, cols: view.cols, type: t.dtype, bytes: t.byteLength });
  }
  let transposed: { name: string; values: Float32Array } | undefined;
  return {
    path: display,
    format: 'safetensors',
    tensors,
    interleavedQk: interleaved,
    async readRows(name, start, count) {
      const t = byName.get(name)!;
      const src = opened.source(t.file);
      if (t.shape.length === 2 && matrixView(t).transposed) {
        // Output channels are columns of the stored matrix: the whole tensor, transposed once.
        if (transposed?.name !== name) {
          const all = decodeFloats(t.dtype as Parameters<typeof decodeFloats>[0], await src.read(t.offset, t.byteLength));
          transposed = { name, values: Float32Array.from(transpose(all, t.shape[0], t.shape[1])) };
        }
        return transposed.values.slice(start * t.shape[0], (start + count) * t.shape[0]);
      }
      const raw = t.shape.length >= 2 ? await readRows(src, t, start, count) : await src.read(t.offset, t.byteLength);
      const v = decodeFloats(t.dtype as Parameters<typeof decodeFloats>[0], raw);
      return v instanceof Float32Array ? v : Float32Array.from(v);
    },
    close: () => opened.close(),
  };
}

type PackQuantizedConfig = {
  format?: string;
  config_groups?: Record<string, { targets?: string[]; weights?: { num_bits?: number; group_size?: number | null } }>;
};

/** A module's config group: the one naming it, else the "Linear" catch-all. */
function groupOf(qc: PackQuantizedConfig, module: string): { num_bits?: number; group_size?: number | null } | undefined {
  const groups = Object.values(qc.config_groups ?? {});
  const own = groups.find((g) => g.targets?.includes(module));
  return (own ?? groups.find((g) => g.targets?.includes('Linear')) ?? groups[0])?.weights;
}

async function packQuantized(opened: OpenModel, display: string, qc: PackQuantizedConfig, interleaved: boolean): Promise<Checkpoint> {
  if (qc.format !== 'pack-quantized')
    throw new WeightlensError(`compressed-tensors format "${qc.format}" is not read yet (pack-quantized is)`, display);
  const byName = new Map(opened.model.tensors.map((t) => [t.name, t]));
  const plain = safetensorsCheckpoint(opened, display, interleaved);
  const tensors = new Map<string, CheckpointTensor>();
  const packed = new Map<
    string,
    { weights: ModelTensor; scale: ModelTensor; zero?: ModelTensor; bits: number; rows: number; cols: number; groupSize: number }
  >();
  for (const t of opened.model.tensors) {
    if (/\.weight_(scale|zero_point|shape)$/.test(t.name)) continue;
    if (!t.name.endsWith('.weight_packed')) {
      const p = plain.tensors.get(t.name);
      if (p) tensors.set(t.name, p);
      continue;
    }
    const m = t.name.slice(0, -'.weight_packed'.length);
    const scale = byName.get(`${m}.weight_scale`);
    const shape = byName.get(`${m}.weight_shape`);
    if (!scale || !shape) throw new WeightlensError('has no weight_scale or weight_shape beside its weight_packed', display, t.name);
    const dims = new DataView((await opened.source(shape.file).read(shape.offset, shape.byteLength)).slice().buffer);
    const [rows, cols] = [Number(dims.getBigInt64(0, true)), Number(dims.getBigInt64(8, true))];
    const weights = groupOf(qc, m);
    const bits = weights?.num_bits;
    if (bits !== 4 && bits !== 8)
      throw new WeightlensError(`the config gives it ${bits ?? 'no'} bits; pack-quantized stores 4 or 8`, display, t.name);
    const zero = byName.get(`${m}.weight_zero_point`);
    // Groups of group_size along the row (the last one may be short); per-channel: one group.
    const groupSize = scale.shape[1] > 1 ? (weights?.group_size ?? Math.ceil(cols / scale.shape[1])) : cols;
    packed.set(`${m}.weight`, { weights: t, scale, zero, bits, rows, cols, groupSize });
    const bytes = t.byteLength + scale.byteLength + (zero?.byteLength ?? 0);
    tensors.set(`${m}.weight`, {
      name: `${m}.weight`,
      rows,
      cols,
      type: `int${bits} ${scale.shape[1] > 1 ? `g${groupSize}` : 'per-channel'}${zero ? ' asym' : ''}`,
      bytes,
    });
  }
  return {
    path: display,
    format: 'compressed-tensors',
    tensors,
    interleavedQk: plain.interleavedQk,
    close: plain.close,
    async readRows(name, start, count) {
      const p = packed.get(name);
      if (!p) return plain.readRows(name, start, count);
      const { cols, bits } = p;
      const words = new Int32Array((await readRows(opened.source(p.weights.file), p.weights, start, count)).slice().buffer);
      const codes = unpackRows(words, count, cols, bits);
      const scales = decodeFloats(
        p.scale.dtype as Parameters<typeof decodeFloats>[0],
        await readRows(opened.source(p.scale.file), p.scale, start, count),
      );
      const groupsPerRow = p.scale.shape[1] ?? 1;
      const g = p.groupSize;
      let zeros: ArrayLike<number> | undefined;
      if (p.zero) {
        // Asymmetric zero points, one per group: packed 32/b per int32 along the rows, as
        // compressed-tensors' pack-quantized writes them ([ceil(rows * b / 32), groups]), or unpacked integers.
        const z = p.zero;
        const packedRows = Math.ceil((p.rows * bits) / 32);
        if (z.dtype === 'I32' && z.shape[0] === packedRows && packedRows !== p.rows) {
          const per = 32 / bits;
          const first = Math.floor(start / per);
          const words = Math.floor((start + count - 1) / per) - first + 1;
          const raw = new Int32Array((await readRows(opened.source(z.file), z, first, words)).slice().buffer);
          const all = unpackZeroPoints(raw, words * per, groupsPerRow, bits);
          zeros = all.subarray((start - first * per) * groupsPerRow, (start - first * per + count) * groupsPerRow);
        } else {
          const raw = (await readRows(opened.source(z.file), z, start, count)).slice().buffer;
          if (z.dtype === 'I8') zeros = new Int8Array(raw);
          else if (z.dtype === 'I32') zeros = new Int32Array(raw);
          else throw new WeightlensError(`weight_zero_point of dtype ${z.dtype} is not read yet (I8 and I32 are)`, display, z.name);
        }
      }
      const out = new Float32Array(count * cols);
      for (let r = 0; r < count; r++) {
        for (let c = 0; c < cols; c++) {
          const gi = r * groupsPerRow + Math.floor(c / g);
          out[r * cols + c] = (codes[r * cols + c] - (zeros ? zeros[gi] : 0)) * scales[gi];
        }
      }
      return out;
    },
  };
}

/** The inspector's and `inspect`'s view of a GGUF file, read from its header alone. */
export async function inspectGgufFile(file: string, display = file): Promise<InspectSummary> {
  await statRegularFile(file, display);
  const src = await FileByteSource.open(file, display);
  try {
    return inspectGguf(await readGgufHeader(src, display), path.basename(file));
  } finally {
    await src.close();
  }
}

async function openGguf(file: string, display: string): Promise<Checkpoint> {
  await statRegularFile(file, display);
  const src = await FileByteSource.open(file, display);
  let h: GgufHeader;
  try {
    h = await readGgufHeader(src, display);
  } catch (e) {
    await src.close();
    throw e;
  }
  const tensors = new Map<string, CheckpointTensor>();
  const info = new Map<string, GgufHeader['tensors'][number]>();
  for (const t of h.tensors) {
    const name = hfTensorName(t.name) ?? t.name;
    const cols = t.ne[0];
    const rows = t.ne.slice(1).reduce((a, x) => a * x, 1);
    tensors.set(name, { name, rows, cols, type: ggmlTypeName(t.type), bytes: t.bytes });
    info.set(name, t);
  }
  return {
    path: display,
    format: 'gguf',
    tensors,
    // llama.cpp's llama architecture keeps q/k rows interleaved; Qwen2 (NEOX RoPE) keeps HF's order.
    interleavedQk: h.metadata.get('general.architecture') === 'llama',
    heads: headsOf(
      h.metadata.get(`${String(h.metadata.get('general.architecture'))}.attention.head_count`),
      h.metadata.get(`${String(h.metadata.get('general.architecture'))}.attention.head_count_kv`),
    ),
    async readRows(name, start, count) {
      const t = info.get(name)!;
      if (!canDequantize(t.type)) throw new WeightlensError(`ggml type ${ggmlTypeName(t.type)} is not decoded yet`, display, t.name);
      const b = GGML_BLOCK[t.type as GgmlType]!;
      const rowBytes = (t.ne[0] / b.weights) * b.bytes;
      const raw = await src.read(h.dataStart + t.offset + start * rowBytes, count * rowBytes);
      return dequantize(t.type, raw, count * t.ne[0]);
    },
    close: () => src.close(),
  };
}

/** Bits per weight of a stored tensor. */
export function bitsPerWeight(t: CheckpointTensor): number {
  return (t.bytes * 8) / (t.rows * t.cols);
}
