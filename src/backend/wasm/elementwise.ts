import type { ElementwiseKernels } from '../backend.js';
import { BINARY_CODES, UNARY_CODES } from '../backend.js';
import { collapseDims, contiguousStrides, numel, splitLongRun } from '../strided.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves

export function elementwiseKernels(rt: WasmRuntime): ElementwiseKernels {
  return {
    fill(out, n, value) {
      rt.run('fill', [ptr(out), value], n, GRAIN);
    },
    unary(op, x, out, n, a, b) {
      rt.run('unary', [ptr(x), ptr(out), UNARY_CODES[op], a, b], n, GRAIN / 4);
    },
    unaryGrad(op, x, y, dy, dx, n, a, b) {
      rt.run('unaryGrad', [ptr(x), ptr(y), ptr(dy), ptr(dx), UNARY_CODES[op], a, b], n, GRAIN / 4);
    },
    binary(op, a, b, out, shape, aStrides, bStrides) {
      const contiguous = contiguousStrides(shape);
      const c = collapseDims(shape, aStrides, bStrides, contiguous);
      splitLongRun(c);
      const [pShape, pA, pB] = rt.scratchI32(c.shape, c.strides[0], c.strides[1]);
      const rows = numel(c.shape.slice(0, 5));
      rt.run(
        'binary',
        [ptr(a), ptr(b), ptr(out), BINARY_CODES[op], pShape, pA, pB],
        rows,
        Math.max(1, GRAIN / c.shape[5]),
      );
    },
    where(cond, a, b, out, shape, cStrides, aStrides, bStrides) {
      const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
      splitLongRun(c);
      const [pShape, pC, pA, pB] = rt.scratchI32(c.shape, c.strides[0], c.strides[1], c.strides[2]);
      const rows = numel(c.shape.slice(0, 5));
      rt.run('where', [ptr(cond), ptr(a), ptr(b), ptr(out), pShape, pC, pA, pB], rows, Math.max(1, GRAIN / c.shape[5]));
    },
  };
}
