// DARE-Q scale search, one workgroup per group (a row, or g consecutive weights of a row):
// for each of K candidate scales, the residual's L2 and B-bin histogram entropy, and the loss
// L = lw * L2 (/ mean w^2) + lh * H (/ ln B). Mirrors src/core/quant/search.ts: the same presets,
// rounding and histogram kinds.
//
// f32 here, float64 on the CPU: a weight whose w/s sits on a rounding boundary can get another
// code, and a residual on a bin edge can land in the neighbouring bin. So each candidate also
// counts such "fragile" weights and gets bounds on the loss the CPU would compute: the group's
// choice is certain only when the winner's upper bound is below every other candidate's lower
// bound; otherwise the host searches that group on the CPU. Results equal the CPU's, always.

struct SearchParams {
  rows: u32,
  cols: u32,
  group: u32,
  groupsPerRow: u32,
  grid: u32,
  bins: u32,
  nx: u32,
  qmin: f32,
  qmax: f32,
  lw: f32,
  lh: f32,
  alpha: f32,
  // bit 0: clip range (else the paper's); bit 1: round half to even (else half up);
  // bit 2: density histogram (else probability); bit 3: normalized loss terms; bit 4: sign-aware
  // scales (the sign of minus the first largest-magnitude weight, that weight on code qmin).
  flags: u32,
  totalGroups: u32,
}

@group(0) @binding(0) var<uniform> P: SearchParams;
@group(0) @binding(1) var<storage, read> W: array<f32>;
// Per group: [best index (or -1 for an all-zero group), the winner's loss upper bound, the lowest
// lower bound among the other candidates, 0]; indices < 2^24 are exact in f32.
@group(0) @binding(2) var<storage, read_write> OUT: array<vec4<f32>>;
// Every candidate's lower bound, [group][K] (scratch for the contender mask below).
@group(0) @binding(3) var<storage, read_write> LB: array<f32>;
// Per undecided group, ceil(K / 32) words: bit k set when candidate k's lower bound is below the
// winner's upper bound — the only candidates that can still win, which the host scores in float64.
@group(0) @binding(4) var<storage, read_write> MASK: array<u32>;

fn quantized(x: f32, sc: f32) -> f32 {
  let y = x / sc;
  var q: f32;
  if ((P.flags & 2u) != 0u) { q = round(y); } else { q = floor(y + 0.5); }
  return clamp(q, P.qmin, P.qmax);
}

// Relative f32 error allowed in a loss (sums of up to a few thousand terms per thread).
const ARITH: f32 = 1e-4;
const BIG: f32 = 3.4e38;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let gid = workgroupIndex(wid, P.nx);
  if (gid >= P.totalGroups) { return; }
  let span = groupSpan(gid, P.cols, P.group, P.groupsPerRow);
  let off = span.x;
  let n = span.y;

  // absmax and mean(w^2) of the group.
  var am = 0.0;
  var s2 = 0.0;
  for (var i = lid; i < n; i += WG) {
    let x = W[off + i];
    am = max(am, abs(x));
    s2 += x * x;
  }
  let stats = workgroupReduce(lid, vec4f(s2, 0.0, 0.0, am));
  let absmax = stats.w;
  let msq = stats.x / f32(n);
  if (absmax == 0.0) {
    if (lid == 0u) { OUT[gid] = vec4f(-1.0, 0.0, 0.0, 0.0); }
    return;
  }
  // Sign-aware: the candidates' sign is minus that of the first weight of magnitude absmax (the
  // CPU's scaleSign), their magnitudes run up to absmax / -qmin.
  var sign = 1.0;
  var codeTop = P.qmax;
  if ((P.flags & 16u) != 0u) {
    codeTop = -P.qmin;
    var firstPeak = 3.4e38;
    for (var i = lid; i < n; i += WG) {
      if (abs(W[off + i]) == absmax) { firstPeak = min(firstPeak, f32(i)); }
    }
    let at = u32(workgroupReduce(lid, vec4f(0.0, 0.0, firstPeak, 0.0)).z);
    if (W[off + at] > 0.0) { sign = -1.0; }
  }
  let rtn = absmax / codeTop;
  var lo = rtn;
  var hi = absmax;
  if ((P.flags & 1u) != 0u) { lo = P.alpha * rtn; hi = rtn; }
  let B = P.bins;
  let lnB = log(f32(B));
  var lw = P.lw;
  var lh = P.lh;
  if ((P.flags & 8u) != 0u) { lw = P.lw / msq; lh = P.lh / lnB; }
  let density = (P.flags & 4u) != 0u;

  var best = BIG;
  var bestUB = BIG;
  var bestK: i32 = 0;
  // The two lowest lower bounds over the candidates, and which candidate has the lowest.
  var lowestLB = BIG;
  var lowestK: i32 = -1;
  var secondLB = BIG;
  // How far f32 can stray from float64 here: w/s carries the division's 2.5 ulp and the f32
  // candidate's own rounding (a few 1e-7 relative); a residual, the same relative to |w|, which in
  // bins is up to qmax * B times that.
  let roundEps = 6e-7;
  let binEps = f32(P.bins) * (P.qmax + 1.0) * 6e-7;
  for (var k = 0u; k < P.grid; k++) {
    var sc = lo;
    if (P.grid > 1u) {
      if (k == P.grid - 1u) { sc = hi; } else { sc = lo + f32(k) * ((hi - lo) / f32(P.grid - 1u)); }
    }
    sc = sign * sc;
    var ss = 0.0;
    var mn = 3.4e38;
    var mx = -3.4e38;
    var roundFragile = 0.0;
    for (var i = lid; i < n; i += WG) {
      let x = W[off + i];
      let y = x / sc + 0.5;
      if (abs(y - round(y)) < roundEps * max(1.0, abs(y)) && y > P.qmin + 0.5 && y < P.qmax + 0.5) { roundFragile += 1.0; }
      let e = x - quantized(x, sc) * sc;
      ss += e * e;
      mn = min(mn, e);
      mx = max(mx, e);
    }
    let residuals = workgroupReduce(lid, vec4f(ss, 0.0, mn, mx));
    let l2 = residuals.x / f32(n);
    var first = residuals.z;
    var last = residuals.w;
    // A weight on a rounding boundary may get the other code on the CPU: its residual is about
    // +-s/2 either way (L2 holds) but may move anywhere in the histogram: only L2 bounds the loss.
    let roundUnsure = workgroupReduce(lid, vec4f(roundFragile, 0.0, 0.0, 0.0)).x > 0.0;
    var unknown = false;
    var binFragile = 0.0;
    var fullest = 0.0;
    var h = 0.0;
    if (lh != 0.0 && (density || last > first)) {
      if (!(last > first)) { first -= 0.5; last += 0.5; }
      for (var j = lid; j < B; j += WG) { atomicStore(&hist[j], 0u); }
      workgroupBarrier();
      let norm = f32(B) / (last - first);
      var fragile = 0.0;
      for (var i = lid; i < n; i += WG) {
        let x = W[off + i];
        let e = x - quantized(x, sc) * sc;
        let pos = (e - first) * norm;
        let j = floor(pos);
        let fr = pos - j;
        // Near an inner bin edge the CPU may count this residual in the neighbouring bin.
        if ((fr < binEps && j >= 1.0 && j <= f32(B - 1u)) || (fr > 1.0 - binEps && j + 1.0 <= f32(B - 1u))) { fragile += 1.0; }
        let b = min(u32(max(j, 0.0)), B - 1u);
        atomicAdd(&hist[b], 1u);
      }
      workgroupBarrier();
      var part = 0.0;
      var cmax = 0.0;
      let width = (last - first) / f32(B);
      for (var j = lid; j < B; j += WG) {
        let c = f32(atomicLoad(&hist[j]));
        cmax = max(cmax, c);
        if (density) {
          let d = c / width / f32(n) + 1e-8;
          part += d * log(d);
        } else if (c > 0.0) {
          let p = c / f32(n);
          part += p * log(p + 1e-10);
        }
      }
      let entropy = workgroupReduce(lid, vec4f(part, fragile, 0.0, 0.0));
      h = -entropy.x;
      binFragile = entropy.y;
      // The fullest bin, for the penalty below (only needed when some residual is fragile).
      if (binFragile > 0.0 && !density) {
        fullest = workgroupReduce(lid, vec4f(0.0, 0.0, 0.0, cmax)).w;
      }
      // A range this narrow relative to the residuals may not even be one bin wide on the CPU.
      if ((last - first) < 1e-5 * max(abs(first), abs(last))) { unknown = true; }
    }
    if (lid == 0u) {
      let loss = lw * l2 + lh * h;
      // The CPU's histogram is this one with some fragile residuals moved to a neighbouring bin.
      // Moving one from a bin holding a to one holding b changes H = -sum p ln p by exactly
      // (phi(a - 1) - phi(b)) / n, phi(c) = (c + 1) ln(c + 1) - c ln c, increasing from phi(0) = 0;
      // no count exceeds C = fullest + fragile while they move, so each move changes H by at most
      // phi(C) / n (and never more than the count-free 2 (ln n + 1) / n). The 1e-10 inside the
      // log moves each term by < 1e-10: the margin covers it. The density histogram has no such
      // small bound: its fragile candidates are unknown.
      var pen = 0.0;
      if (binFragile > 0.0) {
        if (density) {
          unknown = true;
        } else {
          let C = min(fullest + binFragile, f32(n));
          let phi = (C + 1.0) * log(C + 1.0) - C * log(max(C, 1.0));
          pen = abs(lh) * binFragile * min(phi * 1.001 + 1e-4, 2.0 * (log(f32(n)) + 1.0)) / f32(n);
        }
      }
      var lb = loss - ARITH * abs(loss) - pen;
      var ub = loss + ARITH * abs(loss) + pen;
      if (roundUnsure) {
        // H >= -1e-10 for probabilities; the density form has no useful lower bound.
        ub = BIG;
        if (density && lh != 0.0) { lb = -BIG; } else { lb = lw * l2 * (1.0 - ARITH) - abs(lh) * 1e-10; }
      }
      if (unknown) { lb = -BIG; ub = BIG; }
      LB[gid * P.grid + k] = lb;
      if (loss < best) {
        best = loss;
        bestUB = ub;
        bestK = i32(k);
      }
      if (lb < lowestLB) {
        secondLB = lowestLB;
        lowestLB = lb;
        lowestK = i32(k);
      } else if (lb < secondLB) {
        secondLB = lb;
      }
    }
  }
  if (lid == 0u) {
    var otherLB = lowestLB;
    if (lowestK == bestK) { otherLB = secondLB; }
    OUT[gid] = vec4f(f32(bestK), bestUB, otherLB, 0.0);
    if (!(bestUB < otherLB)) {
      let words = (P.grid + 31u) / 32u;
      for (var w = 0u; w < words; w++) {
        var bits = 0u;
        for (var b = 0u; b < 32u; b++) {
          let k = w * 32u + b;
          if (k < P.grid && (LB[gid * P.grid + k] < bestUB || i32(k) == bestK)) { bits = bits | (1u << b); }
        }
        MASK[gid * words + w] = bits;
      }
    }
  }
}
