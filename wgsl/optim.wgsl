// Optimiser kernels over flat parameter buffers, one thread per element: the fused AdamW step
// (torch.optim.AdamW, single-tensor path) and the EMA update. Per-step scalars come from the host
// (src/backend/wasm/optim.ts adamwScalars), so this and assembly/optim.ts do the same arithmetic:
//   p ← p·decay;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − stepSize · m / (√v / bc2Sqrt + eps)

const WG: u32 = 256u;

fn flatIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * WG + gid.x;
}

struct AdamP { n: u32, decay: f32, beta1: f32, omb1: f32, beta2: f32, omb2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32 };

@group(0) @binding(0) var<storage, read_write> aParam: array<f32>;
@group(0) @binding(1) var<storage, read> aGrad: array<f32>;
@group(0) @binding(2) var<storage, read_write> aM: array<f32>;
@group(0) @binding(3) var<storage, read_write> aV: array<f32>;
@group(0) @binding(4) var<uniform> aP: AdamP;

@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flatIndex(gid, nwg);
  if (i >= aP.n) { return; }
  let g = aGrad[i];
  let m = aP.beta1 * aM[i] + aP.omb1 * g;
  let v = aP.beta2 * aV[i] + aP.omb2 * (g * g);
  let denom = sqrt(v) / aP.bc2Sqrt + aP.eps;
  let p = aParam[i] * aP.decay;
  aM[i] = m;
  aV[i] = v;
  aParam[i] = p - aP.stepSize * (m / denom);
}

struct EmaP { n: u32, momentum: f32, oneMinus: f32, _pad: u32 };

@group(0) @binding(0) var<storage, read_write> eTarget: array<f32>;
@group(0) @binding(1) var<storage, read> eSource: array<f32>;
@group(0) @binding(2) var<uniform> eP: EmaP;

@compute @workgroup_size(256)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flatIndex(gid, nwg);
  if (i < eP.n) { eTarget[i] = eP.momentum * eTarget[i] + eP.oneMinus * eSource[i]; }
}

// DINO's per-parameter gradient clip in one pass (assembly/optim.ts clipScale): each step the f32
// operation of the op chain it replaced (sqrt, affine, div, clamp with lo = −∞ from the host, mul),
// so the result is that chain's; one dispatch instead of six per parameter. Thread 0 writes the norm.
struct ClipP { n: u32, clip: f32, eps: f32, lo: f32, hi: f32, _p0: u32, _p1: u32, _p2: u32 };

@group(0) @binding(0) var<storage, read> cGrad: array<f32>;
@group(0) @binding(1) var<storage, read> cSs: array<f32>;
@group(0) @binding(2) var<storage, read_write> cOut: array<f32>;
@group(0) @binding(3) var<storage, read_write> cNorm: array<f32>;
@group(0) @binding(4) var<uniform> cP: ClipP;

@compute @workgroup_size(256)
fn clipScale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flatIndex(gid, nwg);
  let nrm = sqrt(cSs[0]);
  if (i == 0u) { cNorm[0] = nrm; }
  if (i >= cP.n) { return; }
  let coef = min(max(cP.clip / (nrm + cP.eps), cP.lo), cP.hi);
  cOut[i] = cGrad[i] * coef;
}
