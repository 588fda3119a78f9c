// Shared scalar helpers for the kernel families. Kernels are pure functions over pointers:
// no allocation, every index in elements, every pointer a byte address in the shared memory.

// @ts-ignore: decorator
@inline export function ldf(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline export function stf(p: usize, i: i32, v: f32): void { store<f32>(p + (<usize>i << 2), v); }
// @ts-ignore: decorator
@inline export function ldi(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline export function sti(p: usize, i: i32, v: i32): void { store<i32>(p + (<usize>i << 2), v); }

/** Element offset of row r (an index over the first five dims) of a rank-6 strided view. */
// @ts-ignore: decorator
@inline export function rowOffset(r: i32, shape: usize, strides: usize): i32 {
  let off = 0;
  for (let d = 4; d >= 0; d--) {
    const n = ldi(shape, d);
    off += (r % n) * ldi(strides, d);
    r = r / n;
  }
  return off;
}

/** a*b + c, fused where the relaxed build allows it. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375; // ln 2 split so n·LN2_HI is exact for |n| < 2^8
const LN2_LO: f32 = -2.12194440e-4;
const EXP_LO: f32 = -87.3365447505531; // ln 2^-126: below it e^x is subnormal, returned as 0
const EXP_HI: f32 = 88.0;
// 1.5·2^23: adding it rounds to an integer held in the low mantissa bits, with no float→int convert
const MAGIC: f32 = 12582912.0;

/**
 * e^x lane-wise for x ≤ 88 (wasm has no vector exp): Cephes expf's reduction and degree-7
 * polynomial, within 2 ulp. Every op is a single instruction: pmin instead of min (whose NaN rules
 * cost several), the magic-number rounding instead of nearest + a float→int convert. The
 * polynomial is in Estrin's form: its Horner chain made the exp latency-bound, and the GELU and
 * softmax kernels wait on it.
 */
// @ts-ignore: decorator
@inline export function expVec(x0: v128): v128 {
  const x = f32x4.pmin(x0, f32x4.splat(EXP_HI));
  const t = madd(x, f32x4.splat(LOG2E), f32x4.splat(MAGIC));
  const n = f32x4.sub(t, f32x4.splat(MAGIC));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  // p(r) = 1 + r + r²·(c2 + c3·r) + r⁴·((c4 + c5·r) + r²·(c6 + c7·r))
  const r2 = f32x4.mul(r, r);
  const a = madd(f32x4.splat(1.6666665459e-1), r, f32x4.splat(5.0000001201e-1));
  const b = madd(f32x4.splat(8.3334519073e-3), r, f32x4.splat(4.1665795894e-2));
  const c = madd(f32x4.splat(1.9875691500e-4), r, f32x4.splat(1.3981999507e-3));
  const r4 = f32x4.mul(r2, r2);
  const p = madd(madd(c, r2, b), r4, madd(a, r2, f32x4.add(r, f32x4.splat(1))));
  // 2^n: t's low mantissa bits hold n (the magic constant's low 9 bits are 0), so the shift
  // leaves (n + 127) << 23, the exponent field of 2^n.
  const pow2 = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  // x0 < EXP_LO (−inf included) gives exactly 0, whatever the lane computed; NaN stays NaN.
  return v128.andnot(f32x4.mul(p, pow2), f32x4.lt(x0, f32x4.splat(EXP_LO)));
}

/**
 * erf(u) of four values (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7; wgsl/elementwise.wgsl uses the
 * same formula), given e = e^(−u²):
 * the GELU gradient needs that exponential again for φ(x), so the caller computes it once.
 */
// @ts-ignore: decorator
@inline function erfVec(u: v128, e: v128): v128 {
  const t = f32x4.div(f32x4.splat(1), madd(f32x4.splat(0.3275911), f32x4.abs(u), f32x4.splat(1)));
  // q(t) = a1 + a2·t + a3·t² + a4·t³ + a5·t⁴, in Estrin's form for a shorter dependency chain
  const t2 = f32x4.mul(t, t);
  const lo = madd(f32x4.splat(-0.284496736), t, f32x4.splat(0.254829592));
  const mid = madd(f32x4.splat(-1.453152027), t, f32x4.splat(1.421413741));
  const q = madd(madd(f32x4.splat(1.061405429), t2, mid), t2, lo);
  const y = madd(f32x4.neg(f32x4.mul(q, t)), e, f32x4.splat(1));
  // erf(u) = sign(u)·y; the sign bit of u moved onto y.
  return v128.or(y, v128.and(u, f32x4.splat(-0.0)));
}

/** e^(−u²) of four values. */
// @ts-ignore: decorator
@inline function expNegSquare(u: v128): v128 {
  return expVec(f32x4.neg(f32x4.mul(u, u)));
}

/**
 * GELU of four values with a vector erf and exp: the scalar Mathf.exp made the matmul epilogue cost
 * more than the product itself, and the elementwise GELU of a training step (where autograd needs
 * the pre-activation) likewise.
 */
// @ts-ignore: decorator
@inline export function geluVec(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(0.70710678118654752));
  const erf = erfVec(u, expNegSquare(u));
  const h = f32x4.mul(f32x4.splat(0.5), x);
  return madd(h, erf, h);
}

/**
 * d gelu / dx = Φ(x) + x·φ(x) of four values. erf(x/√2) and φ(x) share e^(−x²/2), so one vector
 * exp serves both (the scalar geluGrad calls Mathf.exp twice per element).
 */
// @ts-ignore: decorator
@inline export function geluGradVec(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(0.70710678118654752));
  const e = expNegSquare(u); // e^(−x²/2)
  const cdf = madd(f32x4.splat(0.5), erfVec(u, e), f32x4.splat(0.5));
  return madd(x, f32x4.mul(f32x4.splat(0.3989422804014327), e), cdf);
}

/** Lets the JS side place its allocations above the module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
