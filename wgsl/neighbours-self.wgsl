// Twins of assembly/neighbours-self.ts: each row's m best neighbours among the rows themselves, and
// the search restricted to cached candidates.
//
// selfTopM: one thread per row walks every row j in order, each score one sequential sum over
// l = 0..d-1 (as nearestNeighbor's), and keeps a list of its m best in the output buffers (value
// descending, then index ascending: a later j only moves ahead of a strictly smaller value). A GPU
// has the arithmetic to spare, so the pairs are not shared between rows as on the CPU; the
// neighbour chosen is the same. The list's index -1 marks an empty entry. The exact search alone
// (m = 1) shares the pairs on a software adapter: symTiles and symMerge, below.

struct SelfParams { k: u32, d: u32, m: u32, excludeSelf: u32, negInf: f32, j0: u32, j1: u32, _p0: u32 };

@group(0) @binding(0) var<storage, read> sX: array<f32>;
@group(0) @binding(1) var<storage, read_write> sVal: array<f32>;
@group(0) @binding(2) var<storage, read_write> sIdx: array<i32>;
@group(0) @binding(3) var<storage, read_write> sListV: array<f32>; // [k][m]
@group(0) @binding(4) var<storage, read_write> sListI: array<i32>; // [k][m]
@group(0) @binding(5) var<uniform> sP: SelfParams;

// <x_a, x_b> summed in order over l, 8 terms per iteration: llvmpipe stops an invocation's loops
// after about 65535 iterations in all, so fewer iterations let a dispatch walk more rows j. The
// host still splits the walk (rows j0..j1-1 per dispatch, src/backend/webgpu/neighbours.ts).
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
  var n = 0u;
  if (sP.j0 == 0u) {
    for (var c = 0u; c < m; c++) {
      sListV[ob + c] = sP.negInf;
      sListI[ob + c] = -1;
    }
  } else {
    // The list fills from the front: its length is where the first empty entry is.
    while ((n < m) && (sListI[ob + n] >= 0)) { n++; }
  }
  for (var j = sP.j0; j < sP.j1; j++) {
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

struct Cand { k: u32, d: u32, m: u32, _p: u32, negInf: f32, c0: u32, c1: u32, _p0: u32 };

@group(0) @binding(0) var<storage, read> cX: array<f32>;
@group(0) @binding(1) var<storage, read> cCand: array<i32>;
@group(0) @binding(2) var<storage, read_write> cVal: array<f32>;
@group(0) @binding(3) var<storage, read_write> cIdx: array<i32>;
@group(0) @binding(4) var<uniform> cP: Cand;

// One thread per row over its candidates c0..c1-1 of m (the loop cap, above: the host splits long
// lists); the best value, lowest index on ties, a range past the first (c0 > 0) starting from the best so far.
@compute @workgroup_size(64)
fn candidates(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.y * nwg.x * 64u + gid.x;
  if (r >= cP.k) { return; }
  let d = cP.d;
  var bv = cP.negInf;
  var bi = -1;
  if (cP.c0 > 0u) {
    bv = cVal[r];
    bi = cIdx[r];
  }
  for (var c = cP.c0; c < cP.c1; c++) {
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

// ---- The exact search (m = 1, no candidates), each pair once ----
//
// symTiles and symMerge are nearestNeighbor(x, x) (wgsl/neighbours.wgsl) with the pairs shared:
// the scores of tile (I, J) (row blocks of TB = 64) give I's rows their best over J's rows and,
// for J > I, J's rows their best over I's rows, so only the tiles J ≥ I are computed.
//
// Same answer, bit for bit. Every score is one sequential sum from +0 over l = 0..d-1 of
// x_i[l]·x_j[l], as in the one-sided kernel, and a·b = b·a exactly, so a score is the same whichever
// side reads it. (The one-sided kernel also adds 0·0 for l past d up to a multiple of 16; that
// changes nothing, since a sum that starts at +0 is never -0.) Each thread keeps the first of its
// strict maxima in index order (NaN and -inf never enter), and every merge after that is `beats`:
// value greater, or equal and index lower, a total order on the candidates, so the result, value
// bits included, does not depend on which thread saw which pair nor on the order of the merges.
//
// The column results have nowhere to stay (a tile's J rows get results from every I ≤ J), so the
// row blocks are taken in strips of `strip` blocks, a pair of dispatches per strip:
//   symTiles, workgroup (c, s): one row block I of the strip against J in
//     [max(I, c·chunk), (c+1)·chunk); its rows' best over that chunk stays in registers and goes
//     to rowPart [chunks][strip·64] at the end; per tile J > I the best of each of J's 64 rows over
//     I's rows goes to colPart [strip][k]. Every entry is written by one workgroup; the diagonal
//     tile writes no column results (its row results hold them).
//   symMerge, one invocation per row r ≥ s0·64: folds colPart[s][r] for the tiles (s0 + s, r's
//     block) that exist and, for rows of the strip, rowPart[c][r's place] for the chunks from r's
//     block on, into the running best in the output (empty at s0 = 0). Rows of the blocks before
//     s0 are final and not touched.
// A chunk bounds an invocation's loops (llvmpipe ends them after 65535 iterations in all; here
// about chunk · d, kept ≤ 16384 by the caller) and gives a GPU strip · ⌈k / 64 / chunk⌉ workgroups
// per dispatch; the strip bounds the partial buffers (src/backend/webgpu/neighbours.ts).
//
// A tile's arithmetic is laid out for llvmpipe, the software adapter: 64 invocations (8 SIMD
// coroutines of 8 lanes on one CPU thread), each the 8 × 8 scores of I's rows 8·tr + q and J's rows
// 8·tc + p, read straight from x without staging. llvmpipe loads memory lane by lane (an address
// the same in every lane is no cheaper), so the loads per multiply-add are what count: 16 per 64
// here, 8 per 16 in the one-sided kernel's 4 × 4 blocks from workgroup memory; the 64
// accumulators spill to the stack, which costs far less. The first version, nearestNeighbor's
// tiles line for line plus the column merges, was 1.82× faster than the one-sided kernel at
// K = 4096, D = 64 (0.356 s against 0.648 s). This one, on llvmpipe on the 2-core Intel Xeon host
// (2026-12-05, `node dist/bench/index.js koleo-self-webgpu`, medians of 3 alternating calls):
// K = 1024 0.011 s against 0.039 (3.5×), 4096 0.157 against 0.614 (3.9×), 16384 2.76 against 10.25
// (3.7×); K = 65536 43 s against 140 (3.3×, one call of each). It is the faster at every K measured
// (K = 64: even). On a hardware GPU it has not been measured, and the one-sided kernel (staged
// tiles) stays the choice there.

const TB: u32 = 64u;

// s0: the strip's first row block; strip: its blocks; chunk: column blocks per workgroup; chunks:
// ⌈⌈k / 64⌉ / chunk⌉.
struct Sym { k: u32, d: u32, excludeSelf: u32, negInf: f32, s0: u32, strip: u32, chunk: u32, chunks: u32 };

@group(0) @binding(0) var<storage, read> pX: array<f32>;
@group(0) @binding(1) var<storage, read_write> pColV: array<f32>; // [strip][k]
@group(0) @binding(2) var<storage, read_write> pColI: array<i32>;
@group(0) @binding(3) var<storage, read_write> pRowV: array<f32>; // [chunks][strip · 64]
@group(0) @binding(4) var<storage, read_write> pRowI: array<i32>;
@group(0) @binding(5) var<uniform> pP: Sym;

var<workgroup> pRedV: array<f32, 512>; // [TB][8]: per row (or column) of a tile, one entry per thread
var<workgroup> pRedI: array<i32, 512>;

fn beats(v: f32, id: i32, best: f32, bestId: i32) -> bool {
  return (id >= 0) && ((bestId < 0) || (v > best) || ((v == best) && (id < bestId)));
}

/** The best of the 8 entries pRed[u · 8 ..), in merge order. */
fn redBest(u: u32) -> vec2<u32> {
  var bv = pP.negInf;
  var bi = -1;
  for (var e = 0u; e < 8u; e++) {
    let v = pRedV[u * 8u + e];
    let id = pRedI[u * 8u + e];
    if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  }
  return vec2<u32>(bitcast<u32>(bv), bitcast<u32>(bi));
}

@compute @workgroup_size(64)
fn symTiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let k = pP.k;
  let d = pP.d;
  let nb = (k + TB - 1u) / TB;
  // The strip's row blocks in the order 0, n-1, 1, n-2, ...: llvmpipe hands each CPU thread one
  // contiguous range of workgroups, and a block's work falls with its index.
  let n = min(pP.strip, nb - pP.s0);
  var slot = wid.y / 2u;
  if ((wid.y & 1u) != 0u) { slot = n - 1u - wid.y / 2u; }
  let blockI = pP.s0 + slot;
  let c = pP.s0 / pP.chunk + wid.x;
  let j0 = max(blockI, c * pP.chunk);
  let j1 = min(nb, (c + 1u) * pP.chunk);
  if ((wid.y >= n) || (j0 >= j1)) { return; }
  let tr = t / 8u;
  let tc = t % 8u;
  let bm = blockI * TB;
  // Thread (tr, tc): I's rows bm + 8·tr + q and J's rows bn + 8·tc + p, q, p < 8. Rows past k
  // read row k-1 and are never chosen.
  var rowAt: array<u32, 8>;
  for (var q = 0u; q < 8u; q++) { rowAt[q] = min(bm + 8u * tr + q, k - 1u) * d; }
  var best: array<f32, 8>;
  var bestI: array<i32, 8>;
  for (var q = 0u; q < 8u; q++) {
    best[q] = pP.negInf;
    bestI[q] = -1;
  }
  for (var blockJ = j0; blockJ < j1; blockJ++) {
    let bn = blockJ * TB;
    var colAt: array<u32, 8>;
    for (var p = 0u; p < 8u; p++) { colAt[p] = min(bn + 8u * tc + p, k - 1u) * d; }
    var acc: array<array<f32, 8>, 8>;
    for (var l = 0u; l < d; l++) {
      var a: array<f32, 8>;
      var b: array<f32, 8>;
      for (var q = 0u; q < 8u; q++) { a[q] = pX[rowAt[q] + l]; }
      for (var p = 0u; p < 8u; p++) { b[p] = pX[colAt[p] + l]; }
      for (var q = 0u; q < 8u; q++) {
        for (var p = 0u; p < 8u; p++) { acc[q][p] = acc[q][p] + a[q] * b[p]; }
      }
    }
    for (var q = 0u; q < 8u; q++) {
      let i = bm + 8u * tr + q;
      for (var p = 0u; p < 8u; p++) {
        let j = bn + 8u * tc + p;
        let ok = (j < k) && !((pP.excludeSelf != 0u) && (j == i));
        if (ok && (acc[q][p] > best[q])) {
          best[q] = acc[q][p];
          bestI[q] = i32(j);
        }
      }
    }
    if (blockJ != blockI) {
      for (var p = 0u; p < 8u; p++) {
        var cb = pP.negInf;
        var ci = -1;
        for (var q = 0u; q < 8u; q++) {
          let i = bm + 8u * tr + q;
          if ((i < k) && (acc[q][p] > cb)) {
            cb = acc[q][p];
            ci = i32(i);
          }
        }
        pRedV[(8u * tc + p) * 8u + tr] = cb;
        pRedI[(8u * tc + p) * 8u + tr] = ci;
      }
      workgroupBarrier();
      if (bn + t < k) {
        let r = redBest(t);
        pColV[slot * k + bn + t] = bitcast<f32>(r.x);
        pColI[slot * k + bn + t] = bitcast<i32>(r.y);
      }
      workgroupBarrier();
    }
  }
  for (var q = 0u; q < 8u; q++) {
    pRedV[(8u * tr + q) * 8u + tc] = best[q];
    pRedI[(8u * tr + q) * 8u + tc] = bestI[q];
  }
  workgroupBarrier();
  if (bm + t < k) {
    let r = redBest(t);
    let at = c * pP.strip * TB + slot * TB + t;
    pRowV[at] = bitcast<f32>(r.x);
    pRowI[at] = bitcast<i32>(r.y);
  }
}

@group(0) @binding(0) var<storage, read> mColV: array<f32>;
@group(0) @binding(1) var<storage, read> mColI: array<i32>;
@group(0) @binding(2) var<storage, read> mRowV: array<f32>;
@group(0) @binding(3) var<storage, read> mRowI: array<i32>;
@group(0) @binding(4) var<storage, read_write> mVal: array<f32>;
@group(0) @binding(5) var<storage, read_write> mIdx: array<i32>;
@group(0) @binding(6) var<uniform> mP: Sym;

@compute @workgroup_size(64)
fn symMerge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = mP.k;
  let r = mP.s0 * TB + gid.y * nwg.x * 64u + gid.x;
  if (r >= k) { return; }
  let block = r / TB;
  var bv = mP.negInf;
  var bi = -1;
  if (mP.s0 > 0u) {
    bv = mVal[r];
    bi = mIdx[r];
  }
  // Tiles (s0 + s, block) for s0 + s < block: the column results.
  let ns = min(mP.strip, block - mP.s0);
  for (var s = 0u; s < ns; s++) {
    let v = mColV[s * k + r];
    let id = mColI[s * k + r];
    if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  }
  // A row of the strip: its block's row results, chunk by chunk from its own block on.
  if (block < mP.s0 + mP.strip) {
    let at = r - mP.s0 * TB;
    for (var c = block / mP.chunk; c < mP.chunks; c++) {
      let v = mRowV[c * mP.strip * TB + at];
      let id = mRowI[c * mP.strip * TB + at];
      if (beats(v, id, bv, bi)) { bv = v; bi = id; }
    }
  }
  mVal[r] = bv;
  mIdx[r] = bi;
}
