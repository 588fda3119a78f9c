// Multi-head self-attention per (image, head), reading q, k, v in place from the qkv projection
// [batch, tokens, 3, heads, dh] and writing out [batch, tokens, heads, dh] (see assembly/attention.ts
// for why one kernel). One invocation per query row (unit = image·heads + head, row = unit·tokens
// + i) for the forward pass and dq; one per key row for dk and dv, which sum over the queries, so
// every sum has one writer and a fixed order (no atomics, deterministic). The backward pass keeps
// dS = P ⊙ (dP − rowsum(P ⊙ dP)) in a temporary [batch, heads, tokens, tokens] between its two passes.

const WG: u32 = 64u;
const LOWEST: f32 = -3.402823466e+38;

struct P { tokens: u32, heads: u32, dh: u32, rows: u32, scale: f32, _a: u32, _b: u32, _c: u32 };

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

/** First element of the dh-vector of token t, part (0 q, 1 k, 2 v), head h of image b in qkv. */
fn qkvAt(p: P, b: u32, t: u32, part: u32, h: u32) -> u32 {
  return ((b * p.tokens + t) * 3u + part) * p.heads * p.dh + h * p.dh;
}

/** First element of the dh-vector of token t, head h of image b in [batch, tokens, heads, dh]. */
fn outAt(p: P, b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.tokens + t) * p.heads + h) * p.dh;
}

// ---- forward: scores, softmax into probs, then probs·v ------------------------------------------

@group(0) @binding(0) var<storage, read> fQkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> fOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> fProbs: array<f32>;
@group(0) @binding(3) var<uniform> fP: P;

@compute @workgroup_size(WG)
fn attention(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flatIndex(gid, nwg);
  let p = fP;
  if (r >= p.rows) { return; }
  let u = r / p.tokens;
  let i = r % p.tokens;
  let b = u / p.heads;
  let h = u % p.heads;
  let q = qkvAt(p, b, i, 0u, h);
  let row = r * p.tokens;
  var m = LOWEST;
  for (var j = 0u; j < p.tokens; j++) {
    let k = qkvAt(p, b, j, 1u, h);
    var s = 0.0;
    for (var c = 0u; c < p.dh; c++) { s += fQkv[q + c] * fQkv[k + c]; }
    s = s * p.scale;
    fProbs[row + j] = s;
    m = max(m, s);
  }
  var sum = 0.0;
  for (var j = 0u; j < p.tokens; j++) {
    let e = exp(fProbs[row + j] - m);
    fProbs[row + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j < p.tokens; j++) { fProbs[row + j] = fProbs[row + j] * inv; }
  let o = outAt(p, b, i, h);
  for (var c = 0u; c < p.dh; c++) {
    var acc = 0.0;
    for (var j = 0u; j < p.tokens; j++) { acc += fProbs[row + j] * fQkv[qkvAt(p, b, j, 2u, h) + c]; }
    fOut[o + c] = acc;
  }
}

// ---- backward, per query row: dS into the temporary, dq --------------------------------------

@group(0) @binding(0) var<storage, read> gQkv: array<f32>;
@group(0) @binding(1) var<storage, read> gProbs: array<f32>;
@group(0) @binding(2) var<storage, read> gDout: array<f32>;
@group(0) @binding(3) var<storage, read_write> gDs: array<f32>;
@group(0) @binding(4) var<storage, read_write> gDqkv: array<f32>;
@group(0) @binding(5) var<uniform> gP: P;

@compute @workgroup_size(WG)
fn attentionGradQ(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flatIndex(gid, nwg);
  let p = gP;
  if (r >= p.rows) { return; }
  let u = r / p.tokens;
  let i = r % p.tokens;
  let b = u / p.heads;
  let h = u % p.heads;
  let row = r * p.tokens;
  let dO = outAt(p, b, i, h);
  var dot = 0.0;
  for (var j = 0u; j < p.tokens; j++) {
    let v = qkvAt(p, b, j, 2u, h);
    var dp = 0.0;
    for (var c = 0u; c < p.dh; c++) { dp += gDout[dO + c] * gQkv[v + c]; }
    gDs[row + j] = dp;
    dot += gProbs[row + j] * dp;
  }
  for (var j = 0u; j < p.tokens; j++) { gDs[row + j] = gProbs[row + j] * (gDs[row + j] - dot); }
  let dq = qkvAt(p, b, i, 0u, h);
  for (var c = 0u; c < p.dh; c++) {
    var acc = 0.0;
    for (var j = 0u; j < p.tokens; j++) { acc += gDs[row + j] * gQkv[qkvAt(p, b, j, 1u, h) + c]; }
    gDqkv[dq + c] = p.scale * acc;
  }
}

// ---- backward, per key row: dk and dv ----------------------------------------------------------

@group(0) @binding(0) var<storage, read> kQkv: array<f32>;
@group(0) @binding(1) var<storage, read> kProbs: array<f32>;
@group(0) @binding(2) var<storage, read> kDout: array<f32>;
@group(0) @binding(3) var<storage, read> kDs: array<f32>;
@group(0) @binding(4) var<storage, read_write> kDqkv: array<f32>;
@group(0) @binding(5) var<uniform> kP: P;

@compute @workgroup_size(WG)
fn attentionGradKV(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = flatIndex(gid, nwg);
  let p = kP;
  if (r >= p.rows) { return; }
  let u = r / p.tokens;
  let j = r % p.tokens;
  let b = u / p.heads;
  let h = u % p.heads;
  let dk = qkvAt(p, b, j, 1u, h);
  let dv = qkvAt(p, b, j, 2u, h);
  for (var c = 0u; c < p.dh; c++) {
    var accK = 0.0;
    var accV = 0.0;
    for (var i = 0u; i < p.tokens; i++) {
      let at = (u * p.tokens + i) * p.tokens + j;
      accK += kDs[at] * kQkv[qkvAt(p, b, i, 0u, h) + c];
      accV += kProbs[at] * kDout[outAt(p, b, i, h) + c];
    }
    kDqkv[dk + c] = p.scale * accK;
    kDqkv[dv + c] = accV;
  }
}
