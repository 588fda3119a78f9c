// Input checks shared by the evaluation functions: feature matrices given as tensors or host
// arrays, integer labels, and the small host-side numerics (entropy, mean ± CI) they report.
import type { Backend } from '../backend/backend.js';
import { ShapeError, Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';

/** A row-major matrix on the host, for callers that have no tensor yet (e.g. a checkpoint read). */
export interface HostMatrix {
  data: Float32Array;
  shape: readonly [number, number];
}

/**
 * The [rows, cols] tensor behind `x`: the tensor itself, or a host matrix uploaded to `backend`.
 * `owned` says whether the caller must dispose it.
 */
export function asMatrix(
  op: string,
  x: Tensor | HostMatrix,
  backend: Backend | undefined,
): { t: Tensor; owned: boolean } {
  if (x instanceof Tensor) {
    if (x.rank !== 2) throw new ShapeError(op, `needs a [rows, cols] matrix, got shape [${x.shape}]`);
    if (x.dtype !== 'f32') throw new ShapeError(op, `needs f32 values, got ${x.dtype}`);
    return { t: x, owned: false };
  }
  const [r, c] = x.shape;
  if (!backend) throw new ShapeError(op, 'a host matrix needs opts.backend to run on');
  if (!Number.isInteger(r) || !Number.isInteger(c) || r < 0 || c < 0 || r * c !== x.data.length) {
    throw new ShapeError(op, `host matrix of shape [${x.shape}] does not match its ${x.data.length} values`);
  }
  return { t: tensor(x.data, [r, c], backend), owned: true };
}

/** Integer class labels in [0, numClasses) as an Int32Array of the given length. */
export function checkLabels(
  op: string,
  labels: ArrayLike<number>,
  n: number,
  numClasses: number,
  what = 'labels',
): Int32Array {
  if (labels.length !== n) throw new ShapeError(op, `${what} has ${labels.length} entries for ${n} feature rows`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) {
      throw new ShapeError(op, `${what}[${i}] = ${l} is not a class index in [0, ${numClasses})`);
    }
    out[i] = l;
  }
  return out;
}

/** 1 + the largest label (labels assumed non-negative integers; checked later by checkLabels). */
export function classCount(...labelSets: ArrayLike<number>[]): number {
  let m = -1;
  for (const ls of labelSets) for (let i = 0; i < ls.length; i++) if (ls[i] > m) m = ls[i];
  return m + 1;
}

export function positiveInt(op: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new ShapeError(op, `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Shannon entropy in nats of a distribution given as non-negative weights summing to ~1. */
export function entropyNats(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}

/** Mean, population std (numpy's default ddof = 0) and the 95% half-width 1.96·std/√n. */
export function meanCi95(values: ArrayLike<number>): { mean: number; std: number; ci95: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, ci95: NaN };
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i] - mean) ** 2;
  const std = Math.sqrt(v / n);
  return { mean, std, ci95: (1.96 * std) / Math.sqrt(n) };
}
