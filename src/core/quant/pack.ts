/**
 * compressed-tensors `pack-quantized` packing, checked against its source (pack_to_int32 in
 * compressed_tensors/compressors/quantized_compressors/pack_quantized.py): codes are stored
 * unsigned as q + 2^(b-1), 32/b codes per int32 word in row order, code i of a word at bits b*i,
 * each row padded with zero codes to whole words.
 */
export function packedCols(cols: number, bits: number): number {
  return Math.ceil(cols / (32 / bits));
}

export function packRows(codes: Int8Array, rows: number, cols: number, bits: number): Int32Array {
  const per = 32 / bits;
  const wcols = packedCols(cols, bits);
  const offset = 1 << (bits - 1);
  const out = new Int32Array(rows * wcols);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    const dst = r * wcols;
    for (let c = 0; c < cols; c++) {
      const word = dst + ((c / per) | 0);
      out[word] |= (codes[src + c] + offset) << (bits * (c % per));
    }
  }
  return out;
}

export function unpackRows(packed: Int32Array, rows: number, cols: number, bits: number): Int8Array {
  const per = 32 / bits;
  const wcols = packedCols(cols, bits);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  const out = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const word = packed[r * wcols + ((c / per) | 0)];
      out[r * cols + c] = ((word >>> (bits * (c % per))) & mask) - offset;
    }
  }
  return out;
}
