// The multiply-add throughput of one core as this engine runs wasm SIMD, with no memory traffic:
// twelve independent accumulator chains (enough to cover the FMA latency, few enough for x64's 16
// xmm registers; fourteen spilled). bench/matmul.ts reports the kernels against it, so a ratio to
// a peer can be read against what the hardware allows at all.
import { madd } from './common';

/** Runs `iters` iterations of 12 vector multiply-adds (96 flops each); the result defeats dead-code removal. */
export function peakMadd(iters: i32): f32 {
  const b = f32x4.splat(0.99999994), c = f32x4.splat(1e-7);
  let a0 = f32x4.splat(0.1), a1 = f32x4.splat(0.2), a2 = f32x4.splat(0.3), a3 = f32x4.splat(0.4);
  let a4 = f32x4.splat(0.5), a5 = f32x4.splat(0.6), a6 = f32x4.splat(0.7), a7 = f32x4.splat(0.8);
  let a8 = f32x4.splat(0.9), a9 = f32x4.splat(1.0), a10 = f32x4.splat(1.1), a11 = f32x4.splat(1.2);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, b, c); a1 = madd(a1, b, c); a2 = madd(a2, b, c); a3 = madd(a3, b, c);
    a4 = madd(a4, b, c); a5 = madd(a5, b, c); a6 = madd(a6, b, c); a7 = madd(a7, b, c);
    a8 = madd(a8, b, c); a9 = madd(a9, b, c); a10 = madd(a10, b, c); a11 = madd(a11, b, c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return f32x4.extract_lane(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))), 0);
}
