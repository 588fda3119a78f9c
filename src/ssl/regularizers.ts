// Regularisers of the DINO family: MSN's mean-entropy maximisation (me-max), KoLeo on features
// (DINOv2) and KoLeo-proto on the prototypes (Govindarajan et al., BMVC 2024).
import { ShapeError, type Tensor } from '../tensor/tensor.js';
import { add, affine, log, mul } from '../tensor/ops/elementwise.js';
import { mean, sum } from '../tensor/ops/reduce.js';
import { softmax } from '../tensor/ops/softmax.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { nearestNeighborDistance, neighborDistance } from '../tensor/ops/neighbours.js';
import type { KoleoProtoCache } from './koleo-cache.js';

/**
 * me-max: Σ p̄ log p̄ + log K with p̄ the batch mean of softmax(student/temp); 0 when the mean
 * prediction is uniform over the K prototypes, log K when it collapses onto one.
 */
export function meMaxLoss(studentLogits: Tensor, studentTemp: number): Tensor {
  if (studentLogits.rank !== 2)
    throw new ShapeError('meMaxLoss', `expects [B, K] logits, got [${studentLogits.shape}]`);
  const K = studentLogits.shape[1];
  const pBar = mean(softmax(mul(studentLogits, 1 / studentTemp), -1), 0); // [K]
  return add(sum(mul(pBar, log(pBar))), Math.log(K));
}

/**
 * Which KoLeo: 'dinov2' (default) is DINOv2's KoLeoLoss, −(1/n) Σ_i log(ρ_i + eps), the
 * Kozachenko–Leonenko estimator with its constants and its factor d dropped (Sablayrolles et al.,
 * "Spreading vectors for similarity search", 2019). 'kozachenko-leonenko' is the estimator itself
 * (Kozachenko & Leonenko, 1987), negated to be a loss:
 *   −Ĥ = −[ (d/n) Σ_i log ρ_i + log V_d + log(n − 1) + γ ],
 * with ρ_i the distance from row i to its nearest other row, n the number of rows (K when the
 * rows are prototypes), d their dimension, V_d = π^{d/2} / Γ(d/2 + 1) the volume of the unit
 * d-ball and γ the Euler–Mascheroni constant. So it equals d · dinov2 − (log V_d + log(n − 1) + γ):
 * the same minimiser, a gradient d times larger (scale its weight by 1/d to keep DINOv2's), and a
 * value that is an entropy estimate in nats. Both use the L2-normalised rows and keep the eps
 * guard against log 0 for duplicate rows.
 */
export type KoleoForm = 'dinov2' | 'kozachenko-leonenko';

export const EULER_GAMMA = 0.5772156649015329;

/** log Γ(d/2 + 1), exactly by recursion: d/2 + 1 is an integer or a half-integer. */
function logGammaHalfPlusOne(d: number): number {
  let x = d / 2 + 1;
  let acc = 0;
  while (x > 1.5) {
    x -= 1;
    acc += Math.log(x);
  }
  return x === 1.5 ? acc + Math.log(Math.sqrt(Math.PI) / 2) : acc; // Γ(3/2) = √π/2, Γ(1) = 1
}

/** log V_d + log(n − 1) + γ: the constant the Kozachenko–Leonenko estimator adds to (d/n) Σ log ρ_i. */
export function kozachenkoLeonenkoConstant(n: number, d: number): number {
  return (d / 2) * Math.log(Math.PI) - logGammaHalfPlusOne(d) + Math.log(n - 1) + EULER_GAMMA;
}

/**
 * Kozachenko-Leonenko entropy estimator as a loss on the L2-normalised rows x̂ of x, n(i) the
 * nearest other row; 'dinov2' (default): −mean_i log(‖x̂_i − x̂_n(i) + eps‖ + eps), DINOv2's
 * KoLeoLoss; 'kozachenko-leonenko': the estimator with its factor and constants (see KoleoForm).
 * Minimising either spreads the rows out. The nearest-neighbour search is blocked, never K × K.
 */
export function koleoLoss(x: Tensor, eps = 1e-8, opts: { form?: KoleoForm } = {}): Tensor {
  const form = opts.form ?? 'dinov2';
  if (form !== 'dinov2' && form !== 'kozachenko-leonenko')
    throw new ShapeError('koleoLoss', `unknown form '${String(form)}': expected 'dinov2' or 'kozachenko-leonenko'`);
  if (x.rank !== 2 || x.shape[0] < 2) throw new ShapeError('koleoLoss', `expects [N ≥ 2, D] rows, got [${x.shape}]`);
  const xn = l2Normalize(x, -1, eps);
  const { distances, indices } = nearestNeighborDistance(xn, undefined, { excludeSelf: true, eps });
  indices.dispose();
  const meanLog = mean(log(add(distances, eps)));
  if (form === 'dinov2') return mul(meanLog, -1);
  const [n, d] = x.shape;
  return affine(meanLog, -d, -kozachenkoLeonenkoConstant(n, d));
}

/**
 * KoLeo-proto: koleoLoss over the K prototype vectors (the rows of the head's last-layer weight_v),
 * L_KP = −(1/K) Σ_i log(min_{j≠i} ‖w_i − w_j‖ + ε) on L2-normalised rows; its gradient flows into
 * the prototypes. With a candidate cache (koleo-cache.ts) the neighbours of `step` come from it.
 */
export function koleoProtoLoss(
  prototypes: Tensor,
  eps = 1e-8,
  cache?: { cache: KoleoProtoCache; step: number },
): Tensor {
  if (!cache) return koleoLoss(prototypes, eps);
  if (prototypes.rank !== 2 || prototypes.shape[0] < 2)
    throw new ShapeError('koleoProtoLoss', `expects [K ≥ 2, D] prototypes, got [${prototypes.shape}]`);
  const xn = l2Normalize(prototypes, -1, eps);
  const idx = cache.cache.neighbours(xn, cache.step, eps);
  const distances = neighborDistance(xn, xn, idx, eps);
  idx.dispose();
  return mul(mean(log(add(distances, eps))), -1);
}
