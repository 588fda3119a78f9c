// Layer norm over the last axis of [rows, cols] and its input gradient, one invocation per row:
// the variant src/backend/webgpu/norm.ts picks on software adapters, with the contract, bindings
// and uniform of layerNorm / layerNormGrad in wgsl/norm.wgsl. Each invocation walks its row in
// order (the mean, then the variance as a mean of squared deviations, then the output), so there
// is no workgroup memory and no barrier.
//
// Why: llvmpipe runs a workgroup as 8-lane SIMD coroutines on one CPU thread, and each
// workgroupBarrier switches between them; wgsl/norm.wgsl's one-workgroup-per-row tree costs
// 2 log2(WG) barriers a row, for rows of 64 floats. vit_cpu batch 8 on llvmpipe, each kernel
// submitted on its own (about 150 us of each is the submit): layerNorm of 800x64 4695 -> 716 us,
// layerNormGrad 3429 -> 626 us. A GPU keeps the tree (a row per invocation would read the row
// with a stride of cols between neighbouring invocations there).

override HAS_GAMMA: bool = false;
override HAS_BETA: bool = false;
const WG: u32 = 64u;

struct P { rows: u32, cols: u32, eps: f32, _pad: u32 };

fn rowOf(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

@group(0) @binding(0) var<storage, read> fX: array<f32>;
@group(0) @binding(1) var<storage, read> fGamma: array<f32>;
@group(0) @binding(2) var<storage, read> fBeta: array<f32>;
@group(0) @binding(3) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> fMean: array<f32>;
@group(0) @binding(5) var<storage, read_write> fRstd: array<f32>;
@group(0) @binding(6) var<uniform> fP: P;

@compute @workgroup_size(WG)
fn layerNorm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = rowOf(gid, nwg);
  if (row >= fP.rows) { return; }
  let base = row * fP.cols;
  let n = f32(fP.cols);
  var s = 0.0;
  for (var c = 0u; c < fP.cols; c++) { s += fX[base + c]; }
  let mu = s / n;
  var v = 0.0;
  for (var c = 0u; c < fP.cols; c++) {
    let d = fX[base + c] - mu;
    v += d * d;
  }
  let rs = inverseSqrt(v / n + fP.eps);
  fMean[row] = mu;
  fRstd[row] = rs;
  for (var c = 0u; c < fP.cols; c++) {
    var y = (fX[base + c] - mu) * rs;
    if (HAS_GAMMA) { y *= fGamma[c]; }
    if (HAS_BETA) { y += fBeta[c]; }
    fOut[base + c] = y;
  }
}

// addLayerNorm: sum = x + a (a's rows repeat every aRows rows), then layerNorm of sum as above, in
// the same order, so it gives the bits of the add followed by layerNorm on this variant (norm.wgsl's
// addLayerNorm matches its own tree the same way).
struct PA { rows: u32, cols: u32, eps: f32, aRows: u32 };

@group(0) @binding(0) var<storage, read> rX: array<f32>;
@group(0) @binding(1) var<storage, read> rA: array<f32>;
@group(0) @binding(2) var<storage, read> rGamma: array<f32>;
@group(0) @binding(3) var<storage, read> rBeta: array<f32>;
@group(0) @binding(4) var<storage, read_write> rSum: array<f32>;
@group(0) @binding(5) var<storage, read_write> rOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> rMean: array<f32>;
@group(0) @binding(7) var<storage, read_write> rRstd: array<f32>;
@group(0) @binding(8) var<uniform> rP: PA;

@compute @workgroup_size(WG)
fn addLayerNorm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = rowOf(gid, nwg);
  if (row >= rP.rows) { return; }
  let base = row * rP.cols;
  let aBase = (row % rP.aRows) * rP.cols;
  let n = f32(rP.cols);
  var s = 0.0;
  for (var c = 0u; c < rP.cols; c++) {
    let x = rX[base + c] + rA[aBase + c];
    rSum[base + c] = x;
    s += x;
  }
  let mu = s / n;
  var v = 0.0;
  for (var c = 0u; c < rP.cols; c++) {
    let d = rSum[base + c] - mu;
    v += d * d;
  }
  let rs = inverseSqrt(v / n + rP.eps);
  rMean[row] = mu;
  rRstd[row] = rs;
  for (var c = 0u; c < rP.cols; c++) {
    var y = (rSum[base + c] - mu) * rs;
    if (HAS_GAMMA) { y *= rGamma[c]; }
    if (HAS_BETA) { y += rBeta[c]; }
    rOut[base + c] = y;
  }
}

@group(0) @binding(0) var<storage, read> gX: array<f32>;
@group(0) @binding(1) var<storage, read> gGamma: array<f32>;
@group(0) @binding(2) var<storage, read> gMean: array<f32>;
@group(0) @binding(3) var<storage, read> gRstd: array<f32>;
@group(0) @binding(4) var<storage, read> gDy: array<f32>;
// With HAS_RES: autograd's pending gradient of x, added to dx (x stands in, unread, without it), as
// norm.wgsl's layerNormGrad does.
override HAS_RES: bool = false;
@group(0) @binding(5) var<storage, read> gRes: array<f32>;
@group(0) @binding(6) var<storage, read_write> gDx: array<f32>;
@group(0) @binding(7) var<uniform> gP: P;

fn scaledGrad(base: u32, c: u32) -> f32 {
  if (HAS_GAMMA) { return gDy[base + c] * gGamma[c]; }
  return gDy[base + c];
}

// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) with g = dy·gamma and x̂ = (x − mean)·rstd.
@compute @workgroup_size(WG)
fn layerNormGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = rowOf(gid, nwg);
  if (row >= gP.rows) { return; }
  let base = row * gP.cols;
  let mu = gMean[row];
  let rs = gRstd[row];
  var a = 0.0;
  var b = 0.0;
  for (var c = 0u; c < gP.cols; c++) {
    let g = scaledGrad(base, c);
    a += g;
    b += g * (gX[base + c] - mu) * rs;
  }
  let n = f32(gP.cols);
  let ma = a / n;
  let mb = b / n;
  for (var c = 0u; c < gP.cols; c++) {
    let xh = (gX[base + c] - mu) * rs;
    let d = rs * (scaledGrad(base, c) - ma - xh * mb);
    if (HAS_RES) { gDx[base + c] = gRes[base + c] + d; } else { gDx[base + c] = d; }
  }
}

override HAS_DGAMMA: bool = true;
override HAS_DBETA: bool = true;

struct PP { rows: u32, cols: u32, blockRows: u32, _pad: u32 };

@group(0) @binding(0) var<storage, read> pX: array<f32>;
@group(0) @binding(1) var<storage, read> pMean: array<f32>;
@group(0) @binding(2) var<storage, read> pRstd: array<f32>;
@group(0) @binding(3) var<storage, read> pDy: array<f32>;
@group(0) @binding(4) var<storage, read_write> pOutG: array<f32>;
@group(0) @binding(5) var<storage, read_write> pOutB: array<f32>;
@group(0) @binding(6) var<uniform> pP: PP;

// dgamma = Σ dy·x̂ and dbeta = Σ dy over all rows, one invocation per column summing the rows in
// order (wgsl/norm.wgsl's layerNormGradParams: 16 row lanes a column merged by a tree in workgroup
// memory, then layerNormGradCombine over blocks of rows; two dispatches and 5 barriers).
// vit_cpu batch 8 on llvmpipe, its 18 calls a step (800 and 480 rows of 64): 18.9 ms with the
// combine passes -> 14.6 ms, each kernel submitted on its own. One workgroup here (cols = 64) runs
// on one CPU thread; the gain is the dispatch and the barriers saved.
// blockRows is unused here.
@compute @workgroup_size(WG)
fn layerNormGradParams(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let col = rowOf(gid, nwg);
  if (col >= pP.cols) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var r = 0u; r < pP.rows; r++) {
    let i = r * pP.cols + col;
    let d = pDy[i];
    a += d * (pX[i] - pMean[r]) * pRstd[r];
    b += d;
  }
  if (HAS_DGAMMA) { pOutG[col] = a; }
  if (HAS_DBETA) { pOutB[col] = b; }
}
