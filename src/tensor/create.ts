// Tensor creation on a backend.
import type { Backend, DType } from '../backend/backend.js';
import { ShapeError, Tensor } from './tensor.js';
import { checkShape, numel } from './shape.js';

/** An uninitialised tensor (kernels that overwrite every element write into these). */
export function empty(shape: readonly number[], backend: Backend, dtype: DType = 'f32'): Tensor {
  const s = checkShape('empty', shape);
  return new Tensor(backend, backend.alloc(numel(s), dtype), s, dtype);
}

export function tensor(
  data: ArrayLike<number>,
  shape: readonly number[] | undefined,
  backend: Backend,
  dtype: DType = 'f32',
): Tensor {
  const s = checkShape('tensor', shape ?? [data.length]);
  if (numel(s) !== data.length)
    throw new ShapeError('tensor', `${data.length} values do not fill shape [${s}] (${numel(s)} elements)`);
  const t = empty(s, backend, dtype);
  const arr =
    dtype === 'i32'
      ? data instanceof Int32Array
        ? data
        : Int32Array.from(data)
      : data instanceof Float32Array
        ? data
        : Float32Array.from(data);
  backend.upload(t.storage, arr);
  return t;
}

export function full(shape: readonly number[], value: number, backend: Backend): Tensor {
  const t = empty(shape, backend);
  if (t.size > 0) backend.fill(t.storage, t.size, value);
  return t;
}

export function zeros(shape: readonly number[], backend: Backend): Tensor {
  return full(shape, 0, backend);
}

export function ones(shape: readonly number[], backend: Backend): Tensor {
  return full(shape, 1, backend);
}

export function scalar(value: number, backend: Backend): Tensor {
  return full([], value, backend);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.backend);
}

export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, t.backend);
}
