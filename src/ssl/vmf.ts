// DINO-vMF (Govindarajan et al., "DINO as a von Mises-Fisher mixture model", ICLR 2023): the
// prototypes keep their norms κ_k = ‖w_k‖, so a logit w_k·y = κ_k cos(w_k, y) is the exponent of a
// vMF density of concentration κ_k, and adding its log-normaliser log C_p(κ_k) makes the softmax the
// posterior of a proper vMF mixture (otherwise large-κ prototypes win for free).
//
// C_p(κ) = κ^ν / ((2π)^{p/2} I_ν(κ)) with ν = p/2 − 1. log I_ν is evaluated with Debye's uniform
// asymptotic expansion (Abramowitz & Stegun 9.7.7, DLMF 10.41.3) to the u4 term:
//   s = √(ν² + κ²), t = ν/s,
//   log I_ν(κ) ≈ s + ν log(κ/(ν + s)) − ½ log(2π) − ½ log s + log(1 + u1(t)/ν + u2(t)/ν² + u3(t)/ν³ + u4(t)/ν⁴)
// The ν log κ terms cancel, leaving an expression smooth in κ ≥ 0 and built from elementwise ops,
// so autograd gives d/dκ log C_p(κ) = −I_{ν+1}(κ)/I_ν(κ) to the same accuracy. The expansion is
// uniform in κ with relative error O(ν⁻⁵) in I_ν; measured against a float64 power series
// (test/ssl/vmf.test.ts) over κ in [0, 400] the absolute error of log C_p is below 1e-4 for p = 8,
// 7e-6 for p = 12, 1.3e-6 for p = 16, 3e-8 for p = 32 and 1e-9 for p = 64 (largest near κ ≈ ν/2).
// Below p = 8 it degrades fast (1e-3 at p = 6), hence p ≥ 8 is required.
import { ShapeError, type Tensor } from '../tensor/tensor.js';
import { add, affine, log, mul, sqrt, square, reciprocal } from '../tensor/ops/elementwise.js';
import { sumSquares } from '../tensor/ops/reduce.js';
import { linear } from '../tensor/ops/matmul.js';
import { reshape } from '../tensor/ops/view.js';

/** Smallest embedding dimension the expansion is accurate enough for. */
export const VMF_MIN_DIM = 8;

/** Debye polynomials u1..u4 of DLMF 10.41.10, as coefficient lists in powers of t. */
const U: readonly (readonly [number, number][])[] = [
  [
    [1, 3 / 24],
    [3, -5 / 24],
  ],
  [
    [2, 81 / 1152],
    [4, -462 / 1152],
    [6, 385 / 1152],
  ],
  [
    [3, 30375 / 414720],
    [5, -369603 / 414720],
    [7, 765765 / 414720],
    [9, -425425 / 414720],
  ],
  [
    [4, 4465125 / 39813120],
    [6, -94121676 / 39813120],
    [8, 349922430 / 39813120],
    [10, -446185740 / 39813120],
    [12, 185910725 / 39813120],
  ],
];

/** log C_p(κ) elementwise (differentiable in κ), for κ ≥ 0 and p ≥ 8. */
export function vmfLogNormaliser(kappa: Tensor, p: number): Tensor {
  if (!(Number.isInteger(p) && p >= VMF_MIN_DIM))
    throw new ShapeError('vmfLogNormaliser', `needs an integer dimension p ≥ ${VMF_MIN_DIM}, got ${p}`);
  const nu = p / 2 - 1;
  const s = sqrt(add(square(kappa), nu * nu));
  const t = mul(reciprocal(s), nu);
  // 1 + Σ_k u_k(t)/ν^k by Horner's rule in t: all the powers appearing are 1..12.
  const coef = new Array<number>(13).fill(0);
  U.forEach((terms, k) => {
    for (const [pow, c] of terms) coef[pow] += c / nu ** (k + 1);
  });
  let poly = affine(t, coef[12], coef[11]);
  for (let pow = 10; pow >= 1; pow--) poly = affine(mul(poly, t), 1, coef[pow]);
  const series = affine(mul(poly, t), 1, 1);
  // ν log(ν + s) − s + ½ log s − ((p − 1)/2) log 2π − log(series)
  const a = mul(log(add(s, nu)), nu);
  const b = affine(log(s), 0.5, -((p - 1) / 2) * Math.log(2 * Math.PI));
  return add(add(a, b), mul(add(s, log(series)), -1));
}

/** Host float64 version of vmfLogNormaliser (same expansion), for logging and tests. */
export function vmfLogNormaliserF64(kappa: number, p: number): number {
  const nu = p / 2 - 1;
  const s = Math.sqrt(nu * nu + kappa * kappa);
  const t = nu / s;
  let series = 1;
  U.forEach((terms, k) => {
    let u = 0;
    for (const [pow, c] of terms) u += c * t ** pow;
    series += u / nu ** (k + 1);
  });
  return nu * Math.log(nu + s) - s + 0.5 * Math.log(s) - ((p - 1) / 2) * Math.log(2 * Math.PI) - Math.log(series);
}

/** The prototype norms κ_k = ‖w_k‖ of a [K, p] weight, as [K]. */
export function prototypeNorms(weight: Tensor): Tensor {
  return sqrt(sumSquares(weight, -1));
}

/**
 * vMF-mixture logits of unit-norm embeddings y [B, p] against unnormalised prototypes w [K, p]:
 * w_k·y + log C_p(‖w_k‖), [B, K].
 */
export function vmfLogits(y: Tensor, weight: Tensor): Tensor {
  if (weight.rank !== 2 || y.rank !== 2 || y.shape[1] !== weight.shape[1]) {
    throw new ShapeError('vmfLogits', `expects y [B, p] and prototypes [K, p], got [${y.shape}] and [${weight.shape}]`);
  }
  const [K, p] = weight.shape;
  const logC = vmfLogNormaliser(prototypeNorms(weight), p);
  return add(linear(y, weight), reshape(logC, [1, K]));
}
