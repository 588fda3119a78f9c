// Per-iteration and per-epoch schedules of facebookresearch/dino, reproduced operation for operation
// in float64 (same formulas, same evaluation order) so a run here follows the same learning-rate,
// weight-decay, teacher-momentum and teacher-temperature curves as the PyTorch reference.
// They live in util/ (dino keeps them in utils.py) so that ssl/'s DINOLoss can use the teacher's.

function count(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  return v;
}

/**
 * numpy.linspace(start, stop, num) (endpoint included): start + i·step with step = (stop − start)/(num − 1),
 * the last value set to exactly `stop`; num = 1 gives [start].
 */
export function linspace(start: number, stop: number, num: number): Float64Array {
  count('num', num);
  const out = new Float64Array(num);
  const div = num - 1;
  const delta = stop - start;
  const step = div > 0 ? delta / div : NaN;
  for (let i = 0; i < num; i++) {
    // numpy scales by i/div first when the step underflows to zero, keeping tiny ranges distinct.
    out[i] = (div > 0 && step === 0 ? (i / div) * delta : i * step) + start;
  }
  if (num === 1) out[0] = start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * dino utils.cosine_scheduler: one value per iteration (epochs·nitersPerEp of them): a linear warm-up
 * from startWarmupValue to baseValue over warmupEpochs·nitersPerEp iterations (numpy.linspace, so
 * its last value is baseValue), then final + 0.5·(base − final)·(1 + cos(π·i/len)) for i in [0, len),
 * len being the remaining iteration count.
 */
export function cosineScheduler(
  baseValue: number,
  finalValue: number,
  epochs: number,
  nitersPerEp: number,
  warmupEpochs = 0,
  startWarmupValue = 0,
): Float64Array {
  const total = count('epochs', epochs) * count('nitersPerEp', nitersPerEp);
  const warmupIters = count('warmupEpochs', warmupEpochs) * nitersPerEp;
  if (warmupIters > total) throw new RangeError(`warmupEpochs (${warmupEpochs}) exceeds epochs (${epochs})`);
  const out = new Float64Array(total);
  if (warmupEpochs > 0) out.set(linspace(startWarmupValue, baseValue, warmupIters));
  const len = total - warmupIters;
  const amp = 0.5 * (baseValue - finalValue);
  for (let i = 0; i < len; i++) out[warmupIters + i] = finalValue + amp * (1 + Math.cos((Math.PI * i) / len));
  return out;
}

/**
 * DINOLoss.teacher_temp_schedule: one value per epoch, numpy.linspace(warmupTeacherTemp, teacherTemp,
 * warmupTeacherTempEpochs) followed by teacherTemp for the remaining epochs.
 */
export function teacherTempSchedule(
  warmupTeacherTemp: number,
  teacherTemp: number,
  warmupTeacherTempEpochs: number,
  nepochs: number,
): Float64Array {
  count('warmupTeacherTempEpochs', warmupTeacherTempEpochs);
  if (warmupTeacherTempEpochs > count('nepochs', nepochs)) {
    throw new RangeError(`warmupTeacherTempEpochs (${warmupTeacherTempEpochs}) exceeds nepochs (${nepochs})`);
  }
  const out = new Float64Array(nepochs).fill(teacherTemp);
  out.set(linspace(warmupTeacherTemp, teacherTemp, warmupTeacherTempEpochs));
  return out;
}
