// sumTo, the adjoint of broadcasting, and the axis-by-axis reduce under it and the reductions in
// reduce.ts. Apart from reduce.ts so that elementwise and view, whose backward rules need sumTo,
// import no module that imports them back. Results are plain views, not recorded reshapes: the
// callers record their own node (or none, as sumTo, which has no gradient of its own).
import type { ReduceOp } from '../../backend/backend.js';
import { ShapeError, Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { assertDType, numel, sameShape } from '../shape.js';

/** The same storage under another shape, not recorded for autograd. */
function view(t: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(t.backend, t, shape, t.dtype);
}

/** A view of t under `shape` that takes t's place: t is released (its storage lives on in the view). */
export function viewOwned(t: Tensor, shape: readonly number[]): Tensor {
  const r = view(t, shape);
  t.dispose();
  return r;
}

/** Reduces `axes` one at a time, keeping dims; returns a new tensor (or view) of the keep-dims shape. */
export function reduceKeep(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  assertDType(op, x, 'f32');
  let cur = x;
  const shape = [...x.shape];
  for (let k = axes.length - 1; k >= 0; k--) {
    const a = axes[k];
    const outer = numel(shape.slice(0, a));
    const len = shape[a];
    const inner = numel(shape.slice(a + 1));
    if (len === 0 && op !== 'sum' && op !== 'sumsq')
      throw new ShapeError(op, `cannot take the ${op} over an empty axis`);
    shape[a] = 1;
    const out = empty(shape, x.backend);
    if (out.size > 0)
      x.backend.reduce(
        k === axes.length - 1 ? op : op === 'sumsq' ? 'sum' : op,
        cur.storage,
        out.storage,
        outer,
        len,
        inner,
      );
    if (cur !== x) cur.dispose();
    cur = out;
  }
  return cur === x ? view(x, x.shape) : cur;
}

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
  return viewOwned(reduceKeep('sum', g, axes), shape);
}
