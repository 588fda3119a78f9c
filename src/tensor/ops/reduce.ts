// Reductions over axes (kernels: reduce/argReduce) and sumTo, the adjoint of broadcasting.
import type { ReduceOp } from '../../backend/backend.js';
import { noGrad, ShapeError, Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, normalizeAxes, normalizeAxis, numel, sameShape } from '../shape.js';
import { broadcastTo, reshape } from './view.js';
import { div, equal, mul } from './elementwise.js';

/** Reduces `axes` one at a time, keeping dims; returns a tensor of the keep-dims shape. */
function reduceKeep(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  assertDType(op, x, 'f32');
  let cur = x;
  const shape = [...x.shape];
  for (let k = axes.length - 1; k >= 0; k--) {
    const a = axes[k];
    const outer = numel(shape.slice(0, a));
    const len = shape[a];
    const inner = numel(shape.slice(a + 1));
    if (len === 0 && op !== 'sum' && op !== 'sumsq') throw new ShapeError(op, `cannot take the ${op} over an empty axis`);
    shape[a] = 1;
    const out = empty(shape, x.backend);
    if (out.size > 0) x.backend.reduce(k === axes.length - 1 ? op : (op === 'sumsq' ? 'sum' : op), cur.storage, out.storage, outer, len, inner);
    if (cur !== x) cur.dispose();
    cur = out;
  }
  return cur === x ? reshape(x, x.shape) : cur;
}

function outShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sum', axes, x.rank);
  const kept = reduceKeep('sum', x, ax);
  const out = keepDims ? kept : reshapeOwned(kept, outShape(x.shape, ax, false));
  return record(out, 'sum', [x], (g) => {
    const gk = reshape(g, outShape(x.shape, ax, true));
    const gx = broadcastTo(gk, x.shape);
    gk.dispose();
    return [gx];
  });
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('mean', axes, x.rank);
  const n = ax.reduce((acc, a) => acc * x.shape[a], 1);
  const out = noGrad(() => {
    const s = sum(x, ax, keepDims);
    const m = mul(s, 1 / n);
    s.dispose();
    return m;
  });
  return record(out, 'mean', [x], (g) => {
    const gk = reshape(g, outShape(x.shape, ax, true));
    const gs = mul(gk, 1 / n);
    gk.dispose();
    const gx = broadcastTo(gs, x.shape);
    gs.dispose();
    return [gx];
  });
}

/** Sum of squares over `axes` in one pass (the per-tensor L2 norm is its square root). */
export function sumSquares(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sumSquares', axes, x.rank);
  const kept = reduceKeep('sumsq', x, ax);
  const out = keepDims ? kept : reshapeOwned(kept, outShape(x.shape, ax, false));
  return record(out, 'sumSquares', [x], (g) => {
    const gk = reshape(g, outShape(x.shape, ax, true));
    const two = mul(x, 2);
    const gx = mul(two, gk);
    two.dispose();
    gk.dispose();
    return [gx];
  });
}

function extremum(op: 'max' | 'min', x: Tensor, axes: number | number[] | undefined, keepDims: boolean): Tensor {
  const ax = normalizeAxes(op, axes, x.rank);
  const kept = reduceKeep(op, x, ax);
  const out = keepDims ? reshape(kept, kept.shape) : reshape(kept, outShape(x.shape, ax, false));
  const result = record(out, op, [x], (g) => {
    // The gradient is shared evenly between tied extrema (as torch.amax does).
    const mask = equal(x, kept);
    const count = sum(mask, ax, true);
    const gk = reshape(g, kept.shape);
    const share = div(gk, count);
    const gx = mul(mask, share);
    for (const t of [mask, count, gk, share]) t.dispose();
    return [gx];
  });
  if (!result.node) kept.dispose();
  return result;
}

export const max = (x: Tensor, axes?: number | number[], keepDims = false) => extremum('max', x, axes, keepDims);
export const min = (x: Tensor, axes?: number | number[], keepDims = false) => extremum('min', x, axes, keepDims);

function argExtremum(op: 'max' | 'min', x: Tensor, axis: number, keepDims: boolean): Tensor {
  assertDType(op === 'max' ? 'argmax' : 'argmin', x, 'f32');
  const a = normalizeAxis(op === 'max' ? 'argmax' : 'argmin', axis, x.rank);
  if (x.shape[a] === 0) throw new ShapeError(op === 'max' ? 'argmax' : 'argmin', 'empty axis');
  const shape = outShape(x.shape, [a], keepDims);
  const out = empty(shape, x.backend, 'i32');
  if (out.size > 0) x.backend.argReduce(op, x.storage, out.storage, numel(x.shape.slice(0, a)), x.shape[a], numel(x.shape.slice(a + 1)));
  return out;
}

/** Index (i32) of the first maximum along `axis`. */
export const argmax = (x: Tensor, axis = -1, keepDims = false) => argExtremum('max', x, axis, keepDims);
export const argmin = (x: Tensor, axis = -1, keepDims = false) => argExtremum('min', x, axis, keepDims);

/** Sums g down to `shape` (the adjoint of broadcasting `shape` up to g's shape). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new ShapeError('sumTo', `cannot sum [${g.shape}] to the larger shape [${shape}]`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    else if (shape[i - lead] !== g.shape[i]) throw new ShapeError('sumTo', `cannot sum [${g.shape}] to [${shape}]`);
  }
  const kept = reduceKeep('sum', g, axes);
  return reshapeOwned(kept, shape);
}

/** reshape that hands ownership over: the input is released (its storage lives on in the view). */
function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  const r = reshape(t, shape);
  t.dispose();
  return r;
}
