// Layer norm over the last axis of [rows, cols] and its gradient. Row kernels: one workgroup per
// row, any row length, invocations stride the row by WG and a fixed-shape tree in workgroup memory
// combines partials. The affine-parameter gradient is a separate column pass: a workgroup owns
// COLS columns of one block of rows, its ROWL row lanes each sum every ROWL-th row of the block in
// order and are merged by a fixed tree; block partials are then summed in block order. The blocking
// depends only on the shape, so dgamma/dbeta are deterministic without atomics. Absent gamma/beta are override
// flags (their bindings then hold a stand-in buffer that is never read or written).

override WG: u32 = 256u;
override HAS_GAMMA: bool = false;
override HAS_BETA: bool = false;

struct P { rows: u32, cols: u32, eps: f32, _pad: u32 };

var<workgroup> wA: array<f32, WG>;
var<workgroup> wB: array<f32, WG>;

fn rowOf(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}

@group(0) @binding(0) var<storage, read> fX: array<f32>;
@group(0) @binding(1) var<storage, read> fGamma: array<f32>;
@group(0) @binding(2) var<storage, read> fBeta: array<f32>;
@group(0) @binding(3) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> fMean: array<f32>;
@group(0) @binding(5) var<storage, read_write> fRstd: array<f32>;
@group(0) @binding(6) var<uniform> fP: P;

// Mean first, then the variance as a mean of squared deviations (no E[x²] − E[x]² cancellation).
@compute @workgroup_size(WG)
fn layerNorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let row = rowOf(wid, nwg);
  if (row >= fP.rows) { return; } // whole workgroup leaves together: barriers stay uniform
  let base = row * fP.cols;
  let n = f32(fP.cols);
  var s = 0.0;
  for (var c = lid; c < fP.cols; c += WG) { s += fX[base + c]; }
  wA[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { wA[lid] += wA[lid + k]; }
    workgroupBarrier();
  }
  let mu = wA[0] / n;
  var v = 0.0;
  for (var c = lid; c < fP.cols; c += WG) {
    let d = fX[base + c] - mu;
    v += d * d;
  }
  wB[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { wB[lid] += wB[lid + k]; }
    workgroupBarrier();
  }
  let rs = inverseSqrt(wB[0] / n + fP.eps);
  if (lid == 0u) {
    fMean[row] = mu;
    fRstd[row] = rs;
  }
  for (var c = lid; c < fP.cols; c += WG) {
    var y = (fX[base + c] - mu) * rs;
    if (HAS_GAMMA) { y *= fGamma[c]; }
    if (HAS_BETA) { y += fBeta[c]; }
    fOut[base + c] = y;
  }
}

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

// A residual add and the layer norm after it: sum = x + a (a's aRows rows repeat down x's rows),
// out = layerNorm(sum), the arithmetic of layerNorm above on the sums, which each invocation reads
// back from the elements it wrote itself. One dispatch where a ViT block's residual add and its
// norm were two: at 6400x64 on llvmpipe 32.7 ms against 40.7 for binary add + layerNorm (bench
// fusions, best of 15; CPU 34.9 against 40.6).
@compute @workgroup_size(WG)
fn addLayerNorm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let row = rowOf(wid, nwg);
  if (row >= rP.rows) { return; }
  let base = row * rP.cols;
  let aBase = (row % rP.aRows) * rP.cols;
  let n = f32(rP.cols);
  var s = 0.0;
  for (var c = lid; c < rP.cols; c += WG) {
    let x = rX[base + c] + rA[aBase + c];
    rSum[base + c] = x;
    s += x;
  }
  wA[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { wA[lid] += wA[lid + k]; }
    workgroupBarrier();
  }
  let mu = wA[0] / n;
  var v = 0.0;
  for (var c = lid; c < rP.cols; c += WG) {
    let d = rSum[base + c] - mu;
    v += d * d;
  }
  wB[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { wB[lid] += wB[lid + k]; }
    workgroupBarrier();
  }
  let rs = inverseSqrt(wB[0] / n + rP.eps);
  if (lid == 0u) {
    rMean[row] = mu;
    rRstd[row] = rs;
  }
  for (var c = lid; c < rP.cols; c += WG) {
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
// With HAS_RES: autograd's pending gradient of x, added to dx (x stands in, unread, without it).
@group(0) @binding(5) var<storage, read> gRes: array<f32>;
@group(0) @binding(6) var<storage, read_write> gDx: array<f32>;
@group(0) @binding(7) var<uniform> gP: P;

override HAS_RES: bool = false;

fn scaledGrad(base: u32, c: u32) -> f32 {
  if (HAS_GAMMA) { return gDy[base + c] * gGamma[c]; }
  return gDy[base + c];
}

// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) with g = dy·gamma and x̂ = (x − mean)·rstd, plus the
// pending gradient with HAS_RES (the gradient add autograd ran after it, one dispatch fewer: at
// 6400x64 on llvmpipe 29.4 ms against 36.9 for layerNormGrad + binary add, bench fusions).
@compute @workgroup_size(WG)
fn layerNormGrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let row = rowOf(wid, nwg);
  if (row >= gP.rows) { return; }
  let base = row * gP.cols;
  let mu = gMean[row];
  let rs = gRstd[row];
  var a = 0.0;
  var b = 0.0;
  for (var c = lid; c < gP.cols; c += WG) {
    let g = scaledGrad(base, c);
    a += g;
    b += g * (gX[base + c] - mu) * rs;
  }
  wA[lid] = a;
  wB[lid] = b;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) {
      wA[lid] += wA[lid + k];
      wB[lid] += wB[lid + k];
    }
    workgroupBarrier();
  }
  let n = f32(gP.cols);
  let ma = wA[0] / n;
  let mb = wB[0] / n;
  for (var c = lid; c < gP.cols; c += WG) {
    let xh = (gX[base + c] - mu) * rs;
    let d = rs * (scaledGrad(base, c) - ma - xh * mb);
    if (HAS_RES) { gDx[base + c] = gRes[base + c] + d; } else { gDx[base + c] = d; }
  }
}

const COLS: u32 = 16u;
const ROWL: u32 = 16u; // COLS · ROWL = 256 invocations

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

var<workgroup> pA: array<f32, 256>;
var<workgroup> pB: array<f32, 256>;

// Σ dy·x̂ and Σ dy over the rows of block wid.y for the COLS columns of chunk wid.x, written to
// out[block·cols + col]: dgamma/dbeta themselves when there is one block, else partials that
// layerNormGradCombine sums in block order. Each row lane reads COLS consecutive floats.
@compute @workgroup_size(256)
fn layerNormGradParams(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let col = wid.x * COLS + lid % COLS;
  let lane = lid / COLS;
  let valid = col < pP.cols;
  let r1 = min(pP.rows, (wid.y + 1u) * pP.blockRows);
  var a = 0.0;
  var b = 0.0;
  if (valid) {
    for (var r = wid.y * pP.blockRows + lane; r < r1; r += ROWL) {
      let i = r * pP.cols + col;
      let d = pDy[i];
      a += d * (pX[i] - pMean[r]) * pRstd[r];
      b += d;
    }
  }
  pA[lid] = a;
  pB[lid] = b;
  workgroupBarrier();
  for (var k = ROWL / 2u; k > 0u; k = k / 2u) {
    if (lane < k) {
      pA[lid] += pA[lid + k * COLS];
      pB[lid] += pB[lid + k * COLS];
    }
    workgroupBarrier();
  }
  if (valid && lane == 0u) {
    let o = wid.y * pP.cols + col;
    if (HAS_DGAMMA) { pOutG[o] = pA[lid]; }
    if (HAS_DBETA) { pOutB[o] = pB[lid]; }
  }
}

@group(0) @binding(0) var<storage, read> cPartG: array<f32>;
@group(0) @binding(1) var<storage, read> cPartB: array<f32>;
@group(0) @binding(2) var<storage, read_write> cDgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> cDbeta: array<f32>;
@group(0) @binding(4) var<uniform> cP: PP; // rows holds the number of blocks here

@compute @workgroup_size(256)
fn layerNormGradCombine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let col = gid.y * nwg.x * 256u + gid.x;
  if (col >= cP.cols) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var k = 0u; k < cP.rows; k++) {
    if (HAS_DGAMMA) { a += cPartG[k * cP.cols + col]; }
    if (HAS_DBETA) { b += cPartB[k * cP.cols + col]; }
  }
  if (HAS_DGAMMA) { cDgamma[col] = a; }
  if (HAS_DBETA) { cDbeta[col] = b; }
}

// ---- batch norm over x [n, C, hw]: one workgroup of 64 per channel for the sums ---------------
// Thread t takes the channel's values t, t + 64, … (in plane order) and the partial sums meet in
// a fixed tree, so the results do not depend on scheduling. Absent gamma/beta/residual are flags;
// their bindings then alias x and are never read.
struct BN { n: u32, C: u32, hw: u32, flags: u32 }; // flags: 1 gamma, 2 beta, 4 residual, 8 relu, 16 batch stats, 32 dres

const BWG: u32 = 64u;
var<workgroup> bnA: array<f32, 64>;
var<workgroup> bnB: array<f32, 64>;

fn bnIndex(P: BN, c: u32, j: u32) -> u32 {
  return ((j / P.hw) * P.C + c) * P.hw + j % P.hw;
}

/** bnA[0] ← Σ bnA, bnB[0] ← Σ bnB over the workgroup, as a fixed tree. */
fn bnReduce(t: u32) {
  workgroupBarrier();
  for (var h = BWG / 2u; h > 0u; h = h / 2u) {
    if (t < h) {
      bnA[t] = bnA[t] + bnA[t + h];
      bnB[t] = bnB[t] + bnB[t + h];
    }
    workgroupBarrier();
  }
}

@group(0) @binding(0) var<storage, read> bnSX: array<f32>;
@group(0) @binding(1) var<storage, read_write> bnSMean: array<f32>;
@group(0) @binding(2) var<storage, read_write> bnSVar: array<f32>;
@group(0) @binding(3) var<uniform> bnSP: BN;

@compute @workgroup_size(64)
fn batchNormStats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = wid.x;
  let count = bnSP.n * bnSP.hw;
  var s = 0.0;
  for (var j = t; j < count; j += BWG) { s += bnSX[bnIndex(bnSP, c, j)]; }
  bnA[t] = s;
  bnB[t] = 0.0;
  bnReduce(t);
  let mu = bnA[0] / f32(count);
  workgroupBarrier();
  var v = 0.0;
  for (var j = t; j < count; j += BWG) {
    let d = bnSX[bnIndex(bnSP, c, j)] - mu;
    v += d * d;
  }
  bnA[t] = v;
  bnReduce(t);
  if (t == 0u) {
    bnSMean[c] = mu;
    bnSVar[c] = bnA[0] / f32(count);
  }
}

@group(0) @binding(0) var<storage, read> bnAX: array<f32>;
@group(0) @binding(1) var<storage, read> bnAMean: array<f32>;
@group(0) @binding(2) var<storage, read> bnARstd: array<f32>;
@group(0) @binding(3) var<storage, read> bnAGamma: array<f32>;
@group(0) @binding(4) var<storage, read> bnABeta: array<f32>;
@group(0) @binding(5) var<storage, read> bnARes: array<f32>;
@group(0) @binding(6) var<storage, read_write> bnAOut: array<f32>;
@group(0) @binding(7) var<uniform> bnAP: BN;

@compute @workgroup_size(256)
fn batchNormApply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.y * nwg.x * 256u + gid.x;
  if (e >= bnAP.n * bnAP.C * bnAP.hw) { return; }
  let c = (e / bnAP.hw) % bnAP.C;
  var scale = bnARstd[c];
  if ((bnAP.flags & 1u) != 0u) { scale = scale * bnAGamma[c]; }
  var y = (bnAX[e] - bnAMean[c]) * scale;
  if ((bnAP.flags & 2u) != 0u) { y += bnABeta[c]; }
  if ((bnAP.flags & 4u) != 0u) { y += bnARes[e]; }
  if ((bnAP.flags & 8u) != 0u) { y = max(y, 0.0); }
  bnAOut[e] = y;
}

@group(0) @binding(0) var<storage, read> bnGX: array<f32>;
@group(0) @binding(1) var<storage, read> bnGY: array<f32>;
@group(0) @binding(2) var<storage, read> bnGMean: array<f32>;
@group(0) @binding(3) var<storage, read> bnGRstd: array<f32>;
@group(0) @binding(4) var<storage, read> bnGDy: array<f32>;
@group(0) @binding(5) var<storage, read_write> bnGSums: array<f32>;
@group(0) @binding(6) var<uniform> bnGP: BN;

fn bnGradOf(P: BN, dy: f32, y: f32) -> f32 {
  if ((P.flags & 8u) != 0u && !(y > 0.0)) { return 0.0; }
  return dy;
}

// Pass 1: sums[2c] = Σ g, sums[2c + 1] = Σ g·x̂ per channel.
@compute @workgroup_size(64)
fn batchNormGradSums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = wid.x;
  let count = bnGP.n * bnGP.hw;
  let mu = bnGMean[c];
  let rs = bnGRstd[c];
  var a = 0.0;
  var b = 0.0;
  for (var j = t; j < count; j += BWG) {
    let i = bnIndex(bnGP, c, j);
    let g = bnGradOf(bnGP, bnGDy[i], bnGY[i]);
    a += g;
    b += g * ((bnGX[i] - mu) * rs);
  }
  bnA[t] = a;
  bnB[t] = b;
  bnReduce(t);
  if (t == 0u) {
    bnGSums[2u * c] = bnA[0];
    bnGSums[2u * c + 1u] = bnB[0];
  }
}

@group(0) @binding(0) var<storage, read> bnHSums: array<f32>;
@group(0) @binding(1) var<storage, read_write> bnHDgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> bnHDbeta: array<f32>;
@group(0) @binding(3) var<uniform> bnHP: BN;

// Pass 1b: the parameter gradients out of the sums (flags 1: dgamma wanted, 2: dbeta wanted).
@compute @workgroup_size(64)
fn batchNormGradParams(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= bnHP.C) { return; }
  if ((bnHP.flags & 1u) != 0u) { bnHDgamma[c] = bnHSums[2u * c + 1u]; }
  if ((bnHP.flags & 2u) != 0u) { bnHDbeta[c] = bnHSums[2u * c]; }
}

@group(0) @binding(0) var<storage, read> bnDX: array<f32>;
@group(0) @binding(1) var<storage, read> bnDY: array<f32>;
@group(0) @binding(2) var<storage, read> bnDChan: array<f32>; // per channel: mean, rstd, gamma·rstd, Σ g, Σ g·x̂
@group(0) @binding(3) var<storage, read> bnDDy: array<f32>;
@group(0) @binding(4) var<storage, read_write> bnDDx: array<f32>;
@group(0) @binding(5) var<storage, read_write> bnDRes: array<f32>;
@group(0) @binding(6) var<uniform> bnDP: BN;

// Pass 2, one thread per element: dx (and dres = g).
@compute @workgroup_size(256)
fn batchNormGradInput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.y * nwg.x * 256u + gid.x;
  if (e >= bnDP.n * bnDP.C * bnDP.hw) { return; }
  let c = (e / bnDP.hw) % bnDP.C;
  let g = bnGradOf(bnDP, bnDDy[e], bnDY[e]);
  if ((bnDP.flags & 32u) != 0u) { bnDRes[e] = g; }
  let xh = (bnDX[e] - bnDChan[5u * c]) * bnDChan[5u * c + 1u];
  var am = 0.0;
  var bm = 0.0;
  if ((bnDP.flags & 16u) != 0u) {
    let count = f32(bnDP.n * bnDP.hw);
    am = bnDChan[5u * c + 3u] / count;
    bm = bnDChan[5u * c + 4u] / count;
  }
  bnDDx[e] = bnDChan[5u * c + 2u] * ((g - am) - xh * bm);
}

@group(0) @binding(0) var<storage, read> bnCMean: array<f32>;
@group(0) @binding(1) var<storage, read> bnCRstd: array<f32>;
@group(0) @binding(2) var<storage, read> bnCGamma: array<f32>;
@group(0) @binding(3) var<storage, read> bnCSums: array<f32>;
@group(0) @binding(4) var<storage, read_write> bnCChan: array<f32>;
@group(0) @binding(5) var<uniform> bnCP: BN;

// Pass 1c: gathers what pass 2 needs per channel into one buffer (keeps it within 6 storage bindings).
@compute @workgroup_size(64)
fn batchNormGradChannels(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= bnCP.C) { return; }
  var k = bnCRstd[c];
  if ((bnCP.flags & 1u) != 0u) { k = k * bnCGamma[c]; }
  bnCChan[5u * c] = bnCMean[c];
  bnCChan[5u * c + 1u] = bnCRstd[c];
  bnCChan[5u * c + 2u] = k;
  bnCChan[5u * c + 3u] = bnCSums[2u * c];
  bnCChan[5u * c + 4u] = bnCSums[2u * c + 1u];
}
