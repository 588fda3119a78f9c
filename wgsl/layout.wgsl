// Layout kernels: strided copy, row gather and the deterministic row scatter-add. Copies move raw
// 32-bit words (array<u32>), so f32 and i32 storages go through bit for bit.

const WG: u32 = 256u;

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

struct Copy {
  shape: array<vec4<u32>, 2>,
  srcStrides: array<vec4<i32>, 2>,
  dstStrides: array<vec4<i32>, 2>,
  srcOffset: i32, dstOffset: i32, n: u32, _pad: u32,
};

// Only the last DIMS collapsed dims are walked, the outermost without a division (see DIMS in
// wgsl/elementwise.wgsl: llvmpipe divides lane by lane). vit_cpu batch 8 on llvmpipe, a copy of
// 8192 (2 dims) submitted on its own: 725 -> 407 us.
override DIMS: u32 = 6u;

@group(0) @binding(0) var<storage, read> cSrc: array<u32>;
@group(0) @binding(1) var<storage, read_write> cDst: array<u32>;
@group(0) @binding(2) var<uniform> cP: Copy;

@compute @workgroup_size(256)
fn copyStrided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flatIndex(gid, nwg);
  if (i >= cP.n) { return; }
  var r = i;
  var os = cP.srcOffset;
  var od = cP.dstOffset;
  for (var d = 5u; d > 6u - DIMS; d--) {
    let q = d / 4u;
    let w = d % 4u;
    let n = cP.shape[q][w];
    let c = i32(r % n);
    r = r / n;
    os += c * cP.srcStrides[q][w];
    od += c * cP.dstStrides[q][w];
  }
  let q = (6u - DIMS) / 4u;
  let w = (6u - DIMS) % 4u;
  os += i32(r) * cP.srcStrides[q][w];
  od += i32(r) * cP.dstStrides[q][w];
  cDst[u32(od)] = cSrc[u32(os)];
}

// scatterAddRows walks idx i0..i1-1 (src/backend/webgpu/loop-budget.ts: llvmpipe's loop cap) and
// zeroes its cells only in the range that starts at 0.
struct Rows { nIdx: u32, cols: u32, rows: u32, rowBlocks: u32, i0: u32, i1: u32, _p0: u32, _p1: u32 };

@group(0) @binding(0) var<storage, read> gX: array<u32>;
@group(0) @binding(1) var<storage, read> gIdx: array<i32>;
@group(0) @binding(2) var<storage, read_write> gOut: array<u32>;
@group(0) @binding(3) var<uniform> gP: Rows;

// One thread per output element; an index outside [0, rows) gives a zero row (the device cannot
// raise an error, and reading past the row would read another tensor's data).
@compute @workgroup_size(256)
fn gatherRows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flatIndex(gid, nwg);
  if (e >= gP.nIdx * gP.cols) { return; }
  let i = e / gP.cols;
  let c = e % gP.cols;
  let r = gIdx[i];
  var v = 0u;
  if ((r >= 0) && (u32(r) < gP.rows)) { v = gX[u32(r) * gP.cols + c]; }
  gOut[e] = v;
}

@group(0) @binding(0) var<storage, read> sDy: array<f32>;
@group(0) @binding(1) var<storage, read> sIdx: array<i32>;
@group(0) @binding(2) var<storage, read_write> sDx: array<f32>;
@group(0) @binding(3) var<uniform> sP: Rows;

// One thread per (row block, column): it zeroes its column of the block's rows, then walks idx in
// order adding matching dy entries, so every sum has a fixed order and no two threads share a
// cell. Indices outside [0, rows) add nowhere.
@compute @workgroup_size(256)
fn scatterAddRows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flatIndex(gid, nwg);
  if (t >= sP.rowBlocks * sP.cols) { return; }
  let rb = t / sP.cols;
  let c = t % sP.cols;
  let per = (sP.rows + sP.rowBlocks - 1u) / sP.rowBlocks;
  let r0 = rb * per;
  let r1 = min(r0 + per, sP.rows);
  if (sP.i0 == 0u) {
    for (var r = r0; r < r1; r++) { sDx[r * sP.cols + c] = 0.0; }
  }
  for (var i = sP.i0; i < sP.i1; i++) {
    let r = sIdx[i];
    if ((r >= i32(r0)) && (r < i32(r1))) {
      let o = u32(r) * sP.cols + c;
      sDx[o] = sDx[o] + sDy[i * sP.cols + c];
    }
  }
}
