// The DINO objective (facebookresearch/dino's DINOLoss) as plain functions of tensors: teacher
// targets by centering or Sinkhorn-Knopp, the multi-crop cross-entropy, and the center update.
import { ShapeError, noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { add, div, exp, mul, sub } from '../tensor/ops/elementwise.js';
import { max, mean, min, sum } from '../tensor/ops/reduce.js';
import { crossEntropy, softmax } from '../tensor/ops/softmax.js';
import { concat, slice } from '../tensor/ops/layout.js';
import { emaUpdate } from '../tensor/ops/optim.js';

/** softmax((teacher − center) / temp): DINO's centred, sharpened teacher distribution (no grad). */
export function centeredTeacher(teacherLogits: Tensor, center: Tensor, temp: number): Tensor {
  return noGrad(() => softmax(mul(sub(teacherLogits, center), 1 / temp), -1));
}

/**
 * Sinkhorn-Knopp teacher targets (DINOv2's sinkhorn_knopp_teacher): exp(t/temp) normalised to
 * equal prototype marginals and unit sample marginals in `iterations` rounds; returns [B, K] rows
 * summing to 1. The global max is subtracted first, which the normalisation cancels.
 */
export function sinkhornKnopp(teacherLogits: Tensor, temp: number, iterations = 3): Tensor {
  if (teacherLogits.rank !== 2)
    throw new ShapeError('sinkhornKnopp', `expects [B, K] logits, got [${teacherLogits.shape}]`);
  const [B, K] = teacherLogits.shape;
  return noGrad(() => {
    const scaled = mul(teacherLogits, 1 / temp);
    let q = exp(sub(scaled, max(scaled)));
    q = div(q, sum(q));
    for (let it = 0; it < iterations; it++) {
      q = div(q, mul(sum(q, 0, true), K)); // each prototype gets mass 1/K
      q = div(q, mul(sum(q, 1, true), B)); // each sample gets mass 1/B
    }
    return mul(q, B);
  });
}

export interface DinoLossOptions {
  studentTemp: number;
  /** Number of crops in the student output (2 global + local). */
  nCrops: number;
}

/**
 * Cross-entropy between the teacher targets of the 2 global crops and the student's predictions on
 * every crop, skipping same-view pairs, averaged over pairs and samples. student: [nCrops·B, K]
 * logits (crop-major), teacherProbs: [2·B, K]. Equivalent to summing per crop v the cross-entropy
 * against Σ_{q≠v} teacher_q, which is one fused pass instead of 2·(nCrops − 1).
 *
 * Unchecked: the trainer and DINOLoss build the probabilities themselves, and a check would read
 * the device back every step. The public dinoLoss checks them.
 */
export function dinoCrossEntropy(studentLogits: Tensor, teacherProbs: Tensor, opts: DinoLossOptions): Tensor {
  const { nCrops, studentTemp } = opts;
  if (nCrops < 2) throw new ShapeError('dinoLoss', `needs at least the 2 global crops, got nCrops = ${nCrops}`);
  const [N, K] = studentLogits.shape;
  const B = N / nCrops;
  if (!Number.isInteger(B) || studentLogits.rank !== 2)
    throw new ShapeError('dinoLoss', `student output [${studentLogits.shape}] is not [${nCrops}·B, K]`);
  if (teacherProbs.rank !== 2 || teacherProbs.shape[0] !== 2 * B || teacherProbs.shape[1] !== K) {
    throw new ShapeError('dinoLoss', `teacher targets [${teacherProbs.shape}] must be [2·${B}, ${K}]`);
  }
  const targets = noGrad(() => {
    const q0 = slice(teacherProbs, [0, 0], [B, K]);
    const q1 = slice(teacherProbs, [B, 0], [B, K]);
    const parts = [q1, q0];
    if (nCrops > 2) {
      const both = add(q0, q1);
      for (let v = 2; v < nCrops; v++) parts.push(both);
    }
    return concat(parts, 0);
  });
  const ce = crossEntropy(targets, mul(studentLogits, 1 / studentTemp), -1); // [nCrops·B]
  const pairs = 2 * (nCrops - 1);
  return mul(sum(ce), 1 / (pairs * B));
}

/** How far a teacher row's sum may be from 1 before dinoLoss refuses it (float32 softmax rows are within ~1e-6). */
export const PROBABILITY_TOLERANCE = 1e-3;

/** The first teacher row that is not a probability distribution, described; null when all are. */
async function badTeacherRow(teacherProbs: Tensor, tolerance: number): Promise<string | null> {
  const stats = tidy(() => noGrad(() => concat([sum(teacherProbs, 1), min(teacherProbs, 1)], 0)));
  let host: Float32Array;
  try {
    host = (await stats.data()) as Float32Array;
  } finally {
    stats.dispose();
  }
  const rows = teacherProbs.shape[0];
  const show = (x: number) => Number(x.toPrecision(6)); // float32 values, without their binary tails
  for (let r = 0; r < rows; r++) {
    const total = host[r];
    const least = host[rows + r];
    if (!Number.isFinite(total) || !Number.isFinite(least)) return `row ${r} is not finite (sum ${total})`;
    if (least < 0) return `row ${r} has a negative entry (${show(least)})`;
    if (Math.abs(total - 1) > tolerance) return `row ${r} sums to ${show(total)}, not 1 (± ${tolerance})`;
  }
  return null;
}

/**
 * dinoCrossEntropy for teacher targets given as probabilities, after checking that they are: every
 * row non-negative and summing to 1 within `tolerance`. Raw logits or a forgotten softmax — an
 * easy slip coming from DINOLoss, which takes logits — give a wrong number without an error
 * otherwise. Async because the check reads back 2 numbers per teacher row; DINOLoss takes logits
 * and needs no check.
 */
export async function dinoLoss(
  studentLogits: Tensor,
  teacherProbs: Tensor,
  opts: DinoLossOptions & { tolerance?: number },
): Promise<Tensor> {
  if (teacherProbs.rank === 2) {
    const bad = await badTeacherRow(teacherProbs, opts.tolerance ?? PROBABILITY_TOLERANCE);
    if (bad)
      throw new RangeError(
        `dinoLoss: the teacher targets must be probabilities, but ${bad}; pass softmax((teacher − center) / temp) (centeredTeacher), or use DINOLoss, which takes raw teacher logits`,
      );
  }
  return dinoCrossEntropy(studentLogits, teacherProbs, opts);
}

/** center ← m·center + (1 − m)·mean(teacher logits over the batch), in place. */
export function updateCenter(center: Tensor, teacherLogits: Tensor, momentum = 0.9): void {
  noGrad(() => {
    const batchCenter = mean(teacherLogits, 0, true);
    emaUpdate([center], [batchCenter], momentum);
    batchCenter.dispose();
  });
}
