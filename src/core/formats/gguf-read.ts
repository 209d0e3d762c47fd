/**
 * Reading a GGUF file's header (any producer: llama.cpp's tools, Weightlens): metadata and tensor
 * infos, through a ByteSource, in growing pieces so that only the header is read. Versions 2 and 3
 * (64-bit counts); every length is checked against the file before it is trusted.
 */
import type { ByteSource } from '../bytesource';
import { groupBlocks } from '../blocks';
import type { InspectSummary } from '../inspect';
import { GGML_BLOCK, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, ggmlTypeName, ggufError } from './gguf';

export type GgufScalar = string | number | boolean | bigint;

export interface GgufHeader {
  readonly file: string;
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufScalar | { array: GgufValueType; length: number; head: GgufScalar[] }>;
  readonly tensors: readonly { name: string; ne: number[]; type: number; offset: number; bytes: number }[];
  readonly dataStart: number;
  readonly fileSize: number;
}

/** Array items kept per metadata array (a vocabulary has 100k+: the header view needs a few). */
const ARRAY_HEAD = 8;

class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  at = 0;
  constructor(
    private readonly src: ByteSource,
    readonly size: number,
    readonly file: string,
  ) {}

  private async need(n: number): Promise<DataView> {
    if (this.at + n > this.size) throw ggufError(this.file, `the header runs past the end of the file (at byte ${this.at})`);
    if (this.at < this.start || this.at + n > this.start + this.buf.length) {
      const len = Math.min(this.size - this.at, Math.max(n, 1 << 20));
      this.buf = await this.src.read(this.at, len);
      this.start = this.at;
    }
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + (this.at - this.start), n);
    this.at += n;
    return view;
  }
  async u32(): Promise<number> {
    return (await this.need(4)).getUint32(0, true);
  }
  async u64(): Promise<number> {
    const v = (await this.need(8)).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw ggufError(this.file, `a count or size of ${v} at byte ${this.at - 8} is not plausible`);
    return Number(v);
  }
  async str(): Promise<string> {
    const n = await this.u64();
    if (n > this.size) throw ggufError(this.file, `a string of ${n} bytes at byte ${this.at - 8} is longer than the file`);
    const v = await this.need(n);
    return new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset, n));
  }
  async scalar(t: GgufValueType): Promise<GgufScalar> {
    switch (t) {
      case GgufValueType.UINT8:
        return (await this.need(1)).getUint8(0);
      case GgufValueType.INT8:
        return (await this.need(1)).getInt8(0);
      case GgufValueType.UINT16:
        return (await this.need(2)).getUint16(0, true);
      case GgufValueType.INT16:
        return (await this.need(2)).getInt16(0, true);
      case GgufValueType.UINT32:
        return (await this.need(4)).getUint32(0, true);
      case GgufValueType.INT32:
        return (await this.need(4)).getInt32(0, true);
      case GgufValueType.FLOAT32:
        return (await this.need(4)).getFloat32(0, true);
      case GgufValueType.FLOAT64:
        return (await this.need(8)).getFloat64(0, true);
      case GgufValueType.BOOL:
        return (await this.need(1)).getUint8(0) !== 0;
      case GgufValueType.STRING:
        return this.str();
      case GgufValueType.UINT64:
        return (await this.need(8)).getBigUint64(0, true);
      case GgufValueType.INT64:
        return (await this.need(8)).getBigInt64(0, true);
      default:
        throw ggufError(this.file, `unknown metadata value type ${t} at byte ${this.at - 4}`);
    }
  }
}

export async function readGgufHeader(src: ByteSource, file = src.name): Promise<GgufHeader> {
  const size = await src.size();
  const c = new Cursor(src, size, file);
  if (size < 24) throw ggufError(file, `is too small to be GGUF (${size} bytes)`);
  if ((await c.u32()) !== GGUF_MAGIC) throw ggufError(file, 'does not start with the GGUF magic');
  const version = await c.u32();
  if (version !== 2 && version !== 3) throw ggufError(file, `version ${version} is not supported (2 and 3 are)`);
  const nTensors = await c.u64();
  const nKv = await c.u64();
  const metadata = new Map<string, GgufScalar | { array: GgufValueType; length: number; head: GgufScalar[] }>();
  for (let i = 0; i < nKv; i++) {
    const key = await c.str();
    const type = (await c.u32()) as GgufValueType;
    if (type === GgufValueType.ARRAY) {
      const item = (await c.u32()) as GgufValueType;
      const length = await c.u64();
      const head: GgufScalar[] = [];
      for (let j = 0; j < length; j++) {
        const v = await c.scalar(item);
        if (j < ARRAY_HEAD) head.push(v);
      }
      metadata.set(key, { array: item, length, head });
    } else metadata.set(key, await c.scalar(type));
  }
  const tensors: { name: string; ne: number[]; type: number; offset: number; bytes: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = await c.str();
    const dims = await c.u32();
    if (dims > 8) throw ggufError(file, `tensor "${name}" has ${dims} dimensions`);
    const ne: number[] = [];
    for (let d = 0; d < dims; d++) ne.push(await c.u64());
    const type = await c.u32();
    const offset = await c.u64();
    const b = GGML_BLOCK[type as keyof typeof GGML_BLOCK];
    const numel = ne.reduce((a, x) => a * x, 1);
    const bytes = b ? Math.ceil(numel / b.weights) * b.bytes : 0;
    tensors.push({ name, ne, type, offset, bytes });
  }
  const alignment =
    typeof metadata.get('general.alignment') === 'number' ? (metadata.get('general.alignment') as number) : GGUF_DEFAULT_ALIGNMENT;
  const dataStart = Math.ceil(c.at / alignment) * alignment;
  for (const t of tensors) {
    if (dataStart + t.offset + t.bytes > size)
      throw ggufError(file, `tensor "${t.name}" (${ggmlTypeName(t.type)}, ${t.bytes} bytes at ${t.offset}) runs past the end of the file`);
  }
  return { file, version, metadata, tensors, dataStart, fileSize: size };
}

function showValue(v: GgufScalar | { array: GgufValueType; length: number; head: GgufScalar[] }): string {
  if (typeof v === 'object' && v !== null && 'array' in v) {
    const items = v.head.map((x) => (typeof x === 'string' ? JSON.stringify(x) : String(x))).join(', ');
    return `[${v.length} ${GgufValueType[v.array].toLowerCase()}${v.length > v.head.length ? `: ${items}, …` : `: ${items}`}]`;
  }
  // Floats are stored as f32: seven significant digits say all they hold.
  return typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(7))) : String(v);
}

/** The inspector's summary of a GGUF: tensors with their ggml types and shapes (outermost first). */
export function inspectGguf(h: GgufHeader, fileName: string): InspectSummary {
  const byDtype: Record<string, { params: number; bytes: number }> = {};
  const tensors = h.tensors.map((t) => {
    const dtype = ggmlTypeName(t.type);
    const numel = t.ne.reduce((a, x) => a * x, 1);
    const d = (byDtype[dtype] ??= { params: 0, bytes: 0 });
    d.params += numel;
    d.bytes += t.bytes;
    return { name: t.name, dtype, shape: [...t.ne].reverse(), bytes: t.bytes, file: fileName, numel };
  });
  const { blocks, other } = groupBlocks(tensors.map((t) => ({ name: t.name, numel: t.numel })));
  return {
    files: [fileName],
    metadata: Object.fromEntries([['gguf.version', String(h.version)], ...[...h.metadata].map(([k, v]) => [k, showValue(v)])]),
    tensors: tensors.map(({ numel: _, ...t }) => t),
    totalParams: tensors.reduce((a, t) => a + t.numel, 0),
    totalBytes: h.fileSize,
    blocks: blocks.map((b) => ({ index: b.index, execIndex: b.execIndex, params: b.params, tensors: b.tensors })),
    other,
    byDtype,
  };
}
