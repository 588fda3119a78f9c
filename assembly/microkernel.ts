// The register-tiled micro-kernel and packing helper shared by the GEMM-shaped kernels (matmul and
// the implicit-GEMM convolutions in convgemm.ts), so both run the one tuned inner loop.
// Why 4×8: eight f32x4 accumulators leave V8's register allocator room on x64; 5×8 and 6×8 made it
// spill inside the k loop and ran at half the speed on this machine (and unrolling k did the same).
// Rechecked for issue 15 on the 2-core AMD EPYC (family 26, Zen 5), Node 20, relaxed build, 1
// thread, with twelve accumulators reading the same MR=4/NR=8 packed panels (so the k order and
// every number stay as they are): 4×12 (three B vectors live) ran at 9.7 GFLOP/s, 4×12 reloading
// the A splats per column group at 24, 6×8 (rows across two packed panels) at 24, against 47-50
// for this 4×8 on vit_tiny's shapes (m = 1600, n and k in 192/576/768, all transposes). This
// kernel alone over L1-resident panels runs at 49 GFLOP/s in both builds, 88% of the relaxed
// build's 12-chain peak (55.7 that day; 8 chains: 52.7), and the full matmul is within a few
// percent of it on every shape of the step: no shape or transpose class is slow, the cap is this
// kernel, and V8 spills any wider register tile.
import { madd } from './common';

export const MR = 4;
export const NR = 8;

/** Micro-kernel init modes: zero, the current c, or a bias row. */
export const ZERO = 0, LOAD = 1, BIAS = 2;

// @ts-ignore: decorator
@inline export function addr(p: usize, i: i32): usize { return p + (<usize>i << 2); }

/** Stores the transpose of the 4×4 block with rows r0..r3 as four vectors `stride` bytes apart
 *  (MR = 4 and NR = 2·4 are why packing can go through it). */
// @ts-ignore: decorator
@inline export function transpose4(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(dst + stride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/**
 * The MR×8 micro-kernel: c[0:MR, 0:8] (row stride ldc floats) = init + Σ_kk pa[kk][:]ᵀ·pb[kk][:].
 * init: ZERO, LOAD (the current c) or BIAS (bias[0:8] on every row).
 */
// @ts-ignore: decorator
@inline export function micro(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mode: i32, bias: usize): void {
  const ld = <usize>ldc << 2;
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128;
  if (mode == LOAD) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + ld); c11 = v128.load(c + ld, 16);
    c20 = v128.load(c + 2 * ld); c21 = v128.load(c + 2 * ld, 16);
    c30 = v128.load(c + 3 * ld); c31 = v128.load(c + 3 * ld, 16);
  } else if (mode == BIAS) {
    c00 = v128.load(bias); c01 = v128.load(bias, 16);
    c10 = c00; c11 = c01; c20 = c00; c21 = c01; c30 = c00; c31 = c01;
  } else {
    c00 = f32x4.splat(0); c01 = c00;
    c10 = c00; c11 = c00; c20 = c00; c21 = c00; c30 = c00; c31 = c00;
  }
  for (let kk = 0; kk < kc; kk++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    pa += MR << 2;
    pb += NR << 2;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ld, c10); v128.store(c + ld, c11, 16);
  v128.store(c + 2 * ld, c20); v128.store(c + 2 * ld, c21, 16);
  v128.store(c + 3 * ld, c30); v128.store(c + 3 * ld, c31, 16);
}

