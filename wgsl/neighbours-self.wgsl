// Twins of assembly/neighbours-self.ts: each row's m best neighbours among the rows themselves, and
// the search restricted to cached candidates.
//
// selfTopM: one thread per row walks every row j in order, each score one sequential sum over
// l = 0..d-1 (as nearestNeighbor's), and keeps a list of its m best in the output buffers (value
// descending, then index ascending: a later j only moves ahead of a strictly smaller value). A GPU
// has the arithmetic to spare, so the pairs are not shared between rows as on the CPU; the
// neighbour chosen is the same. The list's index -1 marks an empty entry.

struct SelfParams { k: u32, d: u32, m: u32, excludeSelf: u32, negInf: f32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<storage, read> sX: array<f32>;
@group(0) @binding(1) var<storage, read_write> sVal: array<f32>;
@group(0) @binding(2) var<storage, read_write> sIdx: array<i32>;
@group(0) @binding(3) var<storage, read_write> sListV: array<f32>; // [k][m]
@group(0) @binding(4) var<storage, read_write> sListI: array<i32>; // [k][m]
@group(0) @binding(5) var<uniform> sP: SelfParams;

// <x_a, x_b> summed in order over l, 8 terms per iteration: llvmpipe caps a loop at 65535
// iterations over the whole invocation (not per entry), which a plain l loop inside the j loop
// passes at k·d = 65536; this keeps correct results up to k·d < 2^19 there (hardware has no cap).
fn dot8(a: u32, b: u32, d: u32) -> f32 {
  var acc = 0.0;
  var l = 0u;
  for (; l + 8u <= d; l += 8u) {
    acc = acc + sX[a + l] * sX[b + l];
    acc = acc + sX[a + l + 1u] * sX[b + l + 1u];
    acc = acc + sX[a + l + 2u] * sX[b + l + 2u];
    acc = acc + sX[a + l + 3u] * sX[b + l + 3u];
    acc = acc + sX[a + l + 4u] * sX[b + l + 4u];
    acc = acc + sX[a + l + 5u] * sX[b + l + 5u];
    acc = acc + sX[a + l + 6u] * sX[b + l + 6u];
    acc = acc + sX[a + l + 7u] * sX[b + l + 7u];
  }
  for (; l < d; l++) { acc = acc + sX[a + l] * sX[b + l]; }
  return acc;
}

@compute @workgroup_size(64)
fn selfTopM(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= sP.k) { return; }
  let k = sP.k;
  let d = sP.d;
  let m = sP.m;
  let ob = i * m;
  for (var c = 0u; c < m; c++) {
    sListV[ob + c] = sP.negInf;
    sListI[ob + c] = -1;
  }
  var n = 0u;
  for (var j = 0u; j < k; j++) {
    if ((sP.excludeSelf != 0u) && (j == i)) { continue; }
    let acc = dot8(i * d, j * d, d);
    if (acc != acc) { continue; } // NaN is never a neighbour
    var pos: u32;
    if (n == m) {
      if (!(acc > sListV[ob + m - 1u])) { continue; }
      pos = m - 1u;
    } else {
      pos = n;
      n++;
    }
    while ((pos > 0u) && (acc > sListV[ob + pos - 1u])) {
      sListV[ob + pos] = sListV[ob + pos - 1u];
      sListI[ob + pos] = sListI[ob + pos - 1u];
      pos--;
    }
    sListV[ob + pos] = acc;
    sListI[ob + pos] = i32(j);
  }
  var bv = sListV[ob];
  var bi = sListI[ob];
  if (bv == sP.negInf) { bi = -1; }
  sVal[i] = bv;
  sIdx[i] = bi;
}

struct Cand { k: u32, d: u32, m: u32, _p: u32, negInf: f32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<storage, read> cX: array<f32>;
@group(0) @binding(1) var<storage, read> cCand: array<i32>;
@group(0) @binding(2) var<storage, read_write> cVal: array<f32>;
@group(0) @binding(3) var<storage, read_write> cIdx: array<i32>;
@group(0) @binding(4) var<uniform> cP: Cand;

// One thread per row over its m candidates; the best value, lowest index on ties.
@compute @workgroup_size(64)
fn candidates(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.y * nwg.x * 64u + gid.x;
  if (r >= cP.k) { return; }
  let d = cP.d;
  var bv = cP.negInf;
  var bi = -1;
  for (var c = 0u; c < cP.m; c++) {
    let j = cCand[r * cP.m + c];
    if (j < 0) { continue; }
    var acc = 0.0;
    for (var l = 0u; l < d; l++) { acc = acc + cX[r * d + l] * cX[u32(j) * d + l]; }
    if ((acc > bv) || ((acc == bv) && (bi >= 0) && (j < bi))) {
      bv = acc;
      bi = j;
    }
  }
  if (bv == cP.negInf) { bi = -1; }
  cVal[r] = bv;
  cIdx[r] = bi;
}
