// Convolution helpers over NCHW images: im2col / col2im and 2-D pooling with its gradient, one
// thread per output element. Column matrix [batch, outH·outW, C·kh·kw], columns ordered c, ky, kx.
// Backward kernels gather (each input pixel sums what read it in a fixed order, as
// assembly/conv.ts does): no atomics, deterministic.

const WG: u32 = 256u;

struct P {
  batch: u32, channels: u32, height: u32, width: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  ph: u32, pw: u32, outH: u32, outW: u32,
  total: u32, _p0: u32, _p1: u32, _p2: u32,
};

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

/** Smallest o ≥ 0 with o·s ≥ t. */
fn ceilDiv(t: i32, s: i32) -> i32 {
  if (t <= 0) { return 0; }
  return (t + s - 1) / s;
}

@group(0) @binding(0) var<storage, read> iX: array<f32>;
@group(0) @binding(1) var<storage, read_write> iOut: array<f32>;
@group(0) @binding(2) var<uniform> iP: P;

@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= iP.total) { return; }
  let K = iP.channels * iP.kh * iP.kw;
  let col = e % K;
  let row = e / K;
  let np = iP.outH * iP.outW;
  let p = row % np;
  let b = row / np;
  let c = col / (iP.kh * iP.kw);
  let ky = (col / iP.kw) % iP.kh;
  let kx = col % iP.kw;
  let iy = i32((p / iP.outW) * iP.sh + ky) - i32(iP.ph);
  let ix = i32((p % iP.outW) * iP.sw + kx) - i32(iP.pw);
  var v = 0.0;
  if (iy >= 0 && iy < i32(iP.height) && ix >= 0 && ix < i32(iP.width)) {
    v = iX[((b * iP.channels + c) * iP.height + u32(iy)) * iP.width + u32(ix)];
  }
  iOut[e] = v;
}

@group(0) @binding(0) var<storage, read> cCol: array<f32>;
@group(0) @binding(1) var<storage, read_write> cDx: array<f32>;
@group(0) @binding(2) var<uniform> cP: P;

@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= cP.total) { return; }
  let ix = i32(e % cP.width);
  let iy = i32((e / cP.width) % cP.height);
  let bc = e / (cP.width * cP.height);
  let c = bc % cP.channels;
  let b = bc / cP.channels;
  let K = cP.channels * cP.kh * cP.kw;
  let base = b * cP.outH * cP.outW;
  let sh = i32(cP.sh);
  let sw = i32(cP.sw);
  var acc = 0.0;
  for (var ky = 0u; ky < cP.kh; ky++) {
    let ty = iy + i32(cP.ph) - i32(ky);
    if (ty < 0 || ty % sh != 0) { continue; }
    let oy = u32(ty / sh);
    if (oy >= cP.outH) { continue; }
    for (var kx = 0u; kx < cP.kw; kx++) {
      let tx = ix + i32(cP.pw) - i32(kx);
      if (tx < 0 || tx % sw != 0) { continue; }
      let ox = u32(tx / sw);
      if (ox >= cP.outW) { continue; }
      acc += cCol[(base + oy * cP.outW + ox) * K + (c * cP.kh + ky) * cP.kw + kx];
    }
  }
  cDx[e] = acc;
}

@group(0) @binding(0) var<storage, read> pX: array<f32>;
@group(0) @binding(1) var<storage, read_write> pOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> pArg: array<i32>;
@group(0) @binding(3) var<uniform> pP: P;

// Window of output e: plane offset, top-left corner and the clipped kernel ranges.
struct Window { plane: u32, y0: i32, x0: i32, ky0: i32, ky1: i32, kx0: i32, kx1: i32 };

fn window(e: u32) -> Window {
  let ox = e % pP.outW;
  let oy = (e / pP.outW) % pP.outH;
  let bc = e / (pP.outW * pP.outH);
  let y0 = i32(oy * pP.sh) - i32(pP.ph);
  let x0 = i32(ox * pP.sw) - i32(pP.pw);
  let h = i32(pP.height);
  let w = i32(pP.width);
  return Window(bc * pP.height * pP.width, y0, x0, max(0, -y0), min(i32(pP.kh), h - y0), max(0, -x0), min(i32(pP.kw), w - x0));
}

// Max: padding never wins, the first maximum wins ties, argmax is iy·W + ix in the plane.
@compute @workgroup_size(256)
fn poolMax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= pP.total) { return; }
  let win = window(e);
  let w = i32(pP.width);
  var negInf = 0xff800000u; // a var, so it is not constant-folded (an infinite constant is an error)
  var best = bitcast<f32>(negInf);
  var bi = -1;
  for (var ky = win.ky0; ky < win.ky1; ky++) {
    for (var kx = win.kx0; kx < win.kx1; kx++) {
      let idx = (win.y0 + ky) * w + win.x0 + kx;
      let v = pX[win.plane + u32(idx)];
      if (bi < 0 || v > best) {
        best = v;
        bi = idx;
      }
    }
  }
  pOut[e] = best;
  pArg[e] = bi;
}

@group(0) @binding(0) var<storage, read> aX: array<f32>;
@group(0) @binding(1) var<storage, read_write> aOut: array<f32>;
@group(0) @binding(2) var<uniform> aP: P;

// Average with count_include_pad=True: the window sum over kh·kw.
@compute @workgroup_size(256)
fn poolAvg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= aP.total) { return; }
  let ox = e % aP.outW;
  let oy = (e / aP.outW) % aP.outH;
  let plane = (e / (aP.outW * aP.outH)) * aP.height * aP.width;
  let y0 = i32(oy * aP.sh) - i32(aP.ph);
  let x0 = i32(ox * aP.sw) - i32(aP.pw);
  let w = i32(aP.width);
  var acc = 0.0;
  for (var ky = max(0, -y0); ky < min(i32(aP.kh), i32(aP.height) - y0); ky++) {
    for (var kx = max(0, -x0); kx < min(i32(aP.kw), w - x0); kx++) {
      acc += aX[plane + u32((y0 + ky) * w + x0 + kx)];
    }
  }
  aOut[e] = acc / f32(aP.kh * aP.kw);
}

@group(0) @binding(0) var<storage, read> gDy: array<f32>;
@group(0) @binding(1) var<storage, read> gArg: array<i32>;
@group(0) @binding(2) var<storage, read_write> gDx: array<f32>;
@group(0) @binding(3) var<uniform> gP: P;

// One thread per input pixel: sums the gradients of the windows that took it, oy then ox ascending.
@compute @workgroup_size(256)
fn poolMaxGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= gP.total) { return; }
  let ix = i32(e % gP.width);
  let iy = i32((e / gP.width) % gP.height);
  let oplane = (e / (gP.width * gP.height)) * gP.outH * gP.outW;
  let me = iy * i32(gP.width) + ix;
  let oy1 = min(i32(gP.outH) - 1, (iy + i32(gP.ph)) / i32(gP.sh));
  let ox1 = min(i32(gP.outW) - 1, (ix + i32(gP.pw)) / i32(gP.sw));
  var acc = 0.0;
  for (var oy = ceilDiv(iy + i32(gP.ph) - i32(gP.kh) + 1, i32(gP.sh)); oy <= oy1; oy++) {
    for (var ox = ceilDiv(ix + i32(gP.pw) - i32(gP.kw) + 1, i32(gP.sw)); ox <= ox1; ox++) {
      let o = oplane + u32(oy) * gP.outW + u32(ox);
      if (gArg[o] == me) { acc += gDy[o]; }
    }
  }
  gDx[e] = acc;
}

@group(0) @binding(0) var<storage, read> vDy: array<f32>;
@group(0) @binding(1) var<storage, read_write> vDx: array<f32>;
@group(0) @binding(2) var<uniform> vP: P;

@compute @workgroup_size(256)
fn poolAvgGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= vP.total) { return; }
  let ix = i32(e % vP.width);
  let iy = i32((e / vP.width) % vP.height);
  let oplane = (e / (vP.width * vP.height)) * vP.outH * vP.outW;
  let oy1 = min(i32(vP.outH) - 1, (iy + i32(vP.ph)) / i32(vP.sh));
  let ox1 = min(i32(vP.outW) - 1, (ix + i32(vP.pw)) / i32(vP.sw));
  var acc = 0.0;
  for (var oy = ceilDiv(iy + i32(vP.ph) - i32(vP.kh) + 1, i32(vP.sh)); oy <= oy1; oy++) {
    for (var ox = ceilDiv(ix + i32(vP.pw) - i32(vP.kw) + 1, i32(vP.sw)); ox <= ox1; ox++) {
      acc += vDy[oplane + u32(oy) * vP.outW + u32(ox)];
    }
  }
  vDx[e] = acc * (1.0 / f32(vP.kh * vP.kw));
}

// Direct convolution kernels, the twins of assembly/convgemm.ts's implicit GEMMs: plain loops,
// correctness first. Each output sums its terms in one fixed order (no atomics): the forward and the
// input gradient one thread per output, the weight gradient one workgroup per weight whose threads
// take pixels round-robin and then add their partial sums as a fixed tree.
struct CP {
  batch: u32, channels: u32, height: u32, width: u32,
  kh: u32, kw: u32, sh: u32, sw: u32,
  ph: u32, pw: u32, outH: u32, outW: u32,
  outC: u32, total: u32, _p0: u32, _p1: u32,
};

@group(0) @binding(0) var<storage, read> fX: array<f32>;
@group(0) @binding(1) var<storage, read> fW: array<f32>;
@group(0) @binding(2) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(3) var<uniform> fP: CP;

@compute @workgroup_size(256)
fn convForward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= fP.total) { return; }
  let ox = e % fP.outW;
  let oy = (e / fP.outW) % fP.outH;
  let o = (e / (fP.outW * fP.outH)) % fP.outC;
  let b = e / (fP.outW * fP.outH * fP.outC);
  let y0 = i32(oy * fP.sh) - i32(fP.ph);
  let x0 = i32(ox * fP.sw) - i32(fP.pw);
  var acc = 0.0;
  for (var c = 0u; c < fP.channels; c++) {
    let plane = (b * fP.channels + c) * fP.height;
    let wBase = (o * fP.channels + c) * fP.kh;
    for (var ky = 0u; ky < fP.kh; ky++) {
      let iy = y0 + i32(ky);
      if (iy < 0 || iy >= i32(fP.height)) { continue; }
      for (var kx = 0u; kx < fP.kw; kx++) {
        let ix = x0 + i32(kx);
        if (ix < 0 || ix >= i32(fP.width)) { continue; }
        acc += fX[(plane + u32(iy)) * fP.width + u32(ix)] * fW[(wBase + ky) * fP.kw + kx];
      }
    }
  }
  fOut[e] = acc;
}

@group(0) @binding(0) var<storage, read> iDy: array<f32>;
@group(0) @binding(1) var<storage, read> iW: array<f32>;
@group(0) @binding(2) var<storage, read_write> iDx: array<f32>;
@group(0) @binding(3) var<uniform> iCP: CP;

// One thread per input pixel: o, then ky, kx ascending over the windows that read it.
@compute @workgroup_size(256)
fn convGradInput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= iCP.total) { return; }
  let ix = i32(e % iCP.width);
  let iy = i32((e / iCP.width) % iCP.height);
  let c = (e / (iCP.width * iCP.height)) % iCP.channels;
  let b = e / (iCP.width * iCP.height * iCP.channels);
  let sh = i32(iCP.sh);
  let sw = i32(iCP.sw);
  var acc = 0.0;
  for (var o = 0u; o < iCP.outC; o++) {
    let plane = (b * iCP.outC + o) * iCP.outH;
    let wBase = (o * iCP.channels + c) * iCP.kh;
    for (var ky = 0u; ky < iCP.kh; ky++) {
      let ty = iy + i32(iCP.ph) - i32(ky);
      if (ty < 0 || ty % sh != 0) { continue; }
      let oy = u32(ty / sh);
      if (oy >= iCP.outH) { continue; }
      for (var kx = 0u; kx < iCP.kw; kx++) {
        let tx = ix + i32(iCP.pw) - i32(kx);
        if (tx < 0 || tx % sw != 0) { continue; }
        let ox = u32(tx / sw);
        if (ox >= iCP.outW) { continue; }
        acc += iDy[(plane + oy) * iCP.outW + ox] * iW[(wBase + ky) * iCP.kw + kx];
      }
    }
  }
  iDx[e] = acc;
}

@group(0) @binding(0) var<storage, read> wX: array<f32>;
@group(0) @binding(1) var<storage, read> wDy: array<f32>;
@group(0) @binding(2) var<storage, read_write> wDw: array<f32>;
@group(0) @binding(3) var<uniform> wCP: CP;

const WGW: u32 = 64u;
var<workgroup> wPart: array<f32, 64>;

// One workgroup per weight (o, c, ky, kx); thread t sums pixels q ≡ t (mod 64) of the whole batch.
@compute @workgroup_size(64)
fn convGradWeight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
  @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = wid.y * nwg.x + wid.x;
  let valid = e < wCP.total;
  let kx = e % wCP.kw;
  let ky = (e / wCP.kw) % wCP.kh;
  let c = (e / (wCP.kw * wCP.kh)) % wCP.channels;
  let o = e / (wCP.kw * wCP.kh * wCP.channels);
  let P = wCP.outH * wCP.outW;
  var acc = 0.0;
  if (valid) {
    for (var q = t; q < wCP.batch * P; q += WGW) {
      let b = q / P;
      let p = q % P;
      let iy = i32((p / wCP.outW) * wCP.sh + ky) - i32(wCP.ph);
      let ix = i32((p % wCP.outW) * wCP.sw + kx) - i32(wCP.pw);
      if (iy < 0 || iy >= i32(wCP.height) || ix < 0 || ix >= i32(wCP.width)) { continue; }
      acc += wX[((b * wCP.channels + c) * wCP.height + u32(iy)) * wCP.width + u32(ix)] * wDy[(b * wCP.outC + o) * P + p];
    }
  }
  wPart[t] = acc;
  workgroupBarrier();
  for (var half = WGW / 2u; half > 0u; half = half / 2u) {
    if (t < half) { wPart[t] = wPart[t] + wPart[t + half]; }
    workgroupBarrier();
  }
  if (valid && t == 0u) { wDw[e] = wPart[0]; }
}
