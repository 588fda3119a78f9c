// One DINO training step on the device: teacher and student forward on the multi-crop batch, the
// loss with its selected regularisers, backward, per-parameter clipping, the last-layer freeze,
// AdamW, teacher EMA and the center update. Nothing is read back; the loss tensor is returned.
import type { Tensor } from '../tensor/tensor.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { backward, zeroGrad } from '../tensor/autograd.js';
import { add, mul } from '../tensor/ops/elementwise.js';
import { concat, slice } from '../tensor/ops/layout.js';
import { softmax } from '../tensor/ops/softmax.js';
import { clipGradients, emaUpdate, type AdamW } from '../tensor/ops/optim.js';
import { centeredTeacher, dinoLoss, sinkhornKnopp, updateCenter } from '../ssl/dino.js';
import { koleoLoss, koleoProtoLoss, meMaxLoss } from '../ssl/regularisers.js';
import type { TrainConfig } from './config.js';
import type { DinoNetwork } from './network.js';

export interface DinoState {
  cfg: TrainConfig;
  student: DinoNetwork;
  teacher: DinoNetwork;
  optimizer: AdamW;
  /** The DINO center [1, K] (centering only). */
  center: Tensor | null;
  channels: number;
  localSize: number;
}

export interface StepSchedule {
  epoch: number;
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
}

/**
 * globals: the two global crops back to back [2B, C, G, G]; locals: [L·B, C, S, S] or null.
 * Returns the total loss (a scalar tensor the caller disposes).
 */
export function dinoStep(s: DinoState, globals: Float32Array, locals: Float32Array | null, sch: StepSchedule): Tensor {
  const { cfg, student, teacher, optimizer, center } = s;
  const G = cfg.global_crops_size;
  const B = globals.length / (2 * s.channels * G * G);
  if (!Number.isInteger(B)) throw new Error(`dinoStep: ${globals.length} global-crop values are not 2·B crops of ${s.channels}x${G}x${G}`);
  const nCrops = 2 + (locals ? cfg.local_crops_number : 0);
  for (const g of optimizer.groups) g.lr = sch.lr;
  optimizer.groups[0].weightDecay = sch.weightDecay; // group 0 holds the decayed parameters
  return tidy(() => {
    const be = student.backend;
    const g = tensor(globals, [2 * B, s.channels, G, G], be);
    const tOut = noGrad(() => teacher.forward(g));
    const feats: Tensor[] = [student.features(g)];
    if (locals) feats.push(student.features(tensor(locals, [cfg.local_crops_number * B, s.channels, s.localSize, s.localSize], be)));
    // The head runs once on every crop's features, as DINO's MultiCropWrapper does.
    const sOut = student.head.forward(feats.length > 1 ? concat(feats, 0) : feats[0]);
    const targets = cfg.centering === 'sinkhorn' ? sinkhornKnopp(tOut, sch.teacherTemp)
      : cfg.centering === 'centering' ? centeredTeacher(tOut, center!, sch.teacherTemp)
        : noGrad(() => softmax(mul(tOut, 1 / sch.teacherTemp), -1));
    let total = dinoLoss(sOut, targets, { studentTemp: cfg.student_temp, nCrops });
    if (cfg.centering === 'memax') total = add(total, meMaxLoss(sOut, cfg.student_temp));
    if (cfg.koleo_proto > 0) total = add(total, mul(koleoProtoLoss(student.head.last_layer.weight_v), cfg.koleo_proto));
    if (cfg.koleo_features > 0) {
      const first = slice(feats[0], [0, 0], [B, feats[0].shape[1]]);
      total = add(total, mul(koleoLoss(first), cfg.koleo_features));
    }
    backward(total);
    const trainable = student.trainableParameters();
    if (cfg.clip_grad > 0) clipGradients(trainable, cfg.clip_grad);
    if (sch.epoch < cfg.freeze_last_layer) zeroGrad(student.head.last_layer.parameters());
    optimizer.step();
    zeroGrad(trainable);
    emaUpdate(teacher.parameters(), student.parameters(), sch.momentum);
    if (center) updateCenter(center, tOut, cfg.center_momentum);
    return total;
  });
}
