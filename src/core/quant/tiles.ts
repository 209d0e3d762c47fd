/**
 * Heatmap tiles: a matrix of any size reduced to a fixed grid (at most 256 x 256) of mean |W|,
 * mean |residual| and mean squared error, for display. Accumulated chunk by chunk (sums and counts
 * per tile), so a tensor larger than memory reduces in one streaming pass.
 */
export interface TileGrid {
  rows: number;
  cols: number;
  /** Matrix rows and columns per tile (the last tile of each axis may cover fewer). */
  rowStep: number;
  colStep: number;
}

export function tileGrid(matrixRows: number, matrixCols: number, max = 256): TileGrid {
  const rowStep = Math.max(1, Math.ceil(matrixRows / max));
  const colStep = Math.max(1, Math.ceil(matrixCols / max));
  return { rows: Math.ceil(matrixRows / rowStep), cols: Math.ceil(matrixCols / colStep), rowStep, colStep };
}

export interface TileSums {
  absW: Float64Array;
  absE: Float64Array;
  sqE: Float64Array;
  count: Float64Array;
}

export function emptyTiles(g: TileGrid): TileSums {
  const n = g.rows * g.cols;
  return { absW: new Float64Array(n), absE: new Float64Array(n), sqE: new Float64Array(n), count: new Float64Array(n) };
}

/** Adds rows [rowBase, rowBase + rows) of original and dequantized values to the sums. */
export function addTiles(
  t: TileSums,
  g: TileGrid,
  original: ArrayLike<number>,
  dequant: ArrayLike<number>,
  rows: number,
  cols: number,
  rowBase: number,
): void {
  for (let r = 0; r < rows; r++) {
    const tr = Math.floor((rowBase + r) / g.rowStep) * g.cols;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const w = original[i];
      const e = w - dequant[i];
      const k = tr + Math.floor(c / g.colStep);
      t.absW[k] += Math.abs(w);
      t.absE[k] += Math.abs(e);
      t.sqE[k] += e * e;
      t.count[k]++;
    }
  }
}

export function mergeTiles(into: TileSums, from: TileSums): void {
  for (let i = 0; i < into.count.length; i++) {
    into.absW[i] += from.absW[i];
    into.absE[i] += from.absE[i];
    into.sqE[i] += from.sqE[i];
    into.count[i] += from.count[i];
  }
}

/** Means per tile, as float32 for the webview. */
export function tileMeans(t: TileSums): { absW: Float32Array; absE: Float32Array; sqE: Float32Array } {
  const n = t.count.length;
  const out = { absW: new Float32Array(n), absE: new Float32Array(n), sqE: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    const c = t.count[i] || 1;
    out.absW[i] = t.absW[i] / c;
    out.absE[i] = t.absE[i] / c;
    out.sqE[i] = t.sqE[i] / c;
  }
  return out;
}
