// DINOLoss: facebookresearch/dino's DINOLoss module for library users who come from PyTorch. It
// takes the raw teacher logits, as DINO's does, and does centering, sharpening with the
// per-epoch teacher temperature and the center update in one call, so the steps that are easy to
// forget or misorder (the center updated after the loss, with the teacher's raw logits) are not
// left to the caller.
import type { Backend } from '../backend/backend.js';
import { keep, ShapeError, type Tensor } from '../tensor/tensor.js';
import { zeros } from '../tensor/create.js';
import { teacherTempSchedule } from '../util/schedules.js';
import { centeredTeacher, dinoCrossEntropy, updateCenter } from './dino.js';

export interface DINOLossConfig {
  /** K, the number of prototypes (DINO's out_dim). */
  outDim: number;
  /** Crops in the student output: 2 global + local (DINO's ncrops). */
  nCrops: number;
  warmupTeacherTemp: number;
  teacherTemp: number;
  warmupTeacherTempEpochs: number;
  nEpochs: number;
  /** Default 0.1. */
  studentTemp?: number;
  /** Default 0.9. */
  centerMomentum?: number;
}

export class DINOLoss {
  /** [1, K], zeros at first, owned by this object (dispose() frees it). */
  readonly center: Tensor;
  /** One teacher temperature per epoch (DINO's teacher_temp_schedule). */
  readonly teacherTempSchedule: Float64Array;
  readonly nCrops: number;
  readonly studentTemp: number;
  readonly centerMomentum: number;

  constructor(be: Backend, cfg: DINOLossConfig) {
    if (!Number.isSafeInteger(cfg.outDim) || cfg.outDim < 1)
      throw new RangeError(`DINOLoss: outDim must be a positive integer, got ${cfg.outDim}`);
    this.teacherTempSchedule = teacherTempSchedule(
      cfg.warmupTeacherTemp,
      cfg.teacherTemp,
      cfg.warmupTeacherTempEpochs,
      cfg.nEpochs,
    );
    this.nCrops = cfg.nCrops;
    this.studentTemp = cfg.studentTemp ?? 0.1;
    this.centerMomentum = cfg.centerMomentum ?? 0.9;
    this.center = keep(zeros([1, cfg.outDim], be));
  }

  /**
   * The loss of one batch at `epoch` (0-based), then the center update with this batch's teacher
   * logits, as DINOLoss.forward. studentOutput: [nCrops·B, K] logits, crop-major; teacherOutput:
   * [2·B, K] raw logits of the 2 global crops.
   */
  forward(studentOutput: Tensor, teacherOutput: Tensor, epoch: number): Tensor {
    const temp = this.teacherTempSchedule[epoch];
    if (!Number.isInteger(epoch) || temp === undefined)
      throw new RangeError(
        `DINOLoss.forward: epoch ${epoch} is outside the teacher temperature schedule's 0…${this.teacherTempSchedule.length - 1}`,
      );
    const K = this.center.shape[1];
    if (teacherOutput.rank !== 2 || teacherOutput.shape[1] !== K)
      throw new ShapeError('DINOLoss.forward', `teacher logits [${teacherOutput.shape}] must be [2·B, ${K}]`);
    const loss = dinoCrossEntropy(studentOutput, centeredTeacher(teacherOutput, this.center, temp), {
      studentTemp: this.studentTemp,
      nCrops: this.nCrops,
    });
    updateCenter(this.center, teacherOutput, this.centerMomentum);
    return loss;
  }

  dispose(): void {
    this.center.dispose();
  }
}
