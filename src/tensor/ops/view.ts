// Ops that only relabel a contiguous storage (no kernel): reshape and friends, and broadcastTo.
import { ShapeError, Tensor } from '../tensor.js';
import { full } from '../create.js';
import { record } from '../autograd.js';
import { broadcastShapes, broadcastStrides, checkShape, normalizeAxis, numel, sameShape } from '../shape.js';
import { sumTo } from './sum-to.js';

/** Same storage, new shape; one dim may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) {
    if (s.indexOf(-1, free + 1) >= 0) throw new ShapeError('reshape', `at most one -1 in [${shape}]`);
    const rest = numel(s.filter((_, i) => i !== free));
    if (rest === 0 || x.size % rest !== 0)
      throw new ShapeError('reshape', `cannot infer -1 reshaping [${x.shape}] to [${shape}]`);
    s[free] = x.size / rest;
  }
  checkShape('reshape', s);
  if (numel(s) !== x.size)
    throw new ShapeError('reshape', `cannot reshape [${x.shape}] (${x.size} elements) to [${shape}]`);
  const out = new Tensor(x.backend, x, s, x.dtype);
  return record(out, 'reshape', [x], (g) => [new Tensor(g.backend, g, x.shape, g.dtype)]);
}

export function flatten(x: Tensor, startAxis = 0): Tensor {
  const a = x.rank === 0 ? 0 : normalizeAxis('flatten', startAxis, x.rank);
  return reshape(x, [...x.shape.slice(0, a), -1]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis('unsqueeze', axis < 0 ? axis + x.rank + 1 : axis, x.rank + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normalizeAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) throw new ShapeError('squeeze', `axis ${axis} has size ${x.shape[a]}, not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

/** Materialises x broadcast to `shape` (numpy rules). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return reshape(x, shape);
  const zero = full([], 0, x.backend);
  const out = new Tensor(x.backend, x.backend.alloc(numel(shape), 'f32'), shape);
  // x + 0 through the strided binary kernel is the broadcast copy.
  if (out.size > 0) {
    const target = broadcastShapes('broadcastTo', x.shape, shape);
    if (!sameShape(target, shape)) throw new ShapeError('broadcastTo', `[${x.shape}] cannot broadcast to [${shape}]`);
    x.backend.binary(
      'add',
      x.storage,
      zero.storage,
      out.storage,
      [...shape],
      broadcastStrides(x.shape, shape),
      shape.map(() => 0),
    );
  }
  zero.dispose();
  return record(out, 'broadcastTo', [x], (g) => [sumTo(g, x.shape)]);
}
