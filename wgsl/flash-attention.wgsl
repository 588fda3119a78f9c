// Flash-style multi-head self-attention (the WebGPU backend's attention for head sizes up to 128;
// wgsl/attention.wgsl, the per-row kernel that writes the whole softmax, stays as the fallback past
// that and as the benchmark's baseline). Same layouts: q, k, v read in place from the qkv projection
// [batch, tokens, 3, heads, dh], out and dout [batch, tokens, heads, dh].
//
// Blocks. A workgroup of WG invocations owns one block of WG rows of one (image, head) unit, one
// invocation per row: query rows in the forward pass and in the dq pass, key rows in the dk/dv pass.
// WG is the power of two ≥ tokens, from 8 to 64, so that short sequences (vit_cpu's 10-token local
// crops) do not leave most of a 64-wide workgroup idle. The other side of the product is streamed
// through workgroup memory in tiles of BT rows: K and V tiles (forward, dq), Q and dO tiles plus
// their rows' statistics (dk/dv). Each staged tile array holds STAGE4 = 480 vec4s (1920 floats), so
// BT = min(128, ⌊480 / DH4⌋): 120 rows at dh = 16, 80 at 24, 30 at 64, 15 at 128. The dk/dv pass
// stages two such arrays and two [128] statistics arrays: 2·1920·4 + 2·128·4 = 16384 bytes, exactly
// WebGPU's default maxComputeWorkgroupStorageSize; the forward and dq passes use 15360. Any token
// count works: the last tile and the last block are partial (rows past the end load nothing and
// write nothing, but still reach every barrier).
//
// Registers. Each invocation keeps its own row's vectors (q and the output accumulator; q, dO and dq;
// k, v, dk and dv) in private arrays of MAXDH / 4 = 32 vec4s; DH is a pipeline constant, so every loop
// over the head has a constant trip count the compiler can unroll. Rows are handled as DH4 = ⌈DH / 4⌉
// vec4s, zero-padded past DH (in registers and in the staged tiles), so any head size works.
//
// llvmpipe. Mesa's software rasteriser stops every loop of an invocation, silently, once the loops
// of the shader together have run 65535 iterations (LP_MAX_TGSI_LOOP_ITERATIONS, shared by all loops;
// hardware drivers have no such limit). A first scalar version of this kernel ran about
// 2 · tokens · dh iterations per row and was cut short from 240 tokens at dh = 128; in vec4s, with
// the head loops' constant trip counts, forward and backward are still exact at 1100 tokens and
// dh = 128. The per-row kernel of wgsl/attention.wgsl is cut short from about 250 tokens at dh = 130.
//
// Forward. Online softmax: per K/V tile the row computes its BT scores, the tile's new running max
// m', rescales its running sum l and accumulator by exp(m − m') once, then adds exp(s − m')·v. At
// the end out = acc / l, and the only thing saved for the backward pass is the row's log-sum-exp
// lse = m + log l, [batch, heads, tokens] (the probs kernel saved [batch, heads, tokens, tokens]).
//
// Backward (FlashAttention-2's split, without atomics). P_ij = exp(scale·q_i·k_j − lse_i) is
// recomputed from Q, K and lse; D_i = rowsum(dO_i ⊙ O_i) = Σ_j P_ij·dP_ij; dS_ij = P_ij·(dP_ij − D_i).
//   flashGradQ, per query block over K/V tiles: D_i (written to a [batch, heads, tokens] temporary),
//     dq_i = scale·Σ_j dS_ij·k_j.
//   flashGradKV, per key block over Q/dO tiles (after flashGradQ, for D): dv_j = Σ_i P_ij·dO_i and
//     dk_j = scale·Σ_i dS_ij·q_i.
// Every output element is summed by one invocation, over the other side's rows in index order, so the
// result depends only on the shapes (deterministic; no float atomics).

override DH: u32 = 64u; // head size, 1..MAXDH
override BT: u32 = 30u; // rows per staged tile: min(MAXBT, STAGE4 / DH4)
override WG: u32 = 64u; // invocations per workgroup = rows per block: 8 to 64

override DH4: u32 = (DH + 3u) / 4u; // vec4s per row
const MAXDH4: u32 = 32u;
const MAXBT: u32 = 128u;
const STAGE4: u32 = 480u;
const LOWEST: f32 = -3.402823466e+38;

// tokens, heads; blocks = ⌈tokens / WG⌉ per unit; groups = units · blocks (the workgroups that work).
struct F { tokens: u32, heads: u32, blocks: u32, groups: u32, scale: f32, _a: u32, _b: u32, _c: u32 };

/** First element of the dh-vector of token t, part (0 q, 1 k, 2 v), head h of image b in qkv. */
fn qkvAt(p: F, b: u32, t: u32, part: u32, h: u32) -> u32 {
  return ((b * p.tokens + t) * 3u + part) * p.heads * DH + h * DH;
}

/** First element of the dh-vector of token t, head h of image b in [batch, tokens, heads, dh]. */
fn outAt(p: F, b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.tokens + t) * p.heads + h) * DH;
}

/** Offsets of the 4 elements of vec4 c4 within a row, clamped into the row (the padding reads its last element). */
fn lanes(c4: u32) -> vec4<u32> {
  return min(vec4<u32>(4u * c4) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(DH - 1u));
}

/** Which lanes of vec4 c4 lie within the row. */
fn inRow(c4: u32) -> vec4<bool> {
  return vec4<u32>(4u * c4) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(DH);
}

/** Zeroes the padding lanes of a vec4 read with lanes(c4). */
fn pad(v: vec4<f32>, c4: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, inRow(c4));
}

var<workgroup> tileA: array<vec4<f32>, STAGE4>; // K (forward, dq) or Q (dk/dv) rows of the tile, [BT, DH4]
var<workgroup> tileB: array<vec4<f32>, STAGE4>; // V (forward, dq) or dO (dk/dv) rows of the tile
var<workgroup> tileL: array<f32, MAXBT>; // lse of the tile's query rows (dk/dv)
var<workgroup> tileD: array<f32, MAXBT>; // D of the tile's query rows (dk/dv)

// ---- forward -----------------------------------------------------------------------------------

@group(0) @binding(0) var<storage, read> fQkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> fLse: array<f32>;
@group(0) @binding(3) var<uniform> fP: F;

fn fRead(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(fQkv[l.x], fQkv[l.y], fQkv[l.z], fQkv[l.w]), c4);
}

@compute @workgroup_size(WG)
fn flashForward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = fP;
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.groups) { return; }
  let u = g / p.blocks;
  let b = u / p.heads;
  let h = u % p.heads;
  let i = (g % p.blocks) * WG + lid;
  let valid = i < p.tokens;
  var q: array<vec4<f32>, MAXDH4>;
  var acc: array<vec4<f32>, MAXDH4>;
  var s: array<f32, MAXBT>;
  if (valid) {
    let at = qkvAt(p, b, i, 0u, h);
    for (var c = 0u; c < DH4; c++) { q[c] = fRead(at, c); acc[c] = vec4<f32>(0.0); }
  }
  var m = LOWEST;
  var l = 0.0;
  for (var t0 = 0u; t0 < p.tokens; t0 += BT) {
    let n = min(BT, p.tokens - t0);
    workgroupBarrier(); // the previous tile is no longer read
    for (var e = lid; e < n * DH4; e += WG) {
      let r = e / DH4;
      let c = e % DH4;
      tileA[e] = fRead(qkvAt(p, b, t0 + r, 1u, h), c);
      tileB[e] = fRead(qkvAt(p, b, t0 + r, 2u, h), c);
    }
    workgroupBarrier();
    if (valid) {
      var mt = m;
      for (var j = 0u; j < n; j++) {
        var d = 0.0;
        for (var c = 0u; c < DH4; c++) { d += dot(q[c], tileA[j * DH4 + c]); }
        s[j] = d * p.scale;
        mt = max(mt, s[j]);
      }
      let corr = exp(m - mt); // 0 on the first tile (m = LOWEST), 1 when the max did not move
      l *= corr;
      for (var c = 0u; c < DH4; c++) { acc[c] *= corr; }
      m = mt;
      for (var j = 0u; j < n; j++) {
        let e = exp(s[j] - m);
        l += e;
        for (var c = 0u; c < DH4; c++) { acc[c] += e * tileB[j * DH4 + c]; }
      }
    }
  }
  if (valid) {
    let inv = 1.0 / l;
    let o = outAt(p, b, i, h);
    for (var c = 0u; c < DH4; c++) {
      let v = acc[c] * inv;
      for (var k = 0u; k < 4u; k++) {
        if (4u * c + k < DH) { fOut[o + 4u * c + k] = v[k]; }
      }
    }
    fLse[u * p.tokens + i] = m + log(l);
  }
}

// ---- backward, per query block: D and dq --------------------------------------------------------

@group(0) @binding(0) var<storage, read> qQkv: array<f32>;
@group(0) @binding(1) var<storage, read> qOut: array<f32>;
@group(0) @binding(2) var<storage, read> qDout: array<f32>;
@group(0) @binding(3) var<storage, read> qLse: array<f32>;
@group(0) @binding(4) var<storage, read_write> qD: array<f32>;
@group(0) @binding(5) var<storage, read_write> qDqkv: array<f32>;
@group(0) @binding(6) var<uniform> qP: F;

fn qRead(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(qQkv[l.x], qQkv[l.y], qQkv[l.z], qQkv[l.w]), c4);
}

fn qReadOut(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(qOut[l.x], qOut[l.y], qOut[l.z], qOut[l.w]), c4);
}

fn qReadDout(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(qDout[l.x], qDout[l.y], qDout[l.z], qDout[l.w]), c4);
}

@compute @workgroup_size(WG)
fn flashGradQ(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = qP;
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.groups) { return; }
  let u = g / p.blocks;
  let b = u / p.heads;
  let h = u % p.heads;
  let i = (g % p.blocks) * WG + lid;
  let valid = i < p.tokens;
  var q: array<vec4<f32>, MAXDH4>;
  var dO: array<vec4<f32>, MAXDH4>;
  var dq: array<vec4<f32>, MAXDH4>;
  var lse = 0.0;
  var dI = 0.0;
  if (valid) {
    let at = qkvAt(p, b, i, 0u, h);
    let o = outAt(p, b, i, h);
    for (var c = 0u; c < DH4; c++) {
      q[c] = qRead(at, c);
      dO[c] = qReadDout(o, c);
      dq[c] = vec4<f32>(0.0);
      dI += dot(dO[c], qReadOut(o, c));
    }
    lse = qLse[u * p.tokens + i];
    qD[u * p.tokens + i] = dI;
  }
  for (var t0 = 0u; t0 < p.tokens; t0 += BT) {
    let n = min(BT, p.tokens - t0);
    workgroupBarrier();
    for (var e = lid; e < n * DH4; e += WG) {
      let r = e / DH4;
      let c = e % DH4;
      tileA[e] = qRead(qkvAt(p, b, t0 + r, 1u, h), c);
      tileB[e] = qRead(qkvAt(p, b, t0 + r, 2u, h), c);
    }
    workgroupBarrier();
    if (valid) {
      for (var j = 0u; j < n; j++) {
        var d = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < DH4; c++) {
          d += dot(q[c], tileA[j * DH4 + c]);
          dp += dot(dO[c], tileB[j * DH4 + c]);
        }
        let ds = exp(d * p.scale - lse) * (dp - dI);
        for (var c = 0u; c < DH4; c++) { dq[c] += ds * tileA[j * DH4 + c]; }
      }
    }
  }
  if (valid) {
    let at = qkvAt(p, b, i, 0u, h);
    for (var c = 0u; c < DH4; c++) {
      let v = p.scale * dq[c];
      for (var k = 0u; k < 4u; k++) {
        if (4u * c + k < DH) { qDqkv[at + 4u * c + k] = v[k]; }
      }
    }
  }
}

// ---- backward, per key block: dk and dv ---------------------------------------------------------

@group(0) @binding(0) var<storage, read> kQkv: array<f32>;
@group(0) @binding(1) var<storage, read> kDout: array<f32>;
@group(0) @binding(2) var<storage, read> kLse: array<f32>;
@group(0) @binding(3) var<storage, read> kD: array<f32>;
@group(0) @binding(4) var<storage, read_write> kDqkv: array<f32>;
@group(0) @binding(5) var<uniform> kP: F;

fn kRead(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(kQkv[l.x], kQkv[l.y], kQkv[l.z], kQkv[l.w]), c4);
}

fn kReadDout(at: u32, c4: u32) -> vec4<f32> {
  let l = vec4<u32>(at) + lanes(c4);
  return pad(vec4<f32>(kDout[l.x], kDout[l.y], kDout[l.z], kDout[l.w]), c4);
}

@compute @workgroup_size(WG)
fn flashGradKV(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let p = kP;
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.groups) { return; }
  let u = g / p.blocks;
  let b = u / p.heads;
  let h = u % p.heads;
  let j = (g % p.blocks) * WG + lid;
  let valid = j < p.tokens;
  var k: array<vec4<f32>, MAXDH4>;
  var v: array<vec4<f32>, MAXDH4>;
  var dk: array<vec4<f32>, MAXDH4>;
  var dv: array<vec4<f32>, MAXDH4>;
  if (valid) {
    let ak = qkvAt(p, b, j, 1u, h);
    let av = qkvAt(p, b, j, 2u, h);
    for (var c = 0u; c < DH4; c++) {
      k[c] = kRead(ak, c);
      v[c] = kRead(av, c);
      dk[c] = vec4<f32>(0.0);
      dv[c] = vec4<f32>(0.0);
    }
  }
  for (var t0 = 0u; t0 < p.tokens; t0 += BT) {
    let n = min(BT, p.tokens - t0);
    workgroupBarrier();
    for (var e = lid; e < n * DH4; e += WG) {
      let r = e / DH4;
      let c = e % DH4;
      tileA[e] = kRead(qkvAt(p, b, t0 + r, 0u, h), c);
      tileB[e] = kReadDout(outAt(p, b, t0 + r, h), c);
    }
    for (var r = lid; r < n; r += WG) {
      tileL[r] = kLse[u * p.tokens + t0 + r];
      tileD[r] = kD[u * p.tokens + t0 + r];
    }
    workgroupBarrier();
    if (valid) {
      for (var i = 0u; i < n; i++) {
        var d = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < DH4; c++) {
          d += dot(tileA[i * DH4 + c], k[c]);
          dp += dot(tileB[i * DH4 + c], v[c]);
        }
        let pij = exp(d * p.scale - tileL[i]);
        let ds = pij * (dp - tileD[i]);
        for (var c = 0u; c < DH4; c++) {
          dv[c] += pij * tileB[i * DH4 + c];
          dk[c] += ds * tileA[i * DH4 + c];
        }
      }
    }
  }
  if (valid) {
    let ak = qkvAt(p, b, j, 1u, h);
    let av = qkvAt(p, b, j, 2u, h);
    for (var c = 0u; c < DH4; c++) {
      let gk = p.scale * dk[c];
      let gv = dv[c];
      for (var e = 0u; e < 4u; e++) {
        if (4u * c + e < DH) {
          kDqkv[ak + 4u * c + e] = gk[e];
          kDqkv[av + 4u * c + e] = gv[e];
        }
      }
    }
  }
}
