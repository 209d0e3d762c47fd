// Prepended to every kernel by PipelineCache (src/compute/webgpu/pipelines.ts): the workgroup
// size and what every kernel shares — the workgroup index, a group's span in the matrix and the
// workgroup reduction. Kernels must not redeclare these names.

// Invocations per workgroup; the runners set it (the `WG` of each runner) and size nothing else.
override WG: u32 = 64u;

// The residual histogram of one group (the search and the apply kernels), at most MAX_BINS bins
// (GPU_MAX_BINS in src/compute/backend.ts; settings with more bins run on the CPU).
const MAX_BINS: u32 = 4096u;
var<workgroup> hist: array<atomic<u32>, MAX_BINS>;

// One reduction's per-invocation partials, sized from WG, and its result.
var<workgroup> partials: array<vec4f, WG>;
var<workgroup> reduced: vec4f;

// Over the workgroup: (sum of x, sum of y, min of z, max of w), the same value in every
// invocation. Always the same pairwise tree, so a sum is bit for bit the same wherever it is used.
fn workgroupReduce(lid: u32, v: vec4f) -> vec4f {
  partials[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      let a = partials[lid];
      let b = partials[lid + s];
      partials[lid] = vec4f(a.x + b.x, a.y + b.y, min(a.z, b.z), max(a.w, b.w));
    }
    workgroupBarrier();
  }
  if (lid == 0u) { reduced = partials[0]; }
  return workgroupUniformLoad(&reduced);
}

// Dispatches wider than maxComputeWorkgroupsPerDimension use a second dimension of nx columns.
fn workgroupIndex(wid: vec3u, nx: u32) -> u32 {
  return wid.x + wid.y * nx;
}

// Group `gid` of a row-major matrix cut into groups of `group` weights along each row:
// (index of its first weight, its length, its row).
fn groupSpan(gid: u32, cols: u32, group: u32, groupsPerRow: u32) -> vec3u {
  let row = gid / groupsPerRow;
  let c0 = (gid % groupsPerRow) * group;
  return vec3u(row * cols + c0, min(group, cols - c0), row);
}
