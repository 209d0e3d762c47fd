/**
 * The header of a file we write, computed up front from the tensors' dtypes and shapes, so the
 * data can then be streamed tensor by tensor in the same order.
 */
import { byteLengthOf, type DType } from '../dtypes';

export interface OutputTensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface FileLayout {
  /** 8-byte length prefix + JSON header padded with spaces to a multiple of 8. */
  readonly headerBytes: Uint8Array;
  /** Byte length of each tensor, in the order given. */
  readonly byteLengths: readonly number[];
  readonly totalBytes: number;
}

export function layoutFile(tensors: readonly OutputTensorSpec[], metadata: Record<string, string>): FileLayout {
  // A null-prototype object: a tensor named "__proto__" must be a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = Object.assign(Object.create(null), metadata);
  let offset = 0;
  const byteLengths: number[] = [];
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const len = byteLengthOf(t.dtype, numel);
    if (!Number.isSafeInteger(len)) throw new Error(`internal: ${t.name} has no whole byte length`);
    if (Object.prototype.hasOwnProperty.call(header, t.name)) throw new Error(`internal: duplicate output tensor ${t.name}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    byteLengths.push(len);
    offset += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(padded), true);
  headerBytes.set(json, 8);
  return { headerBytes, byteLengths, totalBytes: headerBytes.length + offset };
}
