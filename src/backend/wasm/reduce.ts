import type { ReduceKernels } from '../backend.js';
import { REDUCE_CODES } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

export function reduceKernels(rt: WasmRuntime): ReduceKernels {
  return {
    reduce(op, x, out, outer, len, inner) {
      const units = rt.exports.reduceUnits(outer, inner);
      const perUnit = inner === 1 ? len : len * Math.min(inner, 64);
      rt.run(
        'reduce',
        [ptr(x), ptr(out), REDUCE_CODES[op], outer, len, inner],
        units,
        Math.max(1, Math.ceil(32768 / perUnit)),
      );
    },
    argReduce(op, x, out, outer, len, inner) {
      rt.run(
        'argReduce',
        [ptr(x), ptr(out), op === 'max' ? 0 : 1, outer, len, inner],
        outer * inner,
        Math.max(1, Math.ceil(32768 / len)),
      );
    },
  };
}
