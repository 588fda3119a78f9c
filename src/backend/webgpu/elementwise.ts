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

let forcedPer: number | null = null;
/** Runs every later WebGPU elementwise kernel with `per` elements per invocation (null: by adapter); for tests. */
export function forceElementsPerInvocation(per: number | null): void {
  forcedPer = per;
}

/** Elements per invocation (PER in the WGSL): 4 on a software adapter, which pays per invocation; 1 on a GPU. */
export function elementsPerInvocation(software: boolean): number {
  return forcedPer ?? (software ? 4 : 1);
}

export function elementwiseKernels(rt: WebGPURuntime): ElementwiseKernels {
  const grid = (n: number) => grid1d(Math.ceil(n / elementsPerInvocation(rt.software)));
  return {
    fill(out, n, value) {
      const u = packParams(FLAT, { n, a: value, b: 0 });
      rt.dispatch(
        'fill',
        rt.pipeline(FILE, 'fill', { PER: elementsPerInvocation(rt.software) }),
        [buf(out)],
        u,
        grid(n),
      );
    },
    unary(op, x, out, n, a, b) {
      const u = packParams(FLAT, { n, a, b });
      rt.dispatch(
        `unary(${op})`,
        rt.pipeline(FILE, 'unary', { OP: UNARY_CODES[op], PER: elementsPerInvocation(rt.software) }),
        [buf(x), buf(out)],
        u,
        grid(n),
      );
    },
    unaryGrad(op, x, y, dy, dx, n, a, b) {
      const u = packParams(FLAT, { n, a, b });
      rt.dispatch(
        `unaryGrad(${op})`,
        rt.pipeline(FILE, 'unaryGrad', { OP: UNARY_CODES[op], PER: elementsPerInvocation(rt.software) }),
        [buf(x), buf(y), buf(dy), buf(dx)],
        u,
        grid(n),
      );
    },
    binary(op, a, b, out, shape, aStrides, bStrides) {
      const c = collapseDims(shape, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch(
        `binary(${op})`,
        rt.pipeline(FILE, 'binary', {
          OP: BINARY_CODES[op],
          DIMS: activeDims(c.shape),
          PER: elementsPerInvocation(rt.software),
        }),
        [buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1]]),
        grid(n),
      );
    },
    where(cond, a, b, out, shape, cStrides, aStrides, bStrides) {
      const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
      const n = numel(shape);
      rt.dispatch(
        'where',
        rt.pipeline(FILE, 'where_', { DIMS: activeDims(c.shape), PER: elementsPerInvocation(rt.software) }),
        [buf(cond), buf(a), buf(b), buf(out)],
        stridedUniform(c.shape, [c.strides[0], c.strides[1], c.strides[2]]),
        grid(n),
      );
    },
  };
}
