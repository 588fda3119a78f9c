// Counter-based random numbers: Philox-4x32-10 (Salmon et al., SC'11). Stream position j uses word
// j % 4 of the block for counter floor(j / 4) under key (seedLo, seedHi), so element j is the same
// number on every backend and for every thread split. Uniforms and Bernoulli draws use integer ops
// and exact f32 conversions only (bit-identical to wgsl/random.wgsl); normals use Box-Muller with
// the polynomial log/sin/cos below instead of library calls, so every backend evaluates the same
// f32 arithmetic (WGSL only bounds its built-in sin/cos to 2^-11 absolute error).
import { stf } from './common';

const M0: u64 = 0xD2511F53;
const M1: u64 = 0xCD9E8D57;
const W0: u32 = 0x9E3779B9;
const W1: u32 = 0xBB67AE85;
const TWO_PI_2M24: f32 = 3.7450702e-7; // 2π / 2^24
const LN2: f32 = 0.6931471805599453;

// Philox output of the current block (wasm globals are per instance: each worker has its own).
let x0: u32 = 0, x1: u32 = 0, x2: u32 = 0, x3: u32 = 0;

function philox(c0: u32, c1: u32, k0: u32, k1: u32): void {
  let c2: u32 = 0, c3: u32 = 0;
  for (let r = 0; r < 10; r++) {
    const p0 = M0 * <u64>c0;
    const p1 = M1 * <u64>c2;
    const n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    const n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  x0 = c0; x1 = c1; x2 = c2; x3 = c3;
}

// @ts-ignore: decorator
@inline function word(w: i32): u32 {
  return w == 0 ? x0 : w == 1 ? x1 : w == 2 ? x2 : x3;
}

/** The top 24 bits as k·2^-24 in [0, 1) (exact in f32). */
// @ts-ignore: decorator
@inline function unit(v: u32): f32 {
  return <f32>(v >> 8) * 5.9604645e-8;
}

/** ln u for u in (0, 1] to ~1e-7 relative: u = m·2^e, m in (√½, √2], ln m = 2·atanh((m−1)/(m+1)). */
function lnUnit(u: f32): f32 {
  const bits = reinterpret<u32>(u);
  let e = <i32>(bits >> 23) - 127;
  let m = reinterpret<f32>((bits & 0x7fffff) | 0x3f800000);
  if (m > 1.4142135) {
    m = m * 0.5;
    e += 1;
  }
  const s: f32 = (m - 1.0) / (m + 1.0);
  const s2 = s * s;
  const series: f32 = 1.0 + s2 * (0.33333334 + s2 * (0.2 + s2 * (0.14285715 + s2 * 0.11111111)));
  return <f32>e * LN2 + 2.0 * s * series;
}

/**
 * Normal for lane `odd` of the Box-Muller pair (wu, wa): radius from u = (top24(wu) + 1)·2^-24 in
 * (0, 1] (no log 0), angle 2π·top24(wa)/2^24 reduced exactly with integer ops to [0, π/4].
 */
function normalPair(wu: u32, wa: u32, odd: bool): f32 {
  const u = <f32>((wu >> 8) + 1) * 5.9604645e-8;
  const rad = Mathf.sqrt(-2.0 * lnUnit(u));
  const j = wa >> 8;
  const q = j >> 22;
  const g = j & 0x3fffff;
  const flip = g > 0x200000;
  const h: u32 = flip ? <u32>0x400000 - g : g;
  const a = <f32>h * TWO_PI_2M24;
  const a2 = a * a;
  const sa: f32 = a * (1.0 + a2 * (-0.16666667 + a2 * (0.008333333 + a2 * (-0.0001984127 + a2 * 2.7557319e-6))));
  const ca: f32 = 1.0 + a2 * (-0.5 + a2 * (0.041666668 + a2 * (-0.0013888889 + a2 * (2.4801588e-5 - a2 * 2.7557319e-7))));
  const sp = flip ? ca : sa; // sin and cos of the angle within the quadrant
  const cp = flip ? sa : ca;
  let c: f32, s: f32;
  if (q == 0) { c = cp; s = sp; }
  else if (q == 1) { c = -sp; s = cp; }
  else if (q == 2) { c = -cp; s = -sp; }
  else { c = sp; s = -cp; }
  return rad * (odd ? s : c);
}

/**
 * One row per Philox block. Block t has counter (baseLo, baseHi) + t and covers outputs
 * 4t − phase .. 4t − phase + 3 (those in [0, n) are written). dist: 0 uniform [a, b), 1 normal
 * (mean a, std b), 2 bernoulli (1 with probability a).
 */
export function random(out: usize, dist: i32, n: i32, k0: u32, k1: u32, baseLo: u32, baseHi: u32, phase: i32,
  a: f32, b: f32, start: i32, end: i32): void {
  const width = b - a;
  for (let t = start; t < end; t++) {
    const lo = baseLo + <u32>t;
    philox(lo, baseHi + (lo < baseLo ? 1 : 0), k0, k1);
    for (let w = 0; w < 4; w++) {
      const i = t * 4 + w - phase;
      if (i < 0 || i >= n) continue;
      let v: f32;
      if (dist == 0) {
        v = a + width * unit(word(w));
        if (v >= b && b > a) v = below(b);
      } else if (dist == 1) {
        v = a + b * normalPair(word(w & 2), word(w | 1), (w & 1) != 0);
      } else {
        v = unit(word(w)) < a ? 1 : 0;
      }
      stf(out, i, v);
    }
  }
}

/** The largest f32 below b (rounding can carry a + (b − a)·u up to b itself). */
function below(b: f32): f32 {
  const bits = reinterpret<i32>(b);
  if (b > 0) return reinterpret<f32>(bits - 1);
  if (b == 0) return -1.4e-45;
  return reinterpret<f32>(bits + 1);
}
