// EWQ's softmax entropy partials (src/core/ewq/entropy.ts, docs/methods.md §2): each workgroup
// reduces its own slice of the tensor, the host merges the partials in float64.
//   pass1  per workgroup: max and sum of exp(x - max) (relative to its own max)
//   pass2  per workgroup, given the global max m and sum S:
//            eps > 0: sum p * log1p(p / eps), p = exp(x - m) / S  (H = -log(eps) - total)
//            eps = 0: sum exp(x - m) * (x - m)                     (H = log S - total / S)
// The numerical trap: p ~ 1/n, so H sits at -log(eps) and blocks differ in the 6th-9th digit. The
// large constant never enters a sum here, only the small remainder does, and log1p of p / eps
// (~1e-5) is a series — log(1 + y) in f32 would lose most of y's digits.

struct EntropyParams {
  n: u32,
  // Elements per workgroup (a contiguous slice).
  per: u32,
  nx: u32,
  max: f32,
  sumExp: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> P: EntropyParams;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<vec2<f32>>;

fn slice(wid: vec3u) -> vec2u {
  let w = workgroupIndex(wid, P.nx);
  let a = min(w * P.per, P.n);
  return vec2u(a, min(a + P.per, P.n));
}

// log1p(y) for y >= 0: the series where 1 + y would drop y's digits.
fn log1p(y: f32) -> f32 {
  if (y < 0.05) {
    return y * (1.0 - y * (0.5 - y * (1.0 / 3.0 - y * (0.25 - y * (0.2 - y * (1.0 / 6.0 - y * (1.0 / 7.0 - y * 0.125)))))));
  }
  return log(1.0 + y);
}

@compute @workgroup_size(WG)
fn pass1(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = slice(wid);
  var m = -3.4e38;
  for (var i = r.x + lid; i < r.y; i += WG) { m = max(m, X[i]); }
  let wm = workgroupReduce(lid, vec4f(0.0, 0.0, 0.0, m)).w;
  var s = 0.0;
  for (var i = r.x + lid; i < r.y; i += WG) { s += exp(X[i] - wm); }
  let ws = workgroupReduce(lid, vec4f(s, 0.0, 0.0, 0.0)).x;
  if (lid == 0u) { OUT[workgroupIndex(wid, P.nx)] = vec2f(wm, ws); }
}

@compute @workgroup_size(WG)
fn pass2(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = slice(wid);
  var s = 0.0;
  if (P.eps > 0.0) {
    let inv = 1.0 / P.sumExp;
    for (var i = r.x + lid; i < r.y; i += WG) {
      let p = exp(X[i] - P.max) * inv;
      s += p * log1p(p / P.eps);
    }
  } else {
    for (var i = r.x + lid; i < r.y; i += WG) {
      let d = X[i] - P.max;
      s += exp(d) * d;
    }
  }
  let ws = workgroupReduce(lid, vec4f(s, 0.0, 0.0, 0.0)).x;
  if (lid == 0u) { OUT[workgroupIndex(wid, P.nx)] = vec2f(ws, 0.0); }
}
