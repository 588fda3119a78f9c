// Regularisers of the DINO family: MSN's mean-entropy maximisation (me-max), KoLeo on features
// (DINOv2) and KoLeo-proto on the prototypes (Govindarajan et al., BMVC 2024).
import { ShapeError, type Tensor } from '../tensor/tensor.js';
import { add, log, mul } from '../tensor/ops/elementwise.js';
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
 * Kozachenko-Leonenko entropy estimator as a loss: −mean_i log(‖x̂_i − x̂_n(i) + eps‖ + eps) with
 * x̂ the L2-normalised rows and n(i) the nearest other row (DINOv2's KoLeoLoss). Minimising it
 * spreads the rows out. The nearest-neighbour search is blocked, never K × K.
 */
export function koleoLoss(x: Tensor, eps = 1e-8): Tensor {
  if (x.rank !== 2 || x.shape[0] < 2) throw new ShapeError('koleoLoss', `expects [N ≥ 2, D] rows, got [${x.shape}]`);
  const xn = l2Normalize(x, -1, eps);
  const { distances, indices } = nearestNeighborDistance(xn, undefined, { excludeSelf: true, eps });
  indices.dispose();
  return mul(mean(log(add(distances, eps))), -1);
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
