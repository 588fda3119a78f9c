// Reductions over axes (kernels: reduce/argReduce); sumTo, the adjoint of broadcasting, lives in
// sum-to.ts and is re-exported here.
import { noGrad, ShapeError, Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, normalizeAxes, normalizeAxis, numel } from '../shape.js';
import { broadcastTo, reshape } from './view.js';
import { div, equal, mul } from './elementwise.js';
import { reduceKeep, viewOwned } from './sum-to.js';

export { sumTo } from './sum-to.js';

function outShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sum', axes, x.rank);
  const kept = reduceKeep('sum', x, ax);
  const out = keepDims ? kept : viewOwned(kept, outShape(x.shape, ax, false));
  return record(out, 'sum', [x], (g) => [broadcastTo(reshape(g, outShape(x.shape, ax, true)), x.shape)]);
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
  return record(out, 'mean', [x], (g) => [broadcastTo(mul(reshape(g, outShape(x.shape, ax, true)), 1 / n), x.shape)]);
}

/** Sum of squares over `axes` in one pass (the per-tensor L2 norm is its square root). */
export function sumSquares(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = normalizeAxes('sumSquares', axes, x.rank);
  const kept = reduceKeep('sumsq', x, ax);
  const out = keepDims ? kept : viewOwned(kept, outShape(x.shape, ax, false));
  return record(out, 'sumSquares', [x], (g) => {
    const gk = reshape(g, outShape(x.shape, ax, true));
    return [mul(mul(x, 2), gk)];
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
    return [mul(mask, div(reshape(g, kept.shape), count))];
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
  if (out.size > 0)
    x.backend.argReduce(
      op,
      x.storage,
      out.storage,
      numel(x.shape.slice(0, a)),
      x.shape[a],
      numel(x.shape.slice(a + 1)),
    );
  return out;
}

/** Index (i32) of the first maximum along `axis`. */
export const argmax = (x: Tensor, axis = -1, keepDims = false) => argExtremum('max', x, axis, keepDims);
export const argmin = (x: Tensor, axis = -1, keepDims = false) => argExtremum('min', x, axis, keepDims);
