// Matmul, register-blocked: C[b] = act(op(A[b])·op(B[b]) + bias) or C[b] += op(A[b])·op(B[b]), the
// contract, bindings and uniform of wgsl/matmul.wgsl. A workgroup of 8 x WY threads computes a
// 4WY x 64 tile of C (WY = 16: 64 x 64; WY = 32: 128 x 64 for products with many rows), each thread
// a 4 x 8 register block: rows 4ly..4ly+3, columns 4lx..4lx+3 and 32+4lx..32+4lx+3. K is staged 16
// deep in workgroup memory as vec4s, so each k step is three vec4 reads for 32 multiply-adds, where
// wgsl/matmul.wgsl's 4 x 4 scalar block reads eight floats for 16.
//
// Why this block, measured on llvmpipe (the software adapter: 256-bit SIMD over 8 invocations,
// workgroup memory read lane by lane, a barrier a switch between 8-invocation coroutines), GFLOP/s
// at the vit_cpu batch-8 step's products (800x64x256 … 64x256x800, every transpose in use), best of
// 3-5 passes interleaved with wgsl/matmul.wgsl on a shared 2-core machine:
//   wgsl/matmul.wgsl (16x16 threads, 4x4 scalar block)          1.8-1.9
//   16x16 threads, 4x4 block, vec4 reads                        2.9-3.5
//   8x8 threads, 8x8 block                                      3.0-4.3
//   16x8 or 8x16 blocks (8x8, 8x4 or 4x8 threads)               1.0-2.5 (spilled accumulators)
//   8x8 threads, 4x4 block (a 32x32 tile)                       2.2-3.2
//   8x16 threads, 4x8 block (this kernel)                       4.0-4.5 (TK = 8: lower; TK = 32: level)
// Skipping the bounds checks of the staging loads on interior tiles changed nothing (±3%): the
// reads of workgroup memory in the k loop are the cost. The vit_cpu batch-8 WebGPU DINO step went
// from 4.5 to 6.9 images/s (best of 5 interleaved passes); profiled, its matmuls from 1142 to 538 ms.
// The 128-row tile (WY = 32) measured level with the 64-row one at 256-4160 rows (within this
// machine's noise) and at half its speed at 64 rows: src/backend/webgpu/matmul.ts takes it from
// 1024 rows, for its halved reads of B per output on a GPU.
//
// Each output is one chain of fma over k = 0, 1, ..., k-1 from 0 (the same 16-deep padding past k,
// zero products), then accumulate, bias and activation, exactly as in wgsl/matmul.wgsl: both
// kernels give bitwise-equal results, so the choice between them never changes training numbers.
//
// The epilogue works on whole vec4s of acc with constant indices (eight calls of `epilogue`), the
// GELU as vec4 arithmetic, lane for lane the scalar formula (the same bits: the tests compare it with
// wgsl/matmul.wgsl and the elementwise GELU). It was a loop over the 32 outputs, indexing acc with
// the loop counters; with the GELU in its body llvmpipe kept acc in memory and the fused GELU cost
// more than a separate elementwise pass. fc1 of the vit_cpu batch-64 step (6400x256x64 with bias),
// llvmpipe, ms, best of 6, two runs of each alternated (/tmp scratch script):
//                              plain product   + GELU epilogue   + GELU keeping z   product, then gelu op
//   loop epilogue (before)     50.4, 49.9      76.2, 74.1        76.8, 77.8         59.4, 58.7
//   vec4 epilogue (this)       50.8            52.0              61.7               59.5
// (the second run of this kernel, 82-98 ms throughout, ran on a loaded machine). Keeping z costs its
// 6.5 MB of scalar stores, about what the separate GELU pass costs, so autograd's fused fc1 is level
// with the two dispatches on llvmpipe and one dispatch fewer; the GELU of a forward without autograd
// (the teacher, evaluation) is 1.4x faster.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;
// With GELU: also write the pre-activation (product + bias) to Z, for autograd's backward.
override KEEP_PRE: bool = false;
override ACCUMULATE: bool = false;
override ACC_IN: bool = false;
override WY: u32 = 16u;

const WX: u32 = 8u;
const TN: u32 = 64u;
const TK: u32 = 16u;

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

var<workgroup> As: array<vec4<f32>, TK * WY>; // [TK][4WY rows / 4]
var<workgroup> Bs: array<vec4<f32>, 256>; // [TK][TN / 4]

// The same erf as wgsl/matmul.wgsl (A&S 7.1.26), so the fused epilogue matches the unfused gelu op.
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

@compute @workgroup_size(WX, WY)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let threads = WX * WY;
  let batch = wid.z + p.batch0;
  let row0 = (wid.y + p.tileRow0) * 4u * WY;
  let col0 = (wid.x + p.tileCol0) * TN;
  let aBase = batch * p.strideA;
  let bBase = batch * p.strideB;
  // acc[2r + h]: row 4ly + r, columns 4lx + 32h + (0..3).
  var acc: array<vec4<f32>, 8>;
  if (ACC_IN) {
    let sBase = batch * p.m * p.n;
    let i0 = row0 + 4u * lid.y;
    let j0 = col0 + 4u * lid.x;
    let j1 = j0 + 4u * WX;
    acc[0] = accAt(sBase, i0, j0);
    acc[1] = accAt(sBase, i0, j1);
    acc[2] = accAt(sBase, i0 + 1u, j0);
    acc[3] = accAt(sBase, i0 + 1u, j1);
    acc[4] = accAt(sBase, i0 + 2u, j0);
    acc[5] = accAt(sBase, i0 + 2u, j1);
    acc[6] = accAt(sBase, i0 + 3u, j0);
    acc[7] = accAt(sBase, i0 + 3u, j1);
  }
  for (var k0 = p.kBegin; k0 < p.kEnd; k0 += TK) {
    // Each thread stores whole vec4s: 4 rows of A (4 columns of B) at one k. Consecutive threads walk
    // k when the operand is stored k-contiguous and rows (columns) otherwise, so they read
    // neighbouring addresses either way. TK * WY and TK * TN / 4 are multiples of the thread count.
    for (var e = li; e < TK * WY; e += threads) {
      var kk: u32;
      var i4: u32;
      if (TRANS_A) { kk = e / WY; i4 = e % WY; } else { kk = e % TK; i4 = e / TK; }
      let i = row0 + 4u * i4;
      As[kk * WY + i4] = vec4(loadA(aBase, i, k0 + kk), loadA(aBase, i + 1u, k0 + kk),
                              loadA(aBase, i + 2u, k0 + kk), loadA(aBase, i + 3u, k0 + kk));
    }
    for (var e = li; e < TK * TN / 4u; e += threads) {
      var kk: u32;
      var j4: u32;
      if (TRANS_B) { kk = e % TK; j4 = e / TK; } else { kk = e / (TN / 4u); j4 = e % (TN / 4u); }
      let j = col0 + 4u * j4;
      Bs[kk * (TN / 4u) + j4] = vec4(loadB(bBase, k0 + kk, j), loadB(bBase, k0 + kk, j + 1u),
                                     loadB(bBase, k0 + kk, j + 2u), loadB(bBase, k0 + kk, j + 3u));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = As[kk * WY + lid.y];
      let b0 = Bs[kk * (TN / 4u) + lid.x];
      let b1 = Bs[kk * (TN / 4u) + WX + lid.x];
      acc[0] = fma(vec4(a.x), b0, acc[0]);
      acc[1] = fma(vec4(a.x), b1, acc[1]);
      acc[2] = fma(vec4(a.y), b0, acc[2]);
      acc[3] = fma(vec4(a.y), b1, acc[3]);
      acc[4] = fma(vec4(a.z), b0, acc[4]);
      acc[5] = fma(vec4(a.z), b1, acc[5]);
      acc[6] = fma(vec4(a.w), b0, acc[6]);
      acc[7] = fma(vec4(a.w), b1, acc[7]);
    }
    workgroupBarrier();
  }
  let cBase = batch * p.m * p.n;
  let i0 = row0 + 4u * lid.y;
  let j0 = col0 + 4u * lid.x;
  let j1 = j0 + 4u * WX;
  // The epilogue per vec4 with constant indices into acc (see the comment at the top of the file).
  epilogue(cBase, i0, j0, acc[0]);
  epilogue(cBase, i0, j1, acc[1]);
  epilogue(cBase, i0 + 1u, j0, acc[2]);
  epilogue(cBase, i0 + 1u, j1, acc[3]);
  epilogue(cBase, i0 + 2u, j0, acc[4]);
  epilogue(cBase, i0 + 2u, j1, acc[5]);
  epilogue(cBase, i0 + 3u, j0, acc[6]);
  epilogue(cBase, i0 + 3u, j1, acc[7]);
}

// Row i, columns j..j+3 of AccIn, 0 outside m x n (those lanes are never stored).
fn accAt(sBase: u32, i: u32, j: u32) -> vec4<f32> {
  var v = vec4(0.0);
  if (i >= p.m) { return v; }
  let o = sBase + i * p.n + j;
  if (j < p.n) { v.x = AccIn[o]; }
  if (j + 1u < p.n) { v.y = AccIn[o + 1u]; }
  if (j + 2u < p.n) { v.z = AccIn[o + 2u]; }
  if (j + 3u < p.n) { v.w = AccIn[o + 3u]; }
  return v;
}

// The value of column j of bias, 0 past n (that lane is never stored).
fn biasAt(j: u32) -> f32 {
  if (j >= p.n) { return 0.0; }
  return bias[j];
}

fn cAt(o: u32, j: u32) -> f32 {
  if (j >= p.n) { return 0.0; }
  return C[o];
}

fn erf4(x: vec4<f32>) -> vec4<f32> {
  let s = select(vec4(1.0), vec4(-1.0), x < vec4(0.0));
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-z * z);
  return s * y;
}

// Columns j..j+3 of row i: accumulate, bias, keep the pre-activation, GELU, store the lanes inside n.
fn epilogue(cBase: u32, i: u32, j: u32, acc: vec4<f32>) {
  if (i >= p.m || j >= p.n) { return; }
  let o = cBase + i * p.n + j;
  var v = acc;
  if (ACCUMULATE) { v += vec4(cAt(o, j), cAt(o + 1u, j + 1u), cAt(o + 2u, j + 2u), cAt(o + 3u, j + 3u)); }
  if (HAS_BIAS) { v += vec4(biasAt(j), biasAt(j + 1u), biasAt(j + 2u), biasAt(j + 3u)); }
  if (KEEP_PRE) {
    Z[o] = v.x;
    if (j + 1u < p.n) { Z[o + 1u] = v.y; }
    if (j + 2u < p.n) { Z[o + 2u] = v.z; }
    if (j + 3u < p.n) { Z[o + 3u] = v.w; }
  }
  if (GELU) { v = 0.5 * v * (1.0 + erf4(v * 0.70710678118654752)); }
  C[o] = v.x;
  if (j + 1u < p.n) { C[o + 1u] = v.y; }
  if (j + 2u < p.n) { C[o + 2u] = v.z; }
  if (j + 3u < p.n) { C[o + 3u] = v.w; }
}
