/**
 * WebGPU vs CPU parity of quantization with chosen scales (shaders/quantize_apply.wgsl): scales,
 * codes, dequantized values, clipped counts and packed words bit for bit — rounding ties included —
 * and the f32 error statistics and heatmap tiles within stated tolerances; then the panel's detail
 * side computed on the GPU against the CPU's. SwiftShader where there is no GPU; skipped, visibly,
 * only where no WebGPU adapter exists.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detailSidesOnGpu, rowBlocks } from '../../src/compute/gpu-detail';
import type { NodeGpu } from '../../src/compute/webgpu/node-device';
import { gpuOrSkip, openTestGpu } from '../helpers/gpu';
import { WebGpuQuantizer } from '../../src/compute/webgpu/quantize';
import type { QuantizableFloat } from '../../src/core/dtypes';
import { groupsPerRow, quantizeMatrix } from '../../src/core/quant/matrix';
import { packRows } from '../../src/core/quant/pack';
import { resolveSettings, type SettingsInput } from '../../src/core/quant/settings';
import { finishStats, makeChannelStats, rowMoments } from '../../src/core/quant/stats';
import { addTiles, emptyTiles, tileGrid, tileMeans } from '../../src/core/quant/tiles';
import { asStored, normals } from '../helpers/safetensors';

let gpu: NodeGpu | undefined;
let quantizer: WebGpuQuantizer | undefined;
const ready = openTestGpu().then((g) => {
  gpu = g;
  if (g) quantizer = new WebGpuQuantizer(g.device, g.search);
  return g;
});

/** Normal weights with outlier rows, a zero row, and a row of exact rounding ties at RTN's scale. */
function fixture(rows: number, cols: number, dtype: 'F32' | 'F16' | 'BF16', seed: number, qmax: number): Float32Array {
  const w = normals(rows * cols, seed, 0.02);
  for (let r = 0; r < rows; r += 5) for (let c = 0; c < cols; c++) w[r * cols + c] *= 20;
  for (let c = 0; c < cols; c++) w[3 * cols + c] = 0;
  // Row 1: absmax = qmax / 64, so RTN's scale is exactly 1/64 and (k + 1/2) / 64 are ties.
  for (let c = 0; c < cols; c++) w[cols + c] = c % 4 === 0 ? qmax / 64 : (((c % (2 * qmax)) - qmax + 0.5) / 64) * (c % 2 ? 1 : -1);
  return asStored(dtype, w);
}

function relClose(a: number, b: number, rel: number, abs = 0): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

const CASES: [string, SettingsInput, 'F32' | 'F16' | 'BF16'][] = [
  ['rtn 4-bit per channel', { method: 'rtn' }, 'BF16'],
  ['rtn 8-bit g32', { method: 'rtn', bits: 8, groupSize: 32 }, 'F16'],
  ['rtn 2-bit g48 half-even', { method: 'rtn', bits: 2, groupSize: 48, rounding: 'half-even' }, 'F32'],
  ['dareq clip g32', { preset: 'clip', groupSize: 32 }, 'BF16'],
  ['dareq paper per channel', { preset: 'paper' }, 'F16'],
  ['dareq reference g64', { preset: 'reference', groupSize: 64 }, 'F32'],
  ['dareq clip 8-bit g32', { preset: 'clip', bits: 8, groupSize: 32 }, 'F32'],
  ['rtn sign-aware g32 (negative scales)', { method: 'rtn', signAware: true, groupSize: 32 }, 'BF16'],
  ['dareq sign-aware g32', { preset: 'clip', signAware: true, groupSize: 32 }, 'F16'],
  ['dareq sign-aware 3-bit half-even per channel', { preset: 'clip', signAware: true, bits: 3, rounding: 'half-even' }, 'F32'],
  // The approximate search stays on the CPU (gpuSearches): same scales with or without a GPU.
  ['dareq clip g32 coarse-to-fine', { preset: 'clip', groupSize: 32, search: 'coarse-to-fine' }, 'BF16'],
];

for (const [name, input, dtype] of CASES) {
  test(`WebGPU quantization = CPU quantization: ${name} (${dtype})`, async (t) => {
    if (!(await gpuOrSkip(ready, t)) || !gpu || !quantizer) return;
    const s = resolveSettings(input);
    const rows = 24;
    const cols = 160;
    const qmax = 2 ** (s.bits - 1) - 1;
    const values = fixture(rows, cols, dtype, name.length, qmax);
    const grid = tileGrid(rows, cols, 16);
    const r = await quantizer.quantizeBlock(values, rows, cols, s, dtype as QuantizableFloat, {
      tiles: { grid, rowBase: 0 },
      codes: true,
      dequantized: true,
      packed: 32 % s.bits === 0,
      moments: 'rows',
    });

    const cpuValues = Float32Array.from(values);
    const codes = new Int8Array(rows * cols);
    const channels = makeChannelStats(rows);
    const cpu = quantizeMatrix(cpuValues, rows, cols, { settings: s, dtype: dtype as QuantizableFloat, codes, channels, tensor: 't' });
    assert.deepEqual(Array.from(r.scales), Array.from(cpu.scales), 'scales');
    assert.deepEqual(Array.from(r.codes!), Array.from(codes), 'codes (ties included)');
    assert.deepEqual(Array.from(r.dequantized!), Array.from(cpuValues), 'dequantized values, bit for bit');
    if (r.packed)
      assert.deepEqual(Array.from(new Int32Array(r.packed.buffer)), Array.from(packRows(codes, rows, cols, s.bits)), 'packed words');

    const gpr = groupsPerRow(cols, s.groupSize);
    const g = s.groupSize > 0 ? Math.min(s.groupSize, cols) : cols;
    for (let row = 0; row < rows; row++) {
      let e2 = 0;
      let h = 0;
      let clipped = 0;
      for (let gi = 0; gi < gpr; gi++) {
        const n = Math.min(g, cols - gi * g);
        e2 += r.sumE2[row * gpr + gi];
        if (r.absmax[row * gpr + gi] > 0) h += r.entropy[row * gpr + gi] * n;
        clipped += r.clipped[row * gpr + gi];
      }
      assert.equal(clipped, channels.clipped[row], `row ${row}: clipped count`);
      // The weights' own statistics: absmax exactly, kurtosis to f32 sums' precision.
      assert.equal(r.moments![4 * row], channels.absmax[row], `row ${row}: absmax`);
      assert.ok(
        relClose(r.moments![4 * row + 3], channels.kurtosis[row], 1e-4),
        `row ${row}: kurtosis ${r.moments![4 * row + 3]} vs ${channels.kurtosis[row]}`,
      );
      const m = rowMoments(values, row * cols, cols);
      assert.ok(Math.abs(r.moments![4 * row + 1] - m.mean) <= 1e-5 * Math.sqrt(m.variance) + 1e-12, `row ${row}: mean`);
      assert.ok(relClose(r.moments![4 * row + 2], m.variance, 1e-4, 1e-30), `row ${row}: variance`);
      assert.ok(relClose(e2 / cols, channels.mse[row], 1e-4, 1e-30), `row ${row}: mse ${e2 / cols} vs ${channels.mse[row]}`);
      // f32 residuals can move a weight on a bin edge to the neighbouring bin: H within 0.02 nats.
      assert.ok(Math.abs(h / cols - channels.entropy[row]) < 0.02, `row ${row}: entropy ${h / cols} vs ${channels.entropy[row]}`);
    }
    const tiles = emptyTiles(grid);
    addTiles(tiles, grid, values, cpuValues, rows, cols, 0);
    for (let i = 0; i < grid.rows * grid.cols; i++) {
      assert.equal(r.tiles![4 * i + 3], tiles.count[i]);
      assert.ok(relClose(r.tiles![4 * i], tiles.absW[i], 1e-5), `tile ${i} |W|`);
      assert.ok(relClose(r.tiles![4 * i + 1], tiles.absE[i], 1e-4, 1e-12), `tile ${i} |e|`);
      assert.ok(relClose(r.tiles![4 * i + 2], tiles.sqE[i], 1e-4, 1e-20), `tile ${i} e^2`);
    }
  });
}

test("per-group weight moments (absmax, mean, variance, kurtosis) equal the CPU's two-pass float64 values", async (t) => {
  if (!(await gpuOrSkip(ready, t)) || !gpu || !quantizer) return;
  const rows = 12;
  const cols = 100; // groups of 32: a short last group of 4
  const s = resolveSettings({ method: 'rtn', groupSize: 32 });
  const values = fixture(rows, cols, 'F32', 7, 7);
  const r = await quantizer.quantizeBlock(values, rows, cols, s, 'F32', { moments: 'groups' });
  const gpr = groupsPerRow(cols, 32);
  assert.equal(r.moments!.length, rows * gpr * 4);
  for (let row = 0; row < rows; row++) {
    for (let gi = 0; gi < gpr; gi++) {
      const at = row * gpr + gi;
      const m = rowMoments(values, row * cols + gi * 32, Math.min(32, cols - gi * 32));
      assert.equal(r.moments![4 * at], m.absmax, `group ${at}: absmax`);
      assert.ok(Math.abs(r.moments![4 * at + 1] - m.mean) <= 1e-5 * Math.sqrt(m.variance) + 1e-12, `group ${at}: mean`);
      assert.ok(relClose(r.moments![4 * at + 2], m.variance, 1e-4, 1e-30), `group ${at}: variance`);
      assert.ok(relClose(r.moments![4 * at + 3], m.kurtosis, 1e-4), `group ${at}: kurtosis ${r.moments![4 * at + 3]} vs ${m.kurtosis}`);
    }
  }
});

test('the panel detail on WebGPU, in row blocks, matches the CPU detail', async (t) => {
  if (!(await gpuOrSkip(ready, t)) || !gpu || !quantizer) return;
  const rows = 300;
  const cols = 96;
  const s = resolveSettings({ groupSize: 32 });
  const values = asStored('BF16', normals(rows * cols, 5, 0.02));
  const grid = tileGrid(rows, cols, 64);
  // Blocks of 70 rows: tiles of 5 rows straddle block boundaries.
  const [side] = await detailSidesOnGpu(quantizer, rowBlocks(values, rows, cols, 70), { rows, cols, sides: [s], dtype: 'BF16', grid });
  const cpuValues = Float32Array.from(values);
  const channels = makeChannelStats(rows);
  const cpu = finishStats(quantizeMatrix(cpuValues, rows, cols, { settings: s, dtype: 'BF16', channels, tensor: 't' }).stats);
  // The totals the overview's cells show when computed on the panel's GPU.
  assert.ok(
    relClose(side.totals!.residualEntropy, cpu.residualEntropy, 1e-4),
    `entropy ${side.totals!.residualEntropy} vs ${cpu.residualEntropy}`,
  );
  assert.ok(
    relClose(side.totals!.scaleRatio, cpu.scaleRatio.mean, 1e-9),
    `scale ratio ${side.totals!.scaleRatio} vs ${cpu.scaleRatio.mean}`,
  );
  assert.equal(side.totals!.clippedFraction, cpu.clippedFraction);
  assert.ok(relClose(side.sqnrDb!, cpu.sqnrDb!, 1e-5), `SQNR ${side.sqnrDb} vs ${cpu.sqnrDb}`);
  const tiles = emptyTiles(grid);
  addTiles(tiles, grid, values, cpuValues, rows, cols, 0);
  const want = tileMeans(tiles);
  for (let i = 0; i < want.absW.length; i++) assert.ok(relClose(side.tiles.sqE[i], want.sqE[i], 1e-4, 1e-20), `tile ${i}`);
  for (let r = 0; r < rows; r++) {
    assert.ok(relClose(side.channels.mse[r], channels.mse[r], 1e-4), `row ${r} mse`);
    assert.ok(relClose(side.channels.scaleRatio[r], channels.scaleRatio[r], 1e-6), `row ${r} scale ratio`);
  }
  // Both sides (DARE-Q and RTN) in one pass: each block read once, the same numbers as side by side.
  const rtnSettings = resolveSettings({ method: 'rtn', groupSize: 32 });
  let reads = 0;
  function* counted() {
    for (const b of rowBlocks(values, rows, cols, 70)) {
      reads++;
      yield b;
    }
  }
  const [both, rtn] = await detailSidesOnGpu(quantizer, counted(), { rows, cols, sides: [s, rtnSettings], dtype: 'BF16', grid });
  assert.equal(reads, 5);
  assert.deepEqual(both.channels.scaleRatio, side.channels.scaleRatio);
  assert.equal(both.sqnrDb, side.sqnrDb);
  const [rtnAlone] = await detailSidesOnGpu(quantizer, rowBlocks(values, rows, cols, 70), {
    rows,
    cols,
    sides: [rtnSettings],
    dtype: 'BF16',
    grid,
  });
  assert.deepEqual(rtn.channels.mse, rtnAlone.channels.mse);
  assert.equal(rtn.method, 'rtn');
});

test.after(() => {
  quantizer?.dispose();
});
