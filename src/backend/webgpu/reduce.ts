import type { ReduceKernels, Storage } from '../backend.js';
import { REDUCE_CODES } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'reduce.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const P = paramLayout(FILE, 'P', [
  ['outer', 'u32'],
  ['len', 'u32'],
  ['inner', 'u32'],
  ['_pad', 'u32'],
]);

export function reduceKernels(rt: WebGPURuntime): ReduceKernels {
  return {
    reduce(op, x, out, outer, len, inner) {
      const u = packParams(P, { outer, len, inner });
      const constants = { OP: REDUCE_CODES[op] };
      if (inner === 1) {
        rt.dispatch(
          `reduce(${op})`,
          rt.pipeline(FILE, 'reduceRows', constants),
          [buf(x), buf(out)],
          u,
          grid1d(outer, 1),
        );
      } else {
        rt.dispatch(
          `reduce(${op})`,
          rt.pipeline(FILE, 'reduceCols', constants),
          [buf(x), buf(out)],
          u,
          grid1d(outer * inner),
        );
      }
    },
    argReduce(op, x, out, outer, len, inner) {
      const u = packParams(P, { outer, len, inner });
      rt.dispatch(
        `arg${op}`,
        rt.pipeline(FILE, 'argReduce', { OP: op === 'max' ? 0 : 1 }),
        [buf(x), buf(out)],
        u,
        grid1d(outer * inner),
      );
    },
  };
}
