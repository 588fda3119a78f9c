// Matmul: C[b] = act(op(A[b])·op(B[b]) + bias) or C[b] += op(A[b])·op(B[b]).
// One 16x16 workgroup computes a 64x64 tile of C, 4x4 outputs per thread, staging 16-deep K slices
// of A and B in workgroup memory. Transposes only change which index a load thread walks, so the
// global reads stay coalesced either way. Threads own rows ly + 16r and columns lx + 16c, so the
// shared-memory reads of a warp are consecutive and the stores to C coalesce. Workgroup z is the
// batch; the offsets in the uniform let the host split grids past 65535 workgroups per dimension.
// No longer chosen by src/backend/webgpu/matmul.ts (wgsl/matmul-vec4.wgsl, bitwise-equal, was faster
// at every shape measured on llvmpipe); kept as the baseline bench/matmul.ts measures against.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;
// With GELU: also write the pre-activation (product + bias) to Z, for autograd's backward.
override KEEP_PRE: bool = false;
override ACCUMULATE: bool = false;
override ACC_IN: bool = false;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
const THREADS: u32 = 256u;

// A dispatch runs k0 = kBegin..kEnd-1 (multiples of TK but kEnd = k): llvmpipe's loop cap
// (src/backend/webgpu/loop-budget.ts). With ACC_IN the sums start from AccIn, the raw sums an
// earlier range stored (no epilogue), so each output is still one fma chain over all of k.
struct P { m: u32, n: u32, k: u32, strideA: u32, strideB: u32, batch0: u32, tileRow0: u32, tileCol0: u32,
           kBegin: u32, kEnd: u32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
// Written only with KEEP_PRE; otherwise the host binds a spare (a writable binding may not alias C).
@group(0) @binding(4) var<storage, read_write> Z: array<f32>;
// Read only with ACC_IN; otherwise the host binds any buffer.
@group(0) @binding(5) var<storage, read> AccIn: array<f32>;
@group(0) @binding(6) var<uniform> p: P;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26), identical to wgsl/elementwise.wgsl and
// assembly/common.ts, so the fused epilogue matches the unfused gelu op.
fn erf(x: f32) -> f32 {
  let s = select(1.0, -1.0, x < 0.0);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-z * z);
  return s * y;
}

fn loadA(base: u32, i: u32, kk: u32) -> f32 {
  if (i >= p.m || kk >= p.k) { return 0.0; }
  if (TRANS_A) { return A[base + kk * p.m + i]; }
  return A[base + i * p.k + kk];
}

fn loadB(base: u32, kk: u32, j: u32) -> f32 {
  if (j >= p.n || kk >= p.k) { return 0.0; }
  if (TRANS_B) { return B[base + j * p.k + kk]; }
  return B[base + kk * p.n + j];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let batch = wid.z + p.batch0;
  let row0 = (wid.y + p.tileRow0) * TM;
  let col0 = (wid.x + p.tileCol0) * TN;
  let aBase = batch * p.strideA;
  let bBase = batch * p.strideB;
  var acc: array<f32, 16>;
  if (ACC_IN) {
    let sBase = batch * p.m * p.n;
    for (var r = 0u; r < 4u; r++) {
      for (var c = 0u; c < 4u; c++) {
        let i = row0 + lid.y + 16u * r;
        let j = col0 + lid.x + 16u * c;
        if (i < p.m && j < p.n) { acc[r * 4u + c] = AccIn[sBase + i * p.n + j]; }
      }
    }
  }
  for (var k0 = p.kBegin; k0 < p.kEnd; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let e = li + r * THREADS;
      // Consecutive threads take consecutive addresses of whichever layout A and B are stored in.
      if (TRANS_A) {
        As[(e / TM) * TM + e % TM] = loadA(aBase, row0 + e % TM, k0 + e / TM);
      } else {
        As[(e % TK) * TM + e / TK] = loadA(aBase, row0 + e / TK, k0 + e % TK);
      }
      if (TRANS_B) {
        Bs[(e % TK) * TN + e / TK] = loadB(bBase, k0 + e % TK, col0 + e / TK);
      } else {
        Bs[(e / TN) * TN + e % TN] = loadB(bBase, k0 + e / TN, col0 + e % TN);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var r = 0u; r < 4u; r++) { a[r] = As[kk * TM + lid.y + 16u * r]; }
      for (var c = 0u; c < 4u; c++) { b[c] = Bs[kk * TN + lid.x + 16u * c]; }
      for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) { acc[r * 4u + c] = fma(a[r], b[c], acc[r * 4u + c]); }
      }
    }
    workgroupBarrier();
  }
  let cBase = batch * p.m * p.n;
  for (var r = 0u; r < 4u; r++) {
    let i = row0 + lid.y + 16u * r;
    if (i >= p.m) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let j = col0 + lid.x + 16u * c;
      if (j >= p.n) { continue; }
      let o = cBase + i * p.n + j;
      var v = acc[r * 4u + c];
      if (ACCUMULATE) { v += C[o]; }
      if (HAS_BIAS) { v += bias[j]; }
      if (KEEP_PRE) { Z[o] = v; }
      if (GELU) { v = 0.5 * v * (1.0 + erf(v * 0.70710678118654752)); }
      C[o] = v;
    }
  }
}
