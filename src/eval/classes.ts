// Per-class accuracy and the head / medium / tail split used for long-tailed data (where the
// KoLeo-proto paper reports its largest gains). Host-side: predictions are already read back.
import { ShapeError } from '../tensor/tensor.js';
import { checkLabels, positiveInt } from './common.js';

export interface PerClassAccuracy {
  /** correct / total per class; NaN for a class without test rows. */
  accuracy: Float64Array;
  correct: Int32Array;
  total: Int32Array;
  /** Mean of accuracy over classes with test rows (balanced accuracy). */
  meanClassAccuracy: number;
}

export function perClassAccuracy(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): PerClassAccuracy {
  const op = 'perClassAccuracy';
  positiveInt(op, 'numClasses', numClasses);
  const y = checkLabels(op, labels, labels.length, numClasses);
  if (predictions.length !== y.length)
    throw new ShapeError(op, `${predictions.length} predictions for ${y.length} labels`);
  const correct = new Int32Array(numClasses),
    total = new Int32Array(numClasses);
  for (let i = 0; i < y.length; i++) {
    total[y[i]]++;
    if (predictions[i] === y[i]) correct[y[i]]++;
  }
  const accuracy = new Float64Array(numClasses);
  let s = 0,
    n = 0;
  for (let c = 0; c < numClasses; c++) {
    accuracy[c] = total[c] > 0 ? correct[c] / total[c] : NaN;
    if (total[c] > 0) {
      s += accuracy[c];
      n++;
    }
  }
  return { accuracy, correct, total, meanClassAccuracy: n > 0 ? s / n : NaN };
}

/**
 * How classes are grouped by their number of training rows:
 * - thirds (default): classes sorted by train count, descending (ties: lower class index first);
 *   the first round(C/3) are head, the last round(C/3) tail, the rest medium.
 * - count: head has more than `many` train rows, tail fewer than `few` (ImageNet-LT's many/few-shot
 *   convention: many = 100, few = 20), medium the rest.
 * - fraction: as count with many = head·max and few = tail·max, max the largest class's count.
 */
export type LongTailSplit =
  { by: 'thirds' } | { by: 'count'; many?: number; few?: number } | { by: 'fraction'; head: number; tail: number };

export interface GroupAccuracy {
  classes: Int32Array;
  /** Test rows in the group's classes and the fraction of them predicted right. */
  samples: number;
  accuracy: number;
  /** Mean per-class accuracy over the group's classes with test rows. */
  classAccuracy: number;
}

export interface LongTailAccuracy {
  head: GroupAccuracy;
  medium: GroupAccuracy;
  tail: GroupAccuracy;
}

function group(classes: number[], pc: PerClassAccuracy): GroupAccuracy {
  let right = 0,
    rows = 0,
    s = 0,
    n = 0;
  for (const c of classes) {
    right += pc.correct[c];
    rows += pc.total[c];
    if (pc.total[c] > 0) {
      s += pc.accuracy[c];
      n++;
    }
  }
  return {
    classes: Int32Array.from(classes),
    samples: rows,
    accuracy: rows > 0 ? right / rows : NaN,
    classAccuracy: n > 0 ? s / n : NaN,
  };
}

/** Which group each class falls in: 0 head, 1 medium, 2 tail. */
export function longTailGroups(trainCounts: ArrayLike<number>, split: LongTailSplit = { by: 'thirds' }): Int8Array {
  const op = 'longTailGroups';
  const C = trainCounts.length;
  for (let c = 0; c < C; c++) {
    if (!(trainCounts[c] >= 0)) throw new ShapeError(op, `trainCounts[${c}] = ${trainCounts[c]} is not a count`);
  }
  const g = new Int8Array(C).fill(1);
  if (split.by === 'thirds') {
    const order = Array.from({ length: C }, (_, c) => c).sort((a, b) => trainCounts[b] - trainCounts[a] || a - b);
    const third = Math.round(C / 3);
    order.forEach((c, r) => {
      if (r < third) g[c] = 0;
      else if (r >= C - third) g[c] = 2;
    });
    return g;
  }
  let many: number, few: number;
  if (split.by === 'count') {
    many = split.many ?? 100;
    few = split.few ?? 20;
  } else if (split.by === 'fraction') {
    let max = 0;
    for (let c = 0; c < C; c++) max = Math.max(max, trainCounts[c]);
    many = split.head * max;
    few = split.tail * max;
  } else {
    throw new ShapeError(op, `unknown split '${(split as { by: string }).by}'`);
  }
  if (!(few <= many)) throw new ShapeError(op, `the tail threshold ${few} is above the head threshold ${many}`);
  for (let c = 0; c < C; c++) g[c] = trainCounts[c] > many ? 0 : trainCounts[c] < few ? 2 : 1;
  return g;
}

/** Accuracy of the head, medium and tail classes (see LongTailSplit for the thresholds). */
export function longTailAccuracy(
  pc: PerClassAccuracy,
  trainCounts: ArrayLike<number>,
  split: LongTailSplit = { by: 'thirds' },
): LongTailAccuracy {
  if (trainCounts.length !== pc.accuracy.length) {
    throw new ShapeError('longTailAccuracy', `${trainCounts.length} train counts for ${pc.accuracy.length} classes`);
  }
  const g = longTailGroups(trainCounts, split);
  const members: number[][] = [[], [], []];
  g.forEach((k, c) => members[k].push(c));
  return { head: group(members[0], pc), medium: group(members[1], pc), tail: group(members[2], pc) };
}
