// Optimiser kernels over flat parameter buffers: one fused AdamW step and the EMA update, each a
// single pass. Per-step scalars (bias corrections, decay factor) are computed by the host in f64,
// so the kernels only do the per-element arithmetic of torch.optim.AdamW (single-tensor path):
//   p ← p·decay;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − stepSize · m / (√v / bc2Sqrt + eps)
// with decay = 1 − lr·wd, stepSize = lr / (1 − β1^t), bc2Sqrt = √(1 − β2^t); 1−β1 and 1−β2 come
// from the host too, so both backends round them identically.
// madd is deliberately not used: the fused form would make the relaxed and plain builds disagree
// in the last bit, and these passes are memory-bound anyway.
import { ldf, stf } from './common';

export function adamw(param: usize, grad: usize, m: usize, v: usize, decay: f32, beta1: f32, omb1: f32,
  beta2: f32, omb2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32, start: i32, end: i32): void {
  const vDecay = f32x4.splat(decay), vB1 = f32x4.splat(beta1), vB2 = f32x4.splat(beta2);
  const vOmb1 = f32x4.splat(omb1), vOmb2 = f32x4.splat(omb2);
  const vStep = f32x4.splat(stepSize), vBc2 = f32x4.splat(bc2Sqrt), vEps = f32x4.splat(eps);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(grad + o);
    const mi = f32x4.add(f32x4.mul(vB1, v128.load(m + o)), f32x4.mul(vOmb1, g));
    const vi = f32x4.add(f32x4.mul(vB2, v128.load(v + o)), f32x4.mul(vOmb2, f32x4.mul(g, g)));
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vBc2), vEps);
    const p = f32x4.mul(v128.load(param + o), vDecay);
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    v128.store(param + o, f32x4.sub(p, f32x4.mul(vStep, f32x4.div(mi, denom))));
  }
  for (; i < end; i++) {
    const g = ldf(grad, i);
    const mi = beta1 * ldf(m, i) + omb1 * g;
    const vi = beta2 * ldf(v, i) + omb2 * (g * g);
    const denom = Mathf.sqrt(vi) / bc2Sqrt + eps;
    const p = ldf(param, i) * decay;
    stf(m, i, mi);
    stf(v, i, vi);
    stf(param, i, p - stepSize * (mi / denom));
  }
}

/** target ← momentum·target + (1 − momentum)·source; oneMinus is computed by the host in f64. */
export function ema(target: usize, source: usize, momentum: f32, oneMinus: f32, start: i32, end: i32): void {
  const vm = f32x4.splat(momentum), vo = f32x4.splat(oneMinus);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(target + o, f32x4.add(f32x4.mul(vm, v128.load(target + o)), f32x4.mul(vo, v128.load(source + o))));
  }
  for (; i < end; i++) stf(target, i, momentum * ldf(target, i) + oneMinus * ldf(source, i));
}

/**
 * DINO's per-parameter gradient clip in one pass (src/tensor/ops/optim.ts clipGradients): norm =
 * √ss[0], coef = clamp(clip / (norm + eps), lo, hi), out = grad·coef, with lo = −∞ and hi = 1
 * from the host. Each step is the f32 operation of the op chain it replaced (unary sqrt, affine,
 * the scalar div, clamp, the broadcast mul), in the same order, so the clipped gradients are
 * bit-identical to it; that chain was six kernel calls per parameter, this is one. Every thread
 * derives coef itself from ss (a few flops), and the one holding element 0 writes the norm.
 */
export function clipScale(grad: usize, ss: usize, out: usize, norm: usize, clip: f32, eps: f32, lo: f32, hi: f32,
  start: i32, end: i32): void {
  const nrm = Mathf.sqrt(load<f32>(ss));
  // affine's 1·norm + eps is norm + eps exactly (a product by 1 rounds to itself)
  const coef = Mathf.min(Mathf.max(clip / (nrm + eps), lo), hi);
  if (start == 0) store<f32>(norm, nrm);
  const vc = f32x4.splat(coef);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(grad + o), vc));
  }
  for (; i < end; i++) stf(out, i, ldf(grad, i) * coef);
}
