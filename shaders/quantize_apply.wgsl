// Quantization with chosen scales, and what the panel shows of it. Mirrors quantizeMatrix in
// src/core/quant/matrix.ts:
//   group_stats  per group: absmax, sum w^2 (the host derives the scales from these, in float64)
//   apply        per group: codes, dequantized values in the weights' dtype, and the error terms
//                (sum e^2, clipped count, B-bin residual entropy)
//   tiles        the matrix reduced to a tile grid of sum |W|, sum |e|, sum e^2 and counts
//   pack         codes -> compressed-tensors int32 words (32 / bits codes per word, q + 2^(b-1))
//   moments      per row (output channel) or per group: absmax, mean, variance and kurtosis of the weights
//                (two passes: the mean first, then central moments, so nothing cancels)
//
// Codes and dequantized values are exact: the code is checked against the rounding boundary
// (2q + 1) * s / 2 with exact products (the scale split into two 12-bit halves), so it equals the
// CPU's float64 rounding bit for bit, ties included; q * s is exact in f32 for 16-bit scales and
// correctly rounded for f32 ones, and the dtype rounding is done on the bits (round to nearest even).
// The error sums are f32 (statistics, compared within tolerances).

struct ApplyParams {
  rows: u32,
  cols: u32,
  group: u32,
  groupsPerRow: u32,
  bins: u32,
  // 0 = F32, 1 = F16, 2 = BF16
  dtype: u32,
  // bit 1: round half to even (else half up)
  flags: u32,
  nx: u32,
  qmin: f32,
  qmax: f32,
  // The tile grid (tiles entry): tiles per row and column, matrix rows and columns per tile, and
  // the index of this block's first matrix row.
  tileRows: u32,
  tileCols: u32,
  rowStep: u32,
  colStep: u32,
  rowBase: u32,
  bits: u32,
}

@group(0) @binding(0) var<uniform> P: ApplyParams;
@group(0) @binding(1) var<storage, read> W: array<f32>;
// group_stats: [absmax, sum w^2] per group. apply: the scales in, one per group (index 2 * g).
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
// apply: per group [sum e^2, entropy, clipped, 0].
@group(0) @binding(3) var<storage, read_write> E: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> DEQ: array<f32>;
@group(0) @binding(5) var<storage, read_write> CODES: array<i32>;
// tiles: per tile [sum |W|, sum |e|, sum e^2, count], added to across row blocks. pack: the words.
@group(0) @binding(6) var<storage, read_write> T: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> PACKED: array<u32>;
// moments: per row or group [absmax, mean, variance, kurtosis (m4 / m2^2; 0 when constant)].
@group(0) @binding(8) var<storage, read_write> M: array<vec4<f32>>;


// Sign of 2x - (2q + 1) * s, exactly: s = hi + lo with 12 significant bits each, so both products
// with m = 2q + 1 (|m| < 2^9) are exact; 2x - m * hi is exact near the boundary (Sterbenz), and far
// from it its sign cannot flip.
fn boundarySign(x: f32, q: f32, hi: f32, lo: f32) -> i32 {
  let m = 2.0 * q + 1.0;
  let d = 2.0 * x - m * hi;
  let t = m * lo;
  if (d > t) { return 1; }
  if (d < t) { return -1; }
  return 0;
}

// At the boundary between q and q + 1, does the CPU pick q + 1? Half up: always; half even: when
// q + 1 is even.
fn tieUp(q: f32) -> bool {
  if ((P.flags & 2u) == 0u) { return true; }
  return (i32(q) & 1) != 0;
}

// The CPU's code of x at scale s (before clamping), exactly.
fn exactCode(x: f32, s: f32) -> f32 {
  var q = round(x / s);
  if (abs(q) > P.qmax + 4.0) { return q; } // far outside the range: clamped either way
  let hi = bitcast<f32>(bitcast<u32>(s) & 0xFFFFF000u);
  let lo = s - hi;
  for (var k = 0; k < 3; k++) {
    let up = boundarySign(x, q, hi, lo);
    if (up > 0 || (up == 0 && tieUp(q))) { q += 1.0; continue; }
    let down = boundarySign(x, q - 1.0, hi, lo);
    if (down < 0 || (down == 0 && !tieUp(q - 1.0))) { q -= 1.0; continue; }
    break;
  }
  return q;
}

// Round to the weights' dtype, to nearest even, on the bits (x finite).
fn toDtype(x: f32) -> f32 {
  if (P.dtype == 0u) { return x; }
  let b = bitcast<u32>(x);
  if (P.dtype == 2u) {
    return bitcast<f32>((b + 0x7FFFu + ((b >> 16u) & 1u)) & 0xFFFF0000u);
  }
  let sign = b & 0x80000000u;
  let a = abs(x);
  if (a >= 65520.0) { return bitcast<f32>(sign | 0x7F800000u); }
  if (a < 6.103515625e-05) {
    // f16 subnormals are multiples of 2^-24: scaling by a power of two is exact, round() is to even.
    return select(1.0, -1.0, sign != 0u) * round(a * 16777216.0) / 16777216.0;
  }
  let m = b & 0x7FFFFFFFu;
  return bitcast<f32>(sign | ((m + 0xFFFu + ((m >> 13u) & 1u)) & 0xFFFFE000u));
}

fn groupRange(gid: u32) -> vec3u {
  return groupSpan(gid, P.cols, P.group, P.groupsPerRow);
}

@compute @workgroup_size(WG)
fn group_stats(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let gid = workgroupIndex(wid, P.nx);
  if (gid >= P.rows * P.groupsPerRow) { return; }
  let r = groupRange(gid);
  var am = 0.0;
  var s2 = 0.0;
  for (var i = lid; i < r.y; i += WG) {
    let x = W[r.x + i];
    am = max(am, abs(x));
    s2 += x * x;
  }
  let stats = workgroupReduce(lid, vec4f(s2, 0.0, 0.0, am));
  if (lid == 0u) {
    G[2u * gid] = stats.w;
    G[2u * gid + 1u] = stats.x;
  }
}

@compute @workgroup_size(WG)
fn apply(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let gid = workgroupIndex(wid, P.nx);
  if (gid >= P.rows * P.groupsPerRow) { return; }
  let r = groupRange(gid);
  let s = G[2u * gid];
  var e2 = 0.0;
  var mn = 3.4e38;
  var mx = -3.4e38;
  var clipped = 0.0;
  for (var i = lid; i < r.y; i += WG) {
    let x = W[r.x + i];
    // A negative (sign-aware) scale: x / s = (-x) / (-s) exactly, and exactCode wants s > 0.
    var q = select(exactCode(x, s), exactCode(-x, -s), s < 0.0);
    if (q < P.qmin) { q = P.qmin; clipped += 1.0; } else if (q > P.qmax) { q = P.qmax; clipped += 1.0; }
    var d = toDtype(q * s);
    // The CPU's codes and values carry no sign of zero (round() here gives -0 for -0.5 < x/s < 0).
    if (bitcast<u32>(d) == 0x80000000u) { d = 0.0; }
    DEQ[r.x + i] = d;
    CODES[r.x + i] = i32(q); // i32(-0.0) is 0
    let e = x - d;
    e2 += e * e;
    mn = min(mn, e);
    mx = max(mx, e);
  }
  let errors = workgroupReduce(lid, vec4f(e2, clipped, mn, mx));
  let first = errors.z;
  let last = errors.w;
  let sumE2 = errors.x;
  let clippedAll = errors.y;
  // The probability histogram of the residuals over [min, max], B bins, last bin closed.
  var h = 0.0;
  if (last > first) {
    let B = P.bins;
    for (var j = lid; j < B; j += WG) { atomicStore(&hist[j], 0u); }
    workgroupBarrier();
    let norm = f32(B) / (last - first);
    for (var i = lid; i < r.y; i += WG) {
      let e = W[r.x + i] - DEQ[r.x + i];
      let b = min(u32(max(floor((e - first) * norm), 0.0)), B - 1u);
      atomicAdd(&hist[b], 1u);
    }
    workgroupBarrier();
    var part = 0.0;
    for (var j = lid; j < B; j += WG) {
      let c = f32(atomicLoad(&hist[j]));
      if (c > 0.0) {
        let p = c / f32(r.y);
        part += p * log(p + 1e-10);
      }
    }
    h = -workgroupReduce(lid, vec4f(part, 0.0, 0.0, 0.0)).x;
  }
  if (lid == 0u) { E[gid] = vec4f(sumE2, h, clippedAll, 0.0); }
}

// One workgroup per tile; the block holds matrix rows [rowBase, rowBase + rows).
@compute @workgroup_size(WG)
fn tiles(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = workgroupIndex(wid, P.nx);
  if (tile >= P.tileRows * P.tileCols) { return; }
  let tr = tile / P.tileCols;
  let tc = tile % P.tileCols;
  let r0 = max(tr * P.rowStep, P.rowBase);
  let r1 = min((tr + 1u) * P.rowStep, P.rowBase + P.rows);
  if (r0 >= r1) { return; }
  let c0 = tc * P.colStep;
  let c1 = min(c0 + P.colStep, P.cols);
  let w = c1 - c0;
  let count = (r1 - r0) * w;
  var aw = 0.0;
  var ae = 0.0;
  var se = 0.0;
  for (var i = lid; i < count; i += WG) {
    let idx = (r0 - P.rowBase + i / w) * P.cols + c0 + i % w;
    let x = W[idx];
    let e = x - DEQ[idx];
    aw += abs(x);
    ae += abs(e);
    se += e * e;
  }
  let absSums = workgroupReduce(lid, vec4f(aw, ae, 0.0, 0.0));
  let sumE2 = workgroupReduce(lid, vec4f(se, 0.0, 0.0, 0.0)).x;
  if (lid == 0u) {
    T[tile] = T[tile] + vec4f(absSums.x, absSums.y, sumE2, f32(count));
  }
}

// One invocation per output word.
@compute @workgroup_size(WG)
fn pack(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let per = 32u / P.bits;
  let wcols = (P.cols + per - 1u) / per;
  let word = workgroupIndex(wid, P.nx) * WG + lid;
  if (word >= P.rows * wcols) { return; }
  let row = word / wcols;
  let c0 = (word % wcols) * per;
  let offset = 1 << (P.bits - 1u);
  var bits = 0u;
  for (var k = 0u; k < per; k++) {
    if (c0 + k < P.cols) {
      bits = bits | (u32(CODES[row * P.cols + c0 + k] + offset) << (P.bits * k));
    }
  }
  PACKED[word] = bits;
}

// One workgroup per group (the runner sets group = cols for one per row).
@compute @workgroup_size(WG)
fn moments(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let gid = workgroupIndex(wid, P.nx);
  if (gid >= P.rows * P.groupsPerRow) { return; }
  let r = groupRange(gid);
  var s = 0.0;
  var am = 0.0;
  for (var i = lid; i < r.y; i += WG) {
    let x = W[r.x + i];
    s += x;
    am = max(am, abs(x));
  }
  let first = workgroupReduce(lid, vec4f(s, 0.0, 0.0, am));
  let mean = first.x / f32(r.y);
  let absmax = first.w;
  var m2 = 0.0;
  var m4 = 0.0;
  for (var i = lid; i < r.y; i += WG) {
    let d = W[r.x + i] - mean;
    let d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  let central = workgroupReduce(lid, vec4f(m2, m4, 0.0, 0.0));
  if (lid == 0u) {
    let v = central.x / f32(r.y);
    let k = select(0.0, (central.y / f32(r.y)) / (v * v), v > 0.0);
    M[gid] = vec4f(absmax, mean, v, k);
  }
}
