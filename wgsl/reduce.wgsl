// Reductions of x viewed as [outer, len, inner] to out [outer, inner]; OP follows REDUCE_CODES
// (0 sum, 1 max, 2 min, 3 sum of squares). inner == 1: one workgroup per row with a fixed-shape
// tree in workgroup memory (or, on software adapters with many rows, one invocation per row); otherwise one thread per output walking len (reads coalesce across
// inner). No atomics, fixed order: results are deterministic.

override OP: u32 = 0u;
const WG: u32 = 256u;

// reduceCols and argReduce walk l = l0..l1-1 of len (src/backend/webgpu/loop-budget.ts: llvmpipe's
// loop cap); a range past the first (l0 > 0) goes on from the result the previous one left in the output.
struct P { outer: u32, len: u32, inner: u32, l0: u32, l1: u32, _p0: u32, _p1: u32, _p2: u32 };

fn identity() -> f32 {
  if (OP == 1u) { return -3.402823466e+38; }
  if (OP == 2u) { return 3.402823466e+38; }
  return 0.0;
}

fn combine(acc: f32, v: f32) -> f32 {
  switch OP {
    case 0u: { return acc + v; }
    case 1u: { return max(acc, v); }
    case 2u: { return min(acc, v); }
    default: { return acc + v * v; }
  }
}

// Partial results are combined with sum for op 3 (they are already squared).
fn merge(a: f32, b: f32) -> f32 {
  switch OP {
    case 1u: { return max(a, b); }
    case 2u: { return min(a, b); }
    default: { return a + b; }
  }
}

@group(0) @binding(0) var<storage, read> rX: array<f32>;
@group(0) @binding(1) var<storage, read_write> rOut: array<f32>;
@group(0) @binding(2) var<uniform> rP: P;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(256)
fn reduceRows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  let valid = row < rP.outer;
  var acc = identity();
  if (valid) {
    let base = row * rP.len;
    for (var l = lid; l < rP.len; l += WG) { acc = combine(acc, rX[base + l]); }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = merge(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  if (valid && lid == 0u) { rOut[row] = partial[0]; }
}

// inner == 1 on a software adapter with many rows (src/backend/webgpu/reduce.ts): one invocation per
// row walking it in order, no workgroup memory. llvmpipe runs a workgroup as 8-lane coroutines on one
// CPU thread and switches between them at every barrier, and reduceRows' tree takes 9 barriers a row:
// vit_cpu batch 8's sums of 1024 rows of 256, submitted on their own: 9906 -> 257 us (sum),
// 10388 -> 308 us (sum of squares). llvmpipe stops an invocation's loops after about
// 65535 iterations in all (measured: a row of 70000 ones summed to 65533), so reduce.ts keeps rows
// longer than SERIAL_MAX_LEN on the tree.
@compute @workgroup_size(64)
fn reduceRowsSerial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.y * nwg.x * 64u + gid.x;
  if (row >= rP.outer) { return; }
  let base = row * rP.len;
  var acc = identity();
  for (var l = 0u; l < rP.len; l++) { acc = combine(acc, rX[base + l]); }
  rOut[row] = acc;
}

@compute @workgroup_size(256)
fn reduceCols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let u = gid.y * nwg.x * WG + gid.x;
  if (u >= rP.outer * rP.inner) { return; }
  let o = u / rP.inner;
  let i = u % rP.inner;
  var acc = identity();
  if (rP.l0 > 0u) { acc = rOut[u]; }
  var p = (o * rP.len + rP.l0) * rP.inner + i;
  for (var l = rP.l0; l < rP.l1; l++) {
    acc = combine(acc, rX[p]);
    p += rP.inner;
  }
  rOut[u] = acc;
}

@group(0) @binding(0) var<storage, read> aX: array<f32>;
@group(0) @binding(1) var<storage, read_write> aOut: array<i32>;
@group(0) @binding(2) var<uniform> aP: P;

// OP 0: argmax, 1: argmin; first index wins ties.
@compute @workgroup_size(256)
fn argReduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let u = gid.y * nwg.x * WG + gid.x;
  if (u >= aP.outer * aP.inner) { return; }
  let o = u / aP.inner;
  let i = u % aP.inner;
  let base = o * aP.len * aP.inner + i;
  var bi = 0u;
  if (aP.l0 > 0u) { bi = u32(aOut[u]); }
  var best = aX[base + bi * aP.inner];
  for (var l = max(aP.l0, 1u); l < aP.l1; l++) {
    let v = aX[base + l * aP.inner];
    let better = select((v < best), (v > best), OP == 0u);
    if (better) { best = v; bi = l; }
  }
  aOut[u] = i32(bi);
}
