// Softmax / log-softmax over the last axis of [rows, cols] and their gradients. One workgroup per
// row, any row length: each invocation walks the row with stride WG, then a fixed-shape tree in
// workgroup memory combines the partials (deterministic, no atomics). The forward pass is online:
// each invocation keeps a running (max, Σ exp(x − max)) pair, rescaling its sum when the max grows,
// so x is read twice (stats, then output) instead of three times. LOG selects log-softmax.
// WG (a power of two) is chosen by the host from cols so short rows do not idle 256 invocations.

override LOG: bool = false;
override WG: u32 = 256u;

struct P { rows: u32, cols: u32, _a: u32, _b: u32 };

const LOWEST: f32 = -3.402823466e+38;

@group(0) @binding(0) var<storage, read> fX: array<f32>;
@group(0) @binding(1) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(2) var<uniform> fP: P;

var<workgroup> wMax: array<f32, WG>;
var<workgroup> wSum: array<f32, WG>;

fn rowOf(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = rowOf(wid, nwg);
  if (row >= fP.rows) { return; } // whole workgroup leaves together: barriers stay uniform
  let base = row * fP.cols;
  var m = LOWEST;
  var s = 0.0;
  for (var c = lid; c < fP.cols; c += WG) {
    let v = fX[base + c];
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else {
      s += exp(v - m);
    }
  }
  wMax[lid] = m;
  wSum[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) {
      let m1 = wMax[lid];
      let m2 = wMax[lid + k];
      let mm = max(m1, m2);
      wSum[lid] = wSum[lid] * exp(m1 - mm) + wSum[lid + k] * exp(m2 - mm);
      wMax[lid] = mm;
    }
    workgroupBarrier();
  }
  let rm = wMax[0];
  let rs = wSum[0];
  if (LOG) {
    let shift = rm + log(rs);
    for (var c = lid; c < fP.cols; c += WG) { fOut[base + c] = fX[base + c] - shift; }
  } else {
    let inv = 1.0 / rs;
    for (var c = lid; c < fP.cols; c += WG) { fOut[base + c] = exp(fX[base + c] - rm) * inv; }
  }
}

@group(0) @binding(0) var<storage, read> gY: array<f32>;
@group(0) @binding(1) var<storage, read> gDy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gDx: array<f32>;
@group(0) @binding(3) var<uniform> gP: P;

// softmax: dx = y ⊙ (dy − Σ dy·y); log-softmax (y = log p): dx = dy − exp(y) · Σ dy.
@compute @workgroup_size(WG)
fn softmaxGrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let row = rowOf(wid, nwg);
  if (row >= gP.rows) { return; }
  let base = row * gP.cols;
  var s = 0.0;
  for (var c = lid; c < gP.cols; c += WG) {
    if (LOG) { s += gDy[base + c]; } else { s += gDy[base + c] * gY[base + c]; }
  }
  wSum[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { wSum[lid] += wSum[lid + k]; }
    workgroupBarrier();
  }
  let t = wSum[0];
  for (var c = lid; c < gP.cols; c += WG) {
    let y = gY[base + c];
    if (LOG) { gDx[base + c] = gDy[base + c] - exp(y) * t; } else { gDx[base + c] = y * (gDy[base + c] - t); }
  }
}
