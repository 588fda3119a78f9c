// Shape rules shared by the ops: broadcasting, axis normalisation, checks with clear messages.
import { ShapeError, type Tensor } from './tensor.js';

export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes [${a}] and [${b}] do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides for reading a contiguous tensor of `shape` as if broadcast to `target` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const strides = new Array<number>(target.length).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const t = target.length - shape.length + i;
    strides[t] = shape[i] === 1 && target[t] !== 1 ? 0 : acc;
    acc *= shape[i];
  }
  return strides;
}

export function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError(op, `axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

export function normalizeAxes(op: string, axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => normalizeAxis(op, a, rank));
  if (new Set(list).size !== list.length) throw new ShapeError(op, `repeated axis in [${axes}]`);
  return list.sort((x, y) => x - y);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function assertSameBackend(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.backend !== ts[0].backend)
      throw new ShapeError(op, `tensors live on different backends (${ts[0].backend.kind} and ${t.backend.kind})`);
  }
}

export function assertDType(op: string, t: Tensor, dtype: 'f32' | 'i32', what = 'input'): void {
  if (t.dtype !== dtype) throw new ShapeError(op, `${what} must be ${dtype}, got ${t.dtype}`);
}

export function checkShape(op: string, shape: readonly number[]): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(op, `invalid shape [${shape}]: dims must be non-negative integers`);
  }
  return [...shape];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
