// Twins of assembly/winograd.ts: Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions, the filter,
// input and output transforms around the batched matmul that src/tensor/ops/conv.ts runs. One
// thread per filter (weights), per channel and tile (input), per output channel and tile (output);
// each transform is the same sequence of operations as the wasm kernels' lanes, on a private array.

const WG: u32 = 256u;

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

struct WW { r: u32, s: u32, flip: u32, total: u32 };

@group(0) @binding(0) var<storage, read> wW: array<f32>;
@group(0) @binding(1) var<storage, read_write> wU: array<f32>;
@group(0) @binding(2) var<uniform> wP: WW;

/** Row i of G applied to (g0, g1, g2). */
fn gRow(i: u32, g0: f32, g1: f32, g2: f32) -> f32 {
  switch (i) {
    case 0u: { return g0 * 0.25; }
    case 1u: { return (g0 + g1 + g2) * (-1.0 / 6.0); }
    case 2u: { return (g0 - g1 + g2) * (-1.0 / 6.0); }
    case 3u: { return (g0 + 2.0 * g1 + 4.0 * g2) * (1.0 / 24.0); }
    case 4u: { return (g0 - 2.0 * g1 + 4.0 * g2) * (1.0 / 24.0); }
    default: { return g2; }
  }
}

// u[ξ][r][s] = (G g Gᵀ)[ξ], g = w[r][s] or (flip) the 180° rotation of w[s][r]
@compute @workgroup_size(256)
fn winogradWeights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= wP.total) { return; }
  let r = e / wP.s;
  let s = e % wP.s;
  var base = (r * wP.s + s) * 9u;
  if (wP.flip != 0u) { base = (s * wP.r + r) * 9u; }
  let plane = wP.r * wP.s;
  var g: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) {
    if (wP.flip != 0u) { g[k] = wW[base + 8u - k]; } else { g[k] = wW[base + k]; }
  }
  for (var i = 0u; i < 6u; i++) {
    let t0 = gRow(i, g[0], g[3], g[6]);
    let t1 = gRow(i, g[1], g[4], g[7]);
    let t2 = gRow(i, g[2], g[5], g[8]);
    for (var j = 0u; j < 6u; j++) { wU[(i * 6u + j) * plane + e] = gRow(j, t0, t1, t2); }
  }
}

struct WI {
  c: u32, h: u32, w: u32, padH: u32,
  padW: u32, th: u32, tw: u32, first: u32,
  n: u32, np: u32, total: u32, _p0: u32,
};

@group(0) @binding(0) var<storage, read> iX: array<f32>;
@group(0) @binding(1) var<storage, read_write> iV: array<f32>;
@group(0) @binding(2) var<uniform> iP: WI;

/** Bᵀ over d[o + k·step], k = 0..5, in place. */
fn inputPass(d: ptr<function, array<f32, 36>>, o: u32, step: u32) {
  let z0 = (*d)[o]; let z1 = (*d)[o + step]; let z2 = (*d)[o + 2u * step];
  let z3 = (*d)[o + 3u * step]; let z4 = (*d)[o + 4u * step]; let z5 = (*d)[o + 5u * step];
  let s12 = z1 + z2; let d12 = z1 - z2; let a = z4 - z2; let b = z3 - z1;
  (*d)[o] = 4.0 * z0 - 5.0 * z2 + z4;
  (*d)[o + step] = (z4 + z3) - 4.0 * s12;
  (*d)[o + 2u * step] = (z4 - z3) + 4.0 * d12;
  (*d)[o + 3u * step] = a + 2.0 * b;
  (*d)[o + 4u * step] = a - 2.0 * b;
  (*d)[o + 5u * step] = 4.0 * z1 - 5.0 * z3 + z5;
}

// v[ξ][c][j] = (Bᵀ d B)[ξ] of tile first + j's 6×6 patch of channel c (padding and j ≥ n read zero)
@compute @workgroup_size(256)
fn winogradInput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= iP.total) { return; }
  let c = e / iP.np;
  let j = e % iP.np;
  var d: array<f32, 36>;
  if (j < iP.n) {
    let q = iP.first + j;
    let tiles = iP.th * iP.tw;
    let b = q / tiles;
    let rem = q % tiles;
    let iy0 = i32((rem / iP.tw) * 4u) - i32(iP.padH);
    let ix0 = i32((rem % iP.tw) * 4u) - i32(iP.padW);
    let img = (b * iP.c + c) * iP.h;
    for (var r = 0u; r < 6u; r++) {
      let iy = iy0 + i32(r);
      for (var k = 0u; k < 6u; k++) {
        let ix = ix0 + i32(k);
        var val = 0.0;
        if (iy >= 0 && iy < i32(iP.h) && ix >= 0 && ix < i32(iP.w)) {
          val = iX[(img + u32(iy)) * iP.w + u32(ix)];
        }
        d[r * 6u + k] = val;
      }
    }
  }
  for (var r = 0u; r < 6u; r++) { inputPass(&d, r * 6u, 1u); }
  for (var k = 0u; k < 6u; k++) { inputPass(&d, k, 6u); }
  let plane = iP.c * iP.np;
  for (var x = 0u; x < 36u; x++) { iV[x * plane + e] = d[x]; }
}

struct WO {
  o: u32, oh: u32, ow: u32, th: u32,
  tw: u32, first: u32, n: u32, np: u32,
  total: u32, _p0: u32, _p1: u32, _p2: u32,
};

@group(0) @binding(0) var<storage, read> oM: array<f32>;
@group(0) @binding(1) var<storage, read_write> oY: array<f32>;
@group(0) @binding(2) var<uniform> oP: WO;

/** Aᵀ over d[o + k·step], k = 0..5: the four results go to the first four places. */
fn outputPass(d: ptr<function, array<f32, 36>>, o: u32, step: u32) {
  let z0 = (*d)[o]; let z1 = (*d)[o + step]; let z2 = (*d)[o + 2u * step];
  let z3 = (*d)[o + 3u * step]; let z4 = (*d)[o + 4u * step]; let z5 = (*d)[o + 5u * step];
  let a = z1 + z2; let b = z1 - z2; let c = z3 + z4; let dd = z3 - z4;
  (*d)[o] = (z0 + a) + c;
  (*d)[o + step] = b + 2.0 * dd;
  (*d)[o + 2u * step] = a + 4.0 * c;
  (*d)[o + 3u * step] = (b + 8.0 * dd) + z5;
}

// y[b][o][4·ty + i][4·tx + j] = (Aᵀ m A)[i][j] of tile first + c (column c of m), inside oh × ow
@compute @workgroup_size(256)
fn winogradOutput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= oP.total) { return; }
  let o = e / oP.n;
  let col = e % oP.n;
  let q = oP.first + col;
  let plane = oP.o * oP.np;
  var d: array<f32, 36>;
  for (var x = 0u; x < 36u; x++) { d[x] = oM[x * plane + o * oP.np + col]; }
  for (var r = 0u; r < 6u; r++) { outputPass(&d, r * 6u, 1u); }
  for (var j = 0u; j < 4u; j++) { outputPass(&d, j, 6u); }
  let tiles = oP.th * oP.tw;
  let b = q / tiles;
  let rem = q % tiles;
  let oy0 = (rem / oP.tw) * 4u;
  let ox0 = (rem % oP.tw) * 4u;
  let img = (b * oP.o + o) * oP.oh;
  for (var i = 0u; i < 4u; i++) {
    if (oy0 + i >= oP.oh) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (ox0 + j >= oP.ow) { break; }
      oY[(img + oy0 + i) * oP.ow + ox0 + j] = d[i * 6u + j];
    }
  }
}

// ---- weight gradient: the adjoints of the output and filter transforms ----

@group(0) @binding(0) var<storage, read> gDy: array<f32>;
@group(0) @binding(1) var<storage, read_write> gDm: array<f32>;
@group(0) @binding(2) var<uniform> gP: WO;

/** A over d[o + i·step], i = 0..3 (the adjoint of Aᵀ): six results at d[o + k·step]. */
fn adjointPass(d: ptr<function, array<f32, 36>>, o: u32, step: u32) {
  let z0 = (*d)[o]; let z1 = (*d)[o + step]; let z2 = (*d)[o + 2u * step]; let z3 = (*d)[o + 3u * step];
  let e = z0 + z2; let od = z1 + z3;
  let e4 = z0 + 4.0 * z2; let o2 = 2.0 * z1 + 8.0 * z3;
  (*d)[o] = z0;
  (*d)[o + step] = e + od;
  (*d)[o + 2u * step] = e - od;
  (*d)[o + 3u * step] = e4 + o2;
  (*d)[o + 4u * step] = e4 - o2;
  (*d)[o + 5u * step] = z3;
}

// dm[ξ][o][j] = (A dY Aᵀ)[ξ] of tile first + j's 4×4 block of dy (outside oh × ow and j ≥ n read zero)
@compute @workgroup_size(256)
fn winogradOutputGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= gP.total) { return; }
  let o = e / gP.np;
  let j = e % gP.np;
  var d: array<f32, 36>;
  if (j < gP.n) {
    let q = gP.first + j;
    let tiles = gP.th * gP.tw;
    let b = q / tiles;
    let rem = q % tiles;
    let oy0 = (rem / gP.tw) * 4u;
    let ox0 = (rem % gP.tw) * 4u;
    let img = (b * gP.o + o) * gP.oh;
    for (var i = 0u; i < 4u; i++) {
      for (var k = 0u; k < 4u; k++) {
        var val = 0.0;
        if (oy0 + i < gP.oh && ox0 + k < gP.ow) { val = gDy[(img + oy0 + i) * gP.ow + ox0 + k]; }
        d[i * 6u + k] = val;
      }
    }
    for (var i = 0u; i < 4u; i++) { adjointPass(&d, i * 6u, 1u); }
    for (var k = 0u; k < 6u; k++) { adjointPass(&d, k, 6u); }
  }
  let plane = gP.o * gP.np;
  for (var x = 0u; x < 36u; x++) { gDm[x * plane + e] = d[x]; }
}

@group(0) @binding(0) var<storage, read> hDu: array<f32>;
@group(0) @binding(1) var<storage, read_write> hDw: array<f32>;
@group(0) @binding(2) var<uniform> hP: WW;

/** Column k of Gᵀ applied to (z0..z5). */
fn gAdjoint(z0: f32, z1: f32, z2: f32, z3: f32, z4: f32, z5: f32, k: u32) -> f32 {
  let s12 = z1 + z2; let d12 = z2 - z1; let s34 = z3 + z4; let d34 = z3 - z4;
  if (k == 0u) { return (z0 * 0.25 - s12 * (1.0 / 6.0)) + s34 * (1.0 / 24.0); }
  if (k == 1u) { return d12 * (1.0 / 6.0) + d34 * (1.0 / 12.0); }
  return (s34 - s12) * (1.0 / 6.0) + z5;
}

// dw[r][s] = Gᵀ dU G of du[ξ][r][s] (the adjoint of winogradWeights, not flipped)
@compute @workgroup_size(256)
fn winogradWeightsGrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= hP.total) { return; }
  let plane = hP.r * hP.s;
  var t: array<f32, 18>; // t[i][kx], rows i = 0..5
  for (var i = 0u; i < 6u; i++) {
    let b = i * 6u * plane + e;
    let z0 = hDu[b]; let z1 = hDu[b + plane]; let z2 = hDu[b + 2u * plane];
    let z3 = hDu[b + 3u * plane]; let z4 = hDu[b + 4u * plane]; let z5 = hDu[b + 5u * plane];
    for (var k = 0u; k < 3u; k++) { t[i * 3u + k] = gAdjoint(z0, z1, z2, z3, z4, z5, k); }
  }
  for (var ky = 0u; ky < 3u; ky++) {
    for (var kx = 0u; kx < 3u; kx++) {
      hDw[e * 9u + ky * 3u + kx] = gAdjoint(t[kx], t[3u + kx], t[6u + kx], t[9u + kx], t[12u + kx], t[15u + kx], ky);
    }
  }
}
