import type { ElementwiseKernels, Storage } from '../backend.js';
import { BINARY_CODES, UNARY_CODES } from '../backend.js';
import { collapseDims, contiguousStrides, numel } from '../strided.js';
import { activeDims, grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'elementwise.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

const FLAT = paramLayout(FILE, 'Flat', [
  ['n', 'u32'],
  ['a', 'f32'],
  ['b', 'f32'],
  ['_pad', 'u32'],
]);
// collapseDims' 6 dimensions in two vec4s each (the last two lanes 0); binary leaves s2 at 0.
const STRIDED = paramLayout(FILE, 'Strided', [
  ['shape', 'array<vec4<u32>, 2>'],
  ['s0', 'array<vec4<u32>, 2>'],
  ['s1', 'array<vec4<u32>, 2>'],
  ['s2', 'array<vec4<u32>, 2>'],
  ['n', 'u32'],
]);

function stridedUniform(shape: number[], strides: number[][]): Uint8Array {
  return packParams(STRIDED, { shape, s0: strides[0], s1: strides[1], s2: strides[2] ?? [], n: numel(shape) });
}

export function elementwiseKernels(rt: WebGPURuntime): ElementwiseKernels {
  return {
    fill(out, n, value) {
      const u = packParams(FLAT, { n, a: value, b: 0 });
      rt.dispatch('fill', rt.pipeline(FILE, 'fill'), [buf(out)], u, grid1d(n));
    },
    unary(op, x, out, n, a, b) {
      const u = packParams(FLAT, { n, a, b });
      rt.dispatch(
        `unary(${op})`,
        rt.pipeline(FILE, 'unary', { OP: UNARY_CODES[op] }),
        [buf(x), buf(out)],
        u,
        grid1d(n),
      );
    },
    unaryGrad(op, x, y, dy, dx, n, a, b) {
      const u = packParams(FLAT, { n, a, b });
      rt.dispatch(
        `unaryGrad(${op})`,
        rt.pipeline(FILE, 'unaryGrad', { OP: UNARY_CODES[op] }),
        [buf(x), buf(y), buf(dy), buf(dx)],
        u,
        grid1d(n),
      );
    },
    binary(op, a, b, out, shape, aStrides, bStrides) {
      const c = collapseDims(shape, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch(
        `binary(${op})`,
        rt.pipeline(FILE, 'binary', { OP: BINARY_CODES[op], DIMS: activeDims(c.shape) }),
        [buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1]]),
        grid1d(n),
      );
    },
    where(cond, a, b, out, shape, cStrides, aStrides, bStrides) {
      const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch(
        'where',
        rt.pipeline(FILE, 'where_', { DIMS: activeDims(c.shape) }),
        [buf(cond), buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1], c.strides[2]]),
        grid1d(n),
      );
    },
  };
}
