import type { ElementwiseKernels, Storage } from '../backend.js';
import { BINARY_CODES, UNARY_CODES } from '../backend.js';
import { collapseDims, contiguousStrides, numel } from '../strided.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'elementwise.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

function stridedUniform(shape: number[], strides: number[][]): Uint8Array {
  const u = new Uniform().u32(...shape, 0, 0);
  for (let j = 0; j < 3; j++) u.u32(...(strides[j] ?? [0, 0, 0, 0, 0, 0]), 0, 0);
  return u.u32(numel(shape)).view();
}

export function elementwiseKernels(rt: WebGPURuntime): ElementwiseKernels {
  return {
    fill(out, n, value) {
      const u = new Uniform().u32(n).f32(value, 0).u32(0);
      rt.dispatch('fill', rt.pipeline(FILE, 'fill'), [buf(out)], u.view(), grid1d(n));
    },
    unary(op, x, out, n, a, b) {
      const u = new Uniform().u32(n).f32(a, b).u32(0);
      rt.dispatch(`unary(${op})`, rt.pipeline(FILE, 'unary', { OP: UNARY_CODES[op] }), [buf(x), buf(out)], u.view(), grid1d(n));
    },
    unaryGrad(op, x, y, dy, dx, n, a, b) {
      const u = new Uniform().u32(n).f32(a, b).u32(0);
      rt.dispatch(`unaryGrad(${op})`, rt.pipeline(FILE, 'unaryGrad', { OP: UNARY_CODES[op] }),
        [buf(x), buf(y), buf(dy), buf(dx)], u.view(), grid1d(n));
    },
    binary(op, a, b, out, shape, aStrides, bStrides) {
      const c = collapseDims(shape, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch(`binary(${op})`, rt.pipeline(FILE, 'binary', { OP: BINARY_CODES[op] }), [buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1]]), grid1d(n));
    },
    where(cond, a, b, out, shape, cStrides, aStrides, bStrides) {
      const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch('where', rt.pipeline(FILE, 'where_'), [buf(cond), buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1], c.strides[2]]), grid1d(n));
    },
  };
}
