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

/** erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26); wgsl/elementwise.wgsl uses the same. */
export function erf(x: f32): f32 {
  const s: f32 = x < 0 ? -1 : 1;
  const z = Mathf.abs(x);
  const t: f32 = 1.0 / (1.0 + 0.3275911 * z);
  const y: f32 = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Mathf.exp(-z * z);
  return s * y;
}

export function gelu(x: f32): f32 {
  return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
}

/** d gelu / dx = Φ(x) + x φ(x). */
export function geluGrad(x: f32): f32 {
  const cdf: f32 = 0.5 * (1.0 + erf(x * 0.70710678118654752));
  const pdf: f32 = 0.3989422804014327 * Mathf.exp(-0.5 * x * x);
  return cdf + x * pdf;
}

/** e^x for x ≤ 0 (Cephes expf: 2^n · a degree-7 polynomial in the remainder, about 1 ulp). */
// @ts-ignore: decorator
@inline export function expNeg(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-87.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/**
 * erf(u) of four values (Abramowitz & Stegun 7.1.26, as the scalar erf above), given e = e^(−u²):
 * the GELU gradient needs that exponential again for φ(x), so the caller computes it once.
 */
// @ts-ignore: decorator
@inline function erfVec(u: v128, e: v128): v128 {
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.splat(0.3275911), f32x4.abs(u))));
  let q = f32x4.sub(f32x4.mul(f32x4.splat(1.061405429), t), f32x4.splat(1.453152027));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(1.421413741));
  q = f32x4.sub(f32x4.mul(q, t), f32x4.splat(0.284496736));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(0.254829592));
  const y = f32x4.sub(f32x4.splat(1), f32x4.mul(f32x4.mul(q, t), e));
  // erf(u) = sign(u)·y; the sign bit of u moved onto y.
  return v128.or(y, v128.and(u, f32x4.splat(-0.0)));
}

/** e^(−u²) of four values. */
// @ts-ignore: decorator
@inline function expNegSquare(u: v128): v128 {
  return expNeg(f32x4.neg(f32x4.mul(u, u)));
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
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), x), f32x4.add(f32x4.splat(1), erf));
}

/**
 * d gelu / dx = Φ(x) + x·φ(x) of four values. erf(x/√2) and φ(x) share e^(−x²/2), so one vector
 * exp serves both (the scalar geluGrad calls Mathf.exp twice per element).
 */
// @ts-ignore: decorator
@inline export function geluGradVec(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(0.70710678118654752));
  const e = expNegSquare(u); // e^(−x²/2)
  const cdf = f32x4.mul(f32x4.splat(0.5), f32x4.add(f32x4.splat(1), erfVec(u, e)));
  return f32x4.add(cdf, f32x4.mul(x, f32x4.mul(f32x4.splat(0.3989422804014327), e)));
}

/** Lets the JS side place its allocations above the module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
