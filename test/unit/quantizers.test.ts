/**
 * RTN and every DARE-Q preset against a straightforward reference written here from
 * docs/methods.md §1 (plain loops, every bin summed in bin order, no pruning).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeightlensError } from '../../src/core/errors';
import { quantizeMatrix } from '../../src/core/quant/matrix';
import { packRows, unpackRows } from '../../src/core/quant/pack';
import { makeTrace } from '../../src/core/quant/search';
import { traceGroup } from '../../src/core/quant/matrix';
import { resolveSettings, type QuantSettings, type SettingsInput } from '../../src/core/quant/settings';
import { normals } from '../helpers/safetensors';

function refRound(x: number, halfEven: boolean): number {
  if (!halfEven) return Math.floor(x + 0.5);
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function refEntropy(e: number[], B: number, kind: 'probability' | 'density'): number {
  let lo = Math.min(...e);
  let hi = Math.max(...e);
  if (kind === 'probability' && lo === hi) return 0;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const counts = new Array(B).fill(0);
  for (const x of e) counts[Math.min(B - 1, Math.floor((x - lo) * (B / (hi - lo))))]++;
  let h = 0;
  if (kind === 'probability') {
    for (const c of counts) {
      const p = c / e.length;
      if (c > 0) h += p * Math.log(p + 1e-10);
    }
  } else {
    const width = (hi - lo) / B;
    for (const c of counts) {
      const d = c / width / e.length + 1e-8;
      h += d * Math.log(d);
    }
  }
  return -h;
}

/** Returns the reference's losses per candidate and its choice. */
function refSearch(w: number[], s: QuantSettings): { scales: number[]; losses: number[]; choice: number } {
  const qmin = -(2 ** (s.bits - 1));
  const qmax = 2 ** (s.bits - 1) - 1;
  const absmax = Math.max(...w.map(Math.abs));
  // Sign-aware: the first largest-magnitude weight takes code qmin, so the scale's sign is minus its sign.
  const sign = s.signAware && w.find((x) => Math.abs(x) === absmax)! > 0 ? -1 : 1;
  const rtn = absmax / (s.signAware ? -qmin : qmax);
  const [lo, hi] = s.method === 'rtn' ? [rtn, rtn] : s.range === 'paper' ? [rtn, absmax] : [s.clipAlphaMin * rtn, rtn];
  const K = s.method === 'rtn' ? 1 : s.grid;
  const msq = w.reduce((a, x) => a + x * x, 0) / w.length;
  const scales: number[] = [];
  const losses: number[] = [];
  let choice = 0;
  for (let k = 0; k < K; k++) {
    const sc = sign * (K === 1 ? lo : k === K - 1 ? hi : lo + k * ((hi - lo) / (K - 1)));
    const e = w.map((x) => x - Math.min(qmax, Math.max(qmin, refRound(x / sc, s.rounding === 'half-even'))) * sc);
    const l2 = e.reduce((a, x) => a + x * x, 0) / e.length;
    const h = refEntropy(e, s.bins, s.histogram);
    const loss = s.normalize
      ? (s.lambdaWeight * l2) / msq + (s.lambdaEntropy * h) / Math.log(s.bins)
      : s.lambdaWeight * l2 + s.lambdaEntropy * h;
    scales.push(sc);
    losses.push(loss);
    if (loss < losses[choice]) choice = k;
  }
  return { scales, losses, choice };
}

function checkAgainstReference(input: SettingsInput, rows: number, cols: number, seed: number): { ties: number; groups: number } {
  const s = resolveSettings(input);
  const w = normals(rows * cols, seed, 0.02);
  for (let r = 0; r < rows; r += 7) for (let c = 0; c < cols; c++) w[r * cols + c] *= 15; // outlier rows
  const values = Float64Array.from(w);
  const codes = new Int8Array(rows * cols);
  const { scales } = quantizeMatrix(values, rows, cols, { settings: s, dtype: 'F64', codes, tensor: 't' });
  const g = s.groupSize > 0 ? Math.min(s.groupSize, cols) : cols;
  const groups = Math.ceil(cols / g);
  let ties = 0;
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < groups; gi++) {
      const part = Array.from(w.subarray(r * cols + gi * g, r * cols + Math.min(cols, (gi + 1) * g)));
      const ref = refSearch(part, s);
      const got = scales[r * groups + gi];
      if (got !== ref.scales[ref.choice]) {
        // Allowed only where two candidates' losses tie within float rounding.
        const k = ref.scales.indexOf(got);
        assert.ok(k >= 0, `row ${r} group ${gi}: scale ${got} is not a candidate`);
        const a = ref.losses[k];
        const b = ref.losses[ref.choice];
        assert.ok(
          Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b)),
          `row ${r} group ${gi}: chose ${k} (${a}) over ${ref.choice} (${b})`,
        );
        ties++;
      }
      // Codes and dequantized values follow from the chosen scale.
      const { qmin, qmax } = { qmin: -(2 ** (s.bits - 1)), qmax: 2 ** (s.bits - 1) - 1 };
      part.forEach((x, i) => {
        const q = Math.min(qmax, Math.max(qmin, refRound(x / got, s.rounding === 'half-even')));
        const idx = r * cols + gi * g + i;
        assert.equal(codes[idx], q);
        assert.equal(values[idx], q * got + 0);
      });
    }
  }
  return { ties, groups: rows * groups };
}

test('RTN: absmax / qmax scale, round half up, per-channel and group-wise', () => {
  for (const bits of [2, 3, 4, 8]) {
    checkAgainstReference({ method: 'rtn', bits, groupSize: 0 }, 9, 40, bits);
    checkAgainstReference({ method: 'rtn', bits, groupSize: 16 }, 9, 40, bits + 10);
  }
});

test('DARE-Q clip preset (the default) matches the reference, per-channel and group-wise', () => {
  for (const bits of [3, 4, 8]) {
    checkAgainstReference({ preset: 'clip', bits, groupSize: 0 }, 12, 64, bits);
    checkAgainstReference({ preset: 'clip', bits, groupSize: 32 }, 12, 100, bits + 1); // short last group
  }
  checkAgainstReference({ preset: 'clip', lambdaEntropy: 0.3, bins: 64, grid: 37 }, 8, 200, 5);
});

test('DARE-Q paper preset reproduces Algorithm 1 exactly: raw terms, the paper range, its failure', () => {
  checkAgainstReference({ preset: 'paper', groupSize: 0 }, 10, 64, 3);
  checkAgainstReference({ preset: 'paper', groupSize: 0, lambdaEntropy: 1e-5 }, 10, 64, 4);
  // With raw terms and lambda_H 0.01 the entropy term dominates and huge scales win: the paper's failure.
  const s = resolveSettings({ preset: 'paper', groupSize: 0 });
  const w = Float64Array.from(normals(64 * 8, 9, 0.02));
  const { stats } = quantizeMatrix(w, 8, 64, { settings: s, dtype: 'F64', tensor: 't' });
  assert.ok(stats.ratioSum / stats.ratioGroups > 2, 'paper preset picks scales well above the absmax scale');
});

test("DARE-Q reference preset reproduces the authors' code: K 20, half-even, density histogram, B 128", () => {
  const s = resolveSettings({ preset: 'reference' });
  assert.equal(s.grid, 20);
  assert.equal(s.bins, 128);
  assert.equal(s.lambdaEntropy, 0.1);
  assert.equal(s.rounding, 'half-even');
  assert.equal(s.histogram, 'density');
  checkAgainstReference({ preset: 'reference', groupSize: 0 }, 10, 64, 6);
  checkAgainstReference({ preset: 'reference', groupSize: 16 }, 10, 50, 7);
});

test('presets fix their knobs; explicit values override; group size is independent', () => {
  const d = resolveSettings();
  assert.deepEqual(
    [d.method, d.preset, d.bits, d.groupSize, d.normalize, d.lambdaEntropy, d.bins, d.grid, d.clipAlphaMin, d.signAware, d.symmetric],
    ['dareq', 'clip', 4, 128, true, 0, 256, 100, 0.5, true, true],
  );
  // The published presets keep their own knobs whatever the defaults become.
  const paper = resolveSettings({ preset: 'paper' });
  assert.deepEqual([paper.lambdaEntropy, paper.signAware, paper.normalize], [0.01, false, false]);
  const ref = resolveSettings({ preset: 'reference' });
  assert.deepEqual([ref.lambdaEntropy, ref.signAware, ref.grid, ref.bins], [0.1, false, 20, 128]);
  assert.equal(resolveSettings({ symmetric: false }).signAware, false, 'a zero point takes the place of sign-aware scales');
  const p = resolveSettings({ preset: 'paper', normalize: true, groupSize: 64 });
  assert.equal(p.normalize, true);
  assert.equal(p.range, 'paper');
  assert.equal(p.groupSize, 64);
  const r = resolveSettings({ preset: 'reference', grid: 50 });
  assert.equal(r.grid, 50);
  assert.equal(r.bins, 128);
  assert.throws(() => resolveSettings({ bits: 9 }), /bits must be an integer from 2 to 8/);
  assert.throws(() => resolveSettings({ grid: 0 }), /grid/);
  assert.throws(() => resolveSettings({ clipAlphaMin: 0 }), /clip-alpha-min/);
  assert.throws(() => resolveSettings({ lambdaEntropy: -1 }), /lambda-entropy/);
});

test('an all-zero row gets scale 1, codes 0 and no NaN', () => {
  const s = resolveSettings({ groupSize: 0 });
  const w = new Float32Array([0, 0, 0, 0, 0.5, -0.25, 0.1, 0]);
  const codes = new Int8Array(8);
  const { scales, stats } = quantizeMatrix(w, 2, 4, { settings: s, dtype: 'F32', codes, tensor: 't' });
  assert.equal(scales[0], 1);
  assert.deepEqual(Array.from(codes.slice(0, 4)), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(w.slice(0, 4)), [0, 0, 0, 0]);
  for (const v of w) assert.ok(Number.isFinite(v));
  assert.ok(Number.isFinite(stats.sumE2));
});

test('NaN or Inf is refused with the tensor and the row named', () => {
  const s = resolveSettings({ groupSize: 0 });
  const w = new Float32Array([1, 2, 3, 4, NaN, 5]);
  assert.throws(
    () => quantizeMatrix(w, 3, 2, { settings: s, dtype: 'F32', tensor: 'layers.0.q.weight', file: 'm.safetensors', rowBase: 10 }),
    (e: unknown) =>
      e instanceof WeightlensError && /m\.safetensors: tensor "layers\.0\.q\.weight": contains NaN or Inf in row 12/.test(e.message),
  );
  assert.throws(() => quantizeMatrix(new Float32Array([1, -Infinity, 1]), 1, 3, { settings: s, dtype: 'F32', tensor: 't' }), /row 0/);
});

test('rows of length 1', () => {
  const s = resolveSettings({ groupSize: 128 });
  const w = new Float32Array([0.5, -2, 0]);
  const codes = new Int8Array(3);
  const { scales } = quantizeMatrix(w, 3, 1, { settings: s, dtype: 'F32', codes, tensor: 't' });
  // One weight per row: its own absmax; the search may clip but the error stays small.
  assert.equal(scales.length, 3);
  assert.equal(scales[2], 1);
  assert.ok(Math.abs(w[0] - 0.5) <= 0.5 / 7);
  assert.ok(Math.abs(w[1] + 2) <= 2 / 7 + 1e-6);
});

test('int4 and int8 packing round-trips odd column counts', () => {
  for (const bits of [4, 8]) {
    for (const cols of [1, 7, 8, 9, 13]) {
      const rows = 3;
      const codes = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 5) % 2 ** bits) - 2 ** (bits - 1));
      const packed = packRows(codes, rows, cols, bits);
      assert.equal(packed.length, rows * Math.ceil((cols * bits) / 32));
      assert.deepEqual(Array.from(unpackRows(packed, rows, cols, bits)), Array.from(codes));
    }
  }
  // Layout: code i of a word at bits 4*i, stored as q + 8.
  const p = packRows(Int8Array.from([-8, 7, 0, 1]), 1, 4, 4);
  assert.equal(p[0], 0 | (15 << 4) | (8 << 8) | (9 << 12));
});

test('the L(s) trace lists every candidate with its terms and marks the choice', () => {
  const s = resolveSettings({ groupSize: 0, lambdaEntropy: 0.05 });
  const w = Float64Array.from(normals(64, 3));
  const trace = makeTrace(s.grid);
  const idx = traceGroup(w, 0, 64, s, trace);
  const ref = refSearch(Array.from(w), s);
  assert.equal(idx, ref.choice);
  for (let k = 0; k < s.grid; k++) assert.ok(Math.abs(trace.loss[k] - ref.losses[k]) <= 1e-12 * Math.abs(ref.losses[k]));
});

test('F32 weights: scales are stored as F32 and dequantized values are what a runtime computes', () => {
  const s = resolveSettings({ groupSize: 16 });
  const w = Float32Array.from(normals(4 * 48, 11));
  const orig = Float32Array.from(w);
  const codes = new Int8Array(w.length);
  const { scales } = quantizeMatrix(w, 4, 48, { settings: s, dtype: 'F32', codes, tensor: 't' });
  for (const sc of scales) assert.equal(sc, Math.fround(sc));
  for (let i = 0; i < w.length; i++) {
    const sc = scales[Math.floor(i / 48) * 3 + Math.floor((i % 48) / 16)];
    assert.equal(w[i], Math.fround(codes[i] * sc) + 0);
    assert.ok(Math.abs(w[i] - orig[i]) <= Math.abs(sc) * 0.5 + 1e-7 || Math.abs(codes[i]) >= 7);
  }
});

test('per-channel statistics: MSE, entropy, scale ratio and clipped count per output channel', async () => {
  const { makeChannelStats } = await import('../../src/core/quant/stats');
  const s = resolveSettings({ groupSize: 8 });
  const rows = 5;
  const cols = 20;
  const w = Float64Array.from(normals(rows * cols, 21));
  const orig = Float64Array.from(w);
  const ch = makeChannelStats(rows);
  const codes = new Int8Array(rows * cols);
  const { scales, stats } = quantizeMatrix(w, rows, cols, { settings: s, dtype: 'F64', codes, channels: ch, tensor: 't' });
  let totalE2 = 0;
  for (let r = 0; r < rows; r++) {
    let e2 = 0;
    for (let c = 0; c < cols; c++) e2 += (orig[r * cols + c] - w[r * cols + c]) ** 2;
    totalE2 += e2;
    assert.ok(Math.abs(ch.mse[r] - e2 / cols) <= 1e-15);
    const ratios = [0, 1, 2].map((g) => {
      const part = Array.from(orig.subarray(r * cols + g * 8, r * cols + Math.min(cols, g * 8 + 8)));
      return Math.abs(scales[r * 3 + g]) / (Math.max(...part.map(Math.abs)) / 7);
    });
    assert.ok(Math.abs(ch.scaleRatio[r] - ratios.reduce((a, b) => a + b) / 3) < 1e-12);
    assert.ok(ch.entropy[r] > 0 && ch.entropy[r] <= Math.log(8) + 1e-9);
    assert.ok(ch.clipped[r] >= 0 && ch.clipped[r] <= cols);
    // Group by group: the sums of squares of groups of 8, 8 and 4 original weights, added.
    const groupSq = [0, 8, 16].map((c0) => orig.subarray(r * cols + c0, r * cols + Math.min(cols, c0 + 8)).reduce((a, x) => a + x * x, 0));
    assert.equal(ch.sumSq[r], groupSq[0] + groupSq[1] + groupSq[2]);
  }
  assert.ok(Math.abs(stats.sumE2 - totalE2) < 1e-15);
  const { finishStats } = await import('../../src/core/quant/stats');
  const fin = finishStats(stats);
  const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(Math.abs(fin.original.mean - mean(orig)) < 1e-15);
  assert.ok(Math.abs(fin.dequantized.mean - mean(w)) < 1e-15);
  assert.equal(fin.original.absmax, Math.max(...Array.from(orig, Math.abs)));
  assert.equal(fin.dequantized.absmax, Math.max(...Array.from(w, Math.abs)));
  assert.ok(Math.abs(fin.original.rms - Math.sqrt(mean(orig.map((x) => x * x)))) < 1e-15);
  assert.equal(
    stats.codeHist.reduce((a, b) => a + b),
    rows * cols,
  );
});

test('heatmap tiles: any matrix reduced to at most 256 x 256 means, accumulated chunk by chunk', async () => {
  const { addTiles, emptyTiles, mergeTiles, tileGrid, tileMeans } = await import('../../src/core/quant/tiles');
  const g = tileGrid(1000, 300);
  assert.deepEqual([g.rows, g.cols, g.rowStep, g.colStep], [250, 150, 4, 2]);
  assert.deepEqual(tileGrid(10, 7), { rows: 10, cols: 7, rowStep: 1, colStep: 1 });
  // Two chunks of rows accumulate to the same means as one pass.
  const rows = 9;
  const cols = 5;
  const grid = tileGrid(rows, cols, 2);
  const w = Float64Array.from(normals(rows * cols, 4));
  const d = w.map((x) => Math.round(x * 100) / 100);
  const whole = emptyTiles(grid);
  addTiles(whole, grid, w, d, rows, cols, 0);
  const parts = emptyTiles(grid);
  const a = emptyTiles(grid);
  addTiles(a, grid, w.subarray(0, 4 * cols), d.subarray(0, 4 * cols), 4, cols, 0);
  const b = emptyTiles(grid);
  addTiles(b, grid, w.subarray(4 * cols), d.subarray(4 * cols), 5, cols, 4);
  mergeTiles(parts, a);
  mergeTiles(parts, b);
  assert.deepEqual(Array.from(parts.count), Array.from(whole.count));
  const m = tileMeans(whole);
  // Tile (0, 0) covers rows 0..4 and cols 0..2.
  let sum = 0;
  for (let r = 0; r < 5; r++) for (let c = 0; c < 3; c++) sum += Math.abs(w[r * cols + c] - d[r * cols + c]);
  assert.ok(Math.abs(m.absE[0] - sum / 15) < 1e-7);
  assert.equal(
    whole.count.reduce((x, y) => x + y),
    rows * cols,
  );
});

/** absmax and mean(w^2) of a group, as the quantizer passes them to the search. */
function groupMoments(w: Float32Array): { absmax: number; msq: number } {
  let absmax = 0;
  let sq = 0;
  for (const x of w) {
    absmax = Math.max(absmax, Math.abs(x));
    sq += x * x;
  }
  return { absmax, msq: sq / w.length };
}

test('coarse-to-fine: the best of every 10th candidate, then the best within 9 of it (K = 100)', async () => {
  const { makeScratch, searchCoarseToFine, searchGroup } = await import('../../src/core/quant/search');
  // With the entropy term, whose jagged L(s) the approximate search can misread.
  const s = resolveSettings({ preset: 'clip', search: 'coarse-to-fine', lambdaEntropy: 0.01 });
  let differs = 0;
  for (let seed = 0; seed < 40; seed++) {
    const n = 128;
    const w = Float32Array.from(normals(n, 900 + seed, 0.02));
    if (seed % 5 === 0) w[3] = 0.3;
    const { absmax, msq } = groupMoments(w);
    const trace = makeTrace(s.grid);
    traceGroup(w, 0, n, { ...s, search: 'exhaustive' }, trace);
    const argmin = (ks: number[]) => ks.reduce((b, k) => (trace.loss[k] < trace.loss[b] ? k : b));
    const coarse = argmin([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]);
    const window: number[] = [];
    for (let k = Math.max(0, coarse - 9); k <= Math.min(99, coarse + 9); k++) window.push(k);
    const want = argmin(window);
    const got = searchCoarseToFine({ w, off: 0, n, absmax, msq }, s, makeScratch(n, s.bins));
    assert.equal(got.index, want, `seed ${seed}`);
    assert.equal(got.loss, trace.loss[want]);
    assert.equal(searchGroup({ w, off: 0, n, absmax, msq }, s, makeScratch(n, s.bins)).index, want);
    // The panel's L(s) curve marks the candidate the file will use.
    assert.equal(traceGroup(w, 0, n, s, makeTrace(s.grid)), want);
    if (want !== argmin([...Array(100).keys()])) differs++;
  }
  // An approximation, and a close one: a few of these groups, not none and not most.
  assert.ok(differs > 0 && differs < 10, `${differs} of 40 groups differ from the exhaustive choice`);
});

test('the pruned, reordered search picks exactly what the exhaustive search picks (ties to the lowest index)', async () => {
  const { makeScratch, searchScale } = await import('../../src/core/quant/search');
  const cases: SettingsInput[] = [
    { preset: 'clip' },
    { preset: 'clip', bits: 8, lambdaEntropy: 0.25 },
    { preset: 'clip', bits: 2, grid: 37, bins: 64 },
    { preset: 'paper' },
    { preset: 'paper', bits: 3, lambdaEntropy: 0 },
    { preset: 'reference' },
    { preset: 'clip', lambdaEntropy: 0, grid: 1000 },
    { preset: 'clip', lambdaWeight: 0, lambdaEntropy: 1 },
    // The L2-only search stops summing a candidate once it provably loses: magnitude-weighted too.
    { preset: 'clip', weighting: 'magnitude' },
    { preset: 'clip', signAware: false, grid: 300 },
    // The L2-only sweep (sweep.ts): closed forms, bounds, direct rescoring; both roundings, both
    // ranges, 8 bits (where it hands over to the direct loop past its budget), tiny grids.
    { preset: 'clip', rounding: 'half-even' },
    { preset: 'paper', lambdaEntropy: 0 },
    { preset: 'clip', bits: 8 },
    { preset: 'clip', bits: 3, grid: 9, clipAlphaMin: 0.2 },
    { preset: 'clip', weighting: 'magnitude', signAware: false, rounding: 'half-even' },
  ];
  let groups = 0;
  for (const [ci, input] of cases.entries()) {
    const s = resolveSettings(input);
    for (let seed = 0; seed < 12; seed++) {
      const n = [1, 7, 64, 300, 1024][seed % 5];
      const w = Float32Array.from(normals(n, 100 * ci + seed, 0.02));
      // Adversarial groups: repeated values (equal losses for many candidates), a spike, a constant.
      if (seed % 4 === 1) for (let i = 0; i < n; i++) w[i] = i % 2 ? 0.01 : -0.01;
      if (seed % 4 === 2) w[0] = 0.5;
      if (seed % 4 === 3) w.fill(0.003);
      const { absmax, msq } = groupMoments(w);
      const trace = makeTrace(s.grid);
      searchScale({ w, off: 0, n, absmax, msq }, s, makeScratch(n, s.bins), { trace });
      // The exhaustive answer: the first index of the least loss over all K candidates.
      let want = 0;
      for (let k = 1; k < s.grid; k++) if (trace.loss[k] < trace.loss[want]) want = k;
      // Whatever candidate the search starts from (the previous group's choice), the same answer.
      for (const hint of [-1, 0, want, s.grid >> 1, s.grid - 1]) {
        const scratch = makeScratch(n, s.bins);
        scratch.hint = hint;
        const got = searchScale({ w, off: 0, n, absmax, msq }, s, scratch);
        assert.equal(got.index, want, `${JSON.stringify(input)} seed ${seed} hint ${hint}: index`);
        assert.equal(got.loss, trace.loss[want]);
        assert.equal(scratch.hint, want, 'the next group starts at this choice');
      }
      groups++;
    }
  }
  assert.equal(groups, 180);
});

test("the sweep: every candidate's closed-form L2 lies within its bound of the direct sum, and 4-bit groups take it", async () => {
  const { makeSweepScratch, sweepL2 } = await import('../../src/core/quant/sweep');
  const { candidateAt, candidateRange, roundHalfUp, roundHalfEven, scaleSign } = await import('../../src/core/quant/search');
  let widest = 0;
  for (let seed = 0; seed < 60; seed++) {
    const s = resolveSettings({ preset: 'clip', rounding: seed % 2 ? 'half-even' : 'half-up', signAware: seed % 3 !== 0 });
    const n = [32, 128, 4096][seed % 3];
    const w = Float32Array.from(normals(n, 7000 + seed, 0.02));
    if (seed % 4 === 1) w[5] = -0.4;
    const { absmax } = groupMoments(w);
    const [lo, hi] = candidateRange(absmax, s);
    const sign = scaleSign({ w, off: 0, n, absmax }, s);
    const K = s.grid;
    const sw = makeSweepScratch(K);
    for (let k = 0; k < K; k++) sw.scs[k] = sign * candidateAt(k, K, lo, hi);
    const round = s.rounding === 'half-even' ? roundHalfEven : roundHalfUp;
    const took = sweepL2({ w, off: 0, n, round, qmin: -8, qmax: 7, grid: K, lo, step: (hi - lo) / (K - 1) }, sw, (K * n) / 6);
    assert.ok(took, `seed ${seed}: a 4-bit group of ${n} is within the sweep's budget`);
    for (let k = 0; k < K; k++) {
      let direct = 0;
      for (let i = 0; i < n; i++) {
        let q = round(w[i] / sw.scs[k]);
        q = q < -8 ? -8 : q > 7 ? 7 : q;
        const e = w[i] - q * sw.scs[k];
        direct += e * e;
      }
      const gap = Math.abs(sw.f[k] - direct);
      assert.ok(gap <= sw.d[k], `seed ${seed} k ${k}: |${sw.f[k]} - ${direct}| > ${sw.d[k]}`);
      // The bound is tight enough to leave one or two candidates to rescore, not the grid.
      widest = Math.max(widest, sw.d[k] / direct);
    }
  }
  assert.ok(widest < 1e-7, `bounds up to ${widest} of the sum`);
  // Past its budget (8 bits, a long grid) it declines and leaves the direct loop to the caller.
  const w = Float32Array.from(normals(128, 1, 0.02));
  const sw = makeSweepScratch(100);
  for (let k = 0; k < 100; k++) sw.scs[k] = 0.0001 * (1 + k / 99);
  assert.equal(
    sweepL2({ w, off: 0, n: 128, round: roundHalfUp, qmin: -128, qmax: 127, grid: 100, lo: 0.0001, step: 0.0001 / 99 }, sw, 200),
    false,
  );
});

test('sign-aware scales: the largest-magnitude weight takes code -2^(b-1) (llama.cpp Q4_0 rule), all 16 codes in use', () => {
  const w = Float32Array.from(normals(32 * 64, 11));
  const rows = 64;
  const codes = new Int8Array(w.length);
  const { scales } = quantizeMatrix(w.slice(), rows, 32, {
    settings: resolveSettings({ method: 'rtn', groupSize: 32, signAware: true }),
    dtype: 'F32',
    codes,
    tensor: 't',
  });
  for (let r = 0; r < rows; r++) {
    let peak = 0;
    for (let i = 0; i < 32; i++) if (Math.abs(w[r * 32 + i]) > Math.abs(peak)) peak = w[r * 32 + i];
    assert.equal(scales[r], Math.fround(peak / -8), `row ${r}: d = max / -8`);
    assert.equal(codes[r * 32 + [...w.subarray(r * 32, r * 32 + 32)].indexOf(peak)], -8);
  }
  // The clip search with sign-aware scales never does worse on L2 than without (it searches [alpha, 1] x absmax/8).
  const err = (signAware: boolean) =>
    quantizeMatrix(w.slice(), rows, 32, {
      settings: resolveSettings({ groupSize: 32, signAware, lambdaEntropy: 0 }),
      dtype: 'F64',
      tensor: 't',
    }).stats.sumE2;
  assert.ok(err(true) < err(false));
});

test('zero points: min-max RTN spans [min, max]; an integer zero point is a code; HQQ and refinement never raise their own error measure', () => {
  const w = Float64Array.from(normals(64 * 32, 5), (x, i) => x + (i % 64 < 32 ? 0.7 : -0.2));
  const run = (input: SettingsInput, zeroKind: 'integer' | 'float') => {
    const codes = new Int8Array(w.length);
    const r = quantizeMatrix(w.slice(), 64, 32, {
      settings: resolveSettings({ groupSize: 32, symmetric: false, ...input }),
      dtype: 'F64',
      codes,
      zeroKind,
      tensor: 't',
    });
    return { ...r, codes };
  };
  const f = run({ method: 'rtn' }, 'float');
  for (let g = 0; g < 64; g++) {
    const row = w.subarray(g * 32, g * 32 + 32);
    const min = Math.min(...row);
    assert.equal(f.zeros![g], min, 'Q4_1: m = min');
    assert.ok(Math.abs(f.scales[g] - (Math.max(...row) - min) / 15) < 1e-15);
    const cs = f.codes.subarray(g * 32, g * 32 + 32);
    assert.equal(Math.min(...cs), -8);
    assert.equal(Math.max(...cs), 7);
  }
  const i = run({ method: 'rtn' }, 'integer');
  for (let g = 0; g < 64; g++) {
    assert.ok(Number.isInteger(i.zeros![g]) && i.zeros![g] >= -8 && i.zeros![g] <= 7, 'zp in [qmin, qmax]');
  }
  // The search, HQQ and least squares all beat min-max RTN on L2 here (shifted, clipped-tail groups).
  const e = (input: SettingsInput) => run(input, 'float').stats.sumE2;
  const rtn = e({ method: 'rtn' });
  assert.ok(e({ lambdaEntropy: 0 }) < rtn);
  assert.ok(e({ method: 'hqq' }) <= rtn * 1.0001);
  assert.ok(e({ method: 'rtn', refine: 5 }) < rtn);
  assert.ok(e({ lambdaEntropy: 0, refine: 5 }) <= e({ lambdaEntropy: 0 }));
  assert.throws(() => resolveSettings({ method: 'hqq' }), /hqq optimizes a zero point/);
  assert.throws(() => resolveSettings({ symmetric: false, signAware: true }), /sign-aware scales are for symmetric codes/);
  assert.throws(() => resolveSettings({ symmetric: false, preset: 'paper' }), /asymmetric codes search the clip range/);
});
