// Elementwise ops with broadcasting, and their backward rules (kernels: fill/unary/unaryGrad/binary/where).
import type { BinaryOp, UnaryOp } from '../../backend/backend.js';
import { ShapeError, Tensor } from '../tensor.js';
import { empty, full } from '../create.js';
import { record, setGradientAdd } from '../autograd.js';
import { assertDType, assertSameBackend, broadcastShapes, broadcastStrides } from '../shape.js';
import { sumTo } from './sum-to.js';

export type TensorOrNumber = Tensor | number;

// ---- unary --------------------------------------------------------------------------------

function unaryOp(op: UnaryOp, x: Tensor, a = 0, b = 0): Tensor {
  assertDType(op, x, 'f32');
  const out = empty(x.shape, x.backend);
  if (x.size > 0) x.backend.unary(op, x.storage, out.storage, x.size, a, b);
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, x.backend);
    if (x.size > 0) x.backend.unaryGrad(op, x.storage, out.storage, g.storage, dx.storage, x.size, a, b);
    return [dx];
  });
}

export const neg = (x: Tensor) => unaryOp('neg', x);
export const exp = (x: Tensor) => unaryOp('exp', x);
export const log = (x: Tensor) => unaryOp('log', x);
export const sqrt = (x: Tensor) => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor) => unaryOp('rsqrt', x);
export const abs = (x: Tensor) => unaryOp('abs', x);
export const relu = (x: Tensor) => unaryOp('relu', x);
/** Exact (erf) GELU. */
export const gelu = (x: Tensor) => unaryOp('gelu', x);
export const tanh = (x: Tensor) => unaryOp('tanh', x);
export const sigmoid = (x: Tensor) => unaryOp('sigmoid', x);
export const square = (x: Tensor) => unaryOp('square', x);
export const reciprocal = (x: Tensor) => unaryOp('recip', x);
/** a·x + b in one pass. */
export const affine = (x: Tensor, a: number, b: number) => unaryOp('affine', x, a, b);
export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (!(min <= max)) throw new ShapeError('clamp', `min ${min} must not exceed max ${max}`);
  return unaryOp('clamp', x, min, max);
}

// ---- binary -------------------------------------------------------------------------------

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  assertSameBackend(op, a, b);
  assertDType(op, a, 'f32', 'first operand');
  assertDType(op, b, 'f32', 'second operand');
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = empty(shape, a.backend);
  if (out.size > 0) {
    a.backend.binary(
      op,
      a.storage,
      b.storage,
      out.storage,
      shape,
      broadcastStrides(a.shape, shape),
      broadcastStrides(b.shape, shape),
    );
  }
  return out;
}

function scalarLike(v: number, like: Tensor): Tensor {
  return full([], v, like.backend);
}

function pair(op: string, a: TensorOrNumber, b: TensorOrNumber): [Tensor, Tensor] {
  if (a instanceof Tensor && b instanceof Tensor) return [a, b];
  if (a instanceof Tensor) return [a, scalarLike(b as number, a)];
  if (b instanceof Tensor) return [scalarLike(a, b), b];
  throw new ShapeError(op, 'needs at least one tensor operand');
}

export function add(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, 1, b);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, 1, a);
  const [x, y] = pair('add', a, b);
  const out = binaryOp('add', x, y);
  return record(out, 'add', [x, y], (g) => [sumTo(g, x.shape), sumTo(g, y.shape)]);
}

// autograd sums gradients with add but cannot import it: this module imports autograd (record).
setGradientAdd(add);

export function sub(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, 1, -b);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, -1, a);
  const [x, y] = pair('sub', a, b);
  const out = binaryOp('sub', x, y);
  return record(out, 'sub', [x, y], (g) => {
    const gy = sumTo(neg(g), y.shape);
    return [sumTo(g, x.shape), gy];
  });
}

export function mul(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, b, 0);
  if (typeof a === 'number' && b instanceof Tensor) return affine(b, a, 0);
  const [x, y] = pair('mul', a, b);
  const out = binaryOp('mul', x, y);
  return record(out, 'mul', [x, y], (g) => [
    x.requiresGrad ? sumTo(binaryOp('mul', g, y), x.shape) : null,
    y.requiresGrad ? sumTo(binaryOp('mul', g, x), y.shape) : null,
  ]);
}

export function div(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return affine(a, 1 / b, 0);
  const [x, y] = pair('div', a, b);
  const out = binaryOp('div', x, y);
  // A number operand became a scalar tensor; the backward rule never reads its storage.
  if (!(a instanceof Tensor)) x.dispose();
  return record(out, 'div', [x, y], (g) => {
    const gx = x.requiresGrad ? sumTo(binaryOp('div', g, y), x.shape) : null;
    // d(x/y)/dy = −(x/y)/y
    const gy = y.requiresGrad ? sumTo(unaryOp('neg', binaryOp('div', binaryOp('mul', g, out), y)), y.shape) : null;
    return [gx, gy];
  });
}

/** Elementwise max; on ties the gradient goes to the first operand. */
export function maximum(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return minmax('max', a, b);
}

/** Elementwise min; on ties the gradient goes to the first operand. */
export function minimum(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return minmax('min', a, b);
}

function minmax(op: 'max' | 'min', a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof a === 'number' && b instanceof Tensor) return minmax(op, b, a);
  if (typeof b === 'number' && a instanceof Tensor) {
    return op === 'max' ? unaryOp('clamp', a, b, Infinity) : unaryOp('clamp', a, -Infinity, b);
  }
  const [x, y] = pair(op === 'max' ? 'maximum' : 'minimum', a, b);
  const out = binaryOp(op, x, y);
  return record(out, op === 'max' ? 'maximum' : 'minimum', [x, y], (g) => {
    const mask = binaryOp(op === 'max' ? 'ge' : 'le', x, y);
    const zero = scalarLike(0, g);
    const gx = x.requiresGrad ? sumTo(whereRaw(mask, g, zero), x.shape) : null;
    const gy = y.requiresGrad ? sumTo(whereRaw(mask, zero, g), y.shape) : null;
    return [gx, gy];
  });
}

/** x^p elementwise; p a number or a tensor (broadcast). */
export function pow(x: Tensor, p: TensorOrNumber): Tensor {
  if (typeof p === 'number') return unaryOp('pow', x, p);
  const out = binaryOp('pow', x, p);
  return record(out, 'pow', [x, p], (g) => {
    let gx: Tensor | null = null;
    let gp: Tensor | null = null;
    if (x.requiresGrad) {
      // p · x^(p−1) = p · out / x, written without dividing by x (x may be 0)
      const xp = binaryOp('pow', x, affine(p, 1, -1));
      gx = sumTo(binaryOp('mul', g, binaryOp('mul', xp, p)), x.shape);
    }
    if (p.requiresGrad) {
      gp = sumTo(binaryOp('mul', g, binaryOp('mul', out, unaryOp('log', x))), p.shape);
    }
    return [gx, gp];
  });
}

function compare(op: 'gt' | 'ge' | 'lt' | 'le' | 'eq', a: TensorOrNumber, b: TensorOrNumber): Tensor {
  const [x, y] = pair(op, a, b);
  const out = binaryOp(op, x, y);
  if (!(a instanceof Tensor)) x.dispose();
  if (!(b instanceof Tensor)) y.dispose();
  return out;
}
/** 1 where a > b, else 0 (no gradient). */
export const greater = (a: TensorOrNumber, b: TensorOrNumber) => compare('gt', a, b);
export const greaterEqual = (a: TensorOrNumber, b: TensorOrNumber) => compare('ge', a, b);
export const less = (a: TensorOrNumber, b: TensorOrNumber) => compare('lt', a, b);
export const lessEqual = (a: TensorOrNumber, b: TensorOrNumber) => compare('le', a, b);
export const equal = (a: TensorOrNumber, b: TensorOrNumber) => compare('eq', a, b);

// ---- where --------------------------------------------------------------------------------

function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  assertSameBackend('where', cond, a, b);
  assertDType('where', cond, 'f32', 'condition');
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape, a.backend);
  if (out.size > 0) {
    a.backend.where(
      cond.storage,
      a.storage,
      b.storage,
      out.storage,
      shape,
      broadcastStrides(cond.shape, shape),
      broadcastStrides(a.shape, shape),
      broadcastStrides(b.shape, shape),
    );
  }
  return out;
}

/** cond ≠ 0 ? a : b, broadcasting all three; gradients flow to a and b, none to cond. */
export function where(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
  const x = a instanceof Tensor ? a : scalarLike(a, like);
  const y = b instanceof Tensor ? b : scalarLike(b, like);
  const out = whereRaw(cond, x, y);
  if (x !== a) x.dispose();
  if (y !== b) y.dispose();
  return record(out, 'where', [x, y], (g) => {
    const zero = scalarLike(0, g);
    const gx = x.requiresGrad ? sumTo(whereRaw(cond, g, zero), x.shape) : null;
    const gy = y.requiresGrad ? sumTo(whereRaw(cond, zero, g), y.shape) : null;
    return [gx, gy];
  });
}
