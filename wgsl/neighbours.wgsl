// Nearest neighbour by inner product and per-row top-k.
//
// nearestNeighbor: a workgroup owns BM = 64 rows of x and walks all of y in tiles of BN = 64 rows,
// staging BK = 16 features of both in workgroup memory; thread (tx, ty) computes the 4 × 4 scores
// of x rows ty + 16q and y rows tx + 16p, and keeps a running max/argmax per x row over the y rows
// it sees (in increasing order, strict >, so the first wins ties). The m × k scores are never
// stored. At the end the 16 threads sharing an x row merge their results, lower index first on
// ties. Every score is one sequential sum over l = 0..d-1, identical for every pair.
//
// A dispatch walks only y rows j0..j1-1 (j0 a multiple of BN): llvmpipe stops an invocation's
// loops after about 65535 iterations in all (K = 4096 at d = 1024 already lost the last rows), so
// the host splits long walks (src/backend/webgpu/neighbours.ts). A range past the first (j0 > 0)
// starts each row from the value and index the previous range left in nVal/nIdx; those indices are lower, and the
// merge prefers the lower index on ties, so the answer is the one a single walk gives.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

struct NN { m: u32, k: u32, d: u32, excludeSelf: u32, negInf: f32, j0: u32, j1: u32, _p0: u32 };

@group(0) @binding(0) var<storage, read> nX: array<f32>;
@group(0) @binding(1) var<storage, read> nY: array<f32>;
@group(0) @binding(2) var<storage, read_write> nVal: array<f32>;
@group(0) @binding(3) var<storage, read_write> nIdx: array<i32>;
@group(0) @binding(4) var<uniform> nP: NN;

var<workgroup> xs: array<f32, 1024>; // [BK][BM]
var<workgroup> ys: array<f32, 1024>; // [BK][BN]
var<workgroup> redV: array<f32, 1024>; // [BM][16]
var<workgroup> redI: array<i32, 1024>;

fn beats(v: f32, id: i32, best: f32, bestId: i32) -> bool {
  return (id >= 0) && ((bestId < 0) || (v > best) || ((v == best) && (id < bestId)));
}

@compute @workgroup_size(16, 16)
fn nearestNeighbor(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bm = (wid.y * nwg.x + wid.x) * BM;
  if (bm >= nP.m) { return; }
  let tx = lid3.x;
  let ty = lid3.y;
  let m = nP.m;
  let jEnd = nP.j1;
  let d = nP.d;
  var best = array<f32, 4>(nP.negInf, nP.negInf, nP.negInf, nP.negInf);
  var bestI = array<i32, 4>(-1, -1, -1, -1);
  for (var bn = nP.j0; bn < jEnd; bn += BN) {
    var acc: array<array<f32, 4>, 4>;
    for (var l0 = 0u; l0 < d; l0 += BK) {
      for (var e = 0u; e < 4u; e++) {
        let f = lid + 256u * e;
        let r = f / BK;
        let c = f % BK;
        let col = l0 + c;
        var xv = 0.0;
        if ((bm + r < m) && (col < d)) { xv = nX[(bm + r) * d + col]; }
        xs[c * BM + r] = xv;
        var yv = 0.0;
        if ((bn + r < jEnd) && (col < d)) { yv = nY[(bn + r) * d + col]; }
        ys[c * BN + r] = yv;
      }
      workgroupBarrier();
      for (var c = 0u; c < BK; c++) {
        var a: array<f32, 4>;
        var b: array<f32, 4>;
        for (var q = 0u; q < 4u; q++) { a[q] = xs[c * BM + ty + 16u * q]; }
        for (var p = 0u; p < 4u; p++) { b[p] = ys[c * BN + tx + 16u * p]; }
        for (var q = 0u; q < 4u; q++) {
          for (var p = 0u; p < 4u; p++) { acc[q][p] = acc[q][p] + a[q] * b[p]; }
        }
      }
      workgroupBarrier();
    }
    for (var q = 0u; q < 4u; q++) {
      let i = bm + ty + 16u * q;
      for (var p = 0u; p < 4u; p++) {
        let j = bn + tx + 16u * p;
        let ok = (j < jEnd) && !((nP.excludeSelf != 0u) && (j == i));
        if (ok && (acc[q][p] > best[q])) {
          best[q] = acc[q][p];
          bestI[q] = i32(j);
        }
      }
    }
  }
  for (var q = 0u; q < 4u; q++) {
    redV[(ty + 16u * q) * 16u + tx] = best[q];
    redI[(ty + 16u * q) * 16u + tx] = bestI[q];
  }
  workgroupBarrier();
  if ((lid < BM) && (bm + lid < m)) {
    var bv = nP.negInf;
    var bi = -1;
    if (nP.j0 > 0u) {
      bv = nVal[bm + lid];
      bi = nIdx[bm + lid];
    }
    for (var t = 0u; t < 16u; t++) {
      let v = redV[lid * 16u + t];
      let id = redI[lid * 16u + t];
      if (beats(v, id, bv, bi)) { bv = v; bi = id; }
    }
    nVal[bm + lid] = bv;
    nIdx[bm + lid] = bi;
  }
}

struct TopK { rows: u32, cols: u32, k: u32, j0: u32, j1: u32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<storage, read> tX: array<f32>;
@group(0) @binding(1) var<storage, read_write> tVal: array<f32>;
@group(0) @binding(2) var<storage, read_write> tIdx: array<i32>;
@group(0) @binding(3) var<uniform> tP: TopK;

// v ranks above w: larger, and any number ranks above NaN (so NaN sorts last).
fn above(v: f32, w: f32) -> bool {
  return (v > w) || ((w != w) && (v == v));
}

// One thread per row: a partial insertion sort into the row's k output slots; values arrive in
// index order and only a strictly larger one moves ahead, so ties keep the lower index first. A
// dispatch takes columns j0..j1-1 (the loop cap, above); the slots already hold the first j0.
@compute @workgroup_size(64)
fn topk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.y * nwg.x * 64u + gid.x;
  if (row >= tP.rows) { return; }
  let xb = row * tP.cols;
  let ob = row * tP.k;
  var n = min(tP.j0, tP.k);
  for (var j = tP.j0; j < tP.j1; j++) {
    let v = tX[xb + j];
    var pos: u32;
    if (n == tP.k) {
      if (!above(v, tVal[ob + tP.k - 1u])) { continue; }
      pos = tP.k - 1u;
    } else {
      pos = n;
      n++;
    }
    while ((pos > 0u) && above(v, tVal[ob + pos - 1u])) {
      tVal[ob + pos] = tVal[ob + pos - 1u];
      tIdx[ob + pos] = tIdx[ob + pos - 1u];
      pos--;
    }
    tVal[ob + pos] = v;
    tIdx[ob + pos] = i32(j);
  }
}
