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

/** Lets the JS side place its allocations above the module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
