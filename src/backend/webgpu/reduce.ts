import type { ReduceKernels, Storage } from '../backend.js';
import { REDUCE_CODES } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { loopRanges } from './loop-budget.js';

const FILE = 'reduce.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const P = paramLayout(FILE, 'P', [
  ['outer', 'u32'],
  ['len', 'u32'],
  ['inner', 'u32'],
  ['l0', 'u32'],
  ['l1', 'u32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);

/** Longest row reduceRowsSerial walks: llvmpipe ends an invocation's loops after about 65535 iterations. */
export const SERIAL_MAX_LEN = 16384;
let forcedRows: boolean | null = null;
/** Forces reductions of rows (inner == 1) onto the serial kernel (true), the tree (false) or the choice (null); for tests. */
export function forceReduceRowsSerial(serial: boolean | null): void {
  forcedRows = serial;
}

/**
 * Whether rows are reduced one invocation per row (reduceRowsSerial) rather than one workgroup per
 * row: on software adapters (barriers are the cost there) with rows enough to fill the SIMD lanes
 * of a workgroup and short enough for one lane to walk.
 */
export function reduceRowsSerial(software: boolean, outer: number, len: number): boolean {
  if (forcedRows !== null) return forcedRows;
  return software && outer >= 64 && len <= SERIAL_MAX_LEN;
}

export function reduceKernels(rt: WebGPURuntime): ReduceKernels {
  return {
    reduce(op, x, out, outer, len, inner) {
      const u = packParams(P, { outer, len, inner, l0: 0, l1: len });
      const constants = { OP: REDUCE_CODES[op] };
      if (inner === 1 && reduceRowsSerial(rt.software, outer, len)) {
        rt.dispatch(
          `reduce(${op})`,
          rt.pipeline(FILE, 'reduceRowsSerial', constants),
          [buf(x), buf(out)],
          u,
          grid1d(outer, 64),
        );
      } else if (inner === 1) {
        rt.dispatch(
          `reduce(${op})`,
          rt.pipeline(FILE, 'reduceRows', constants),
          [buf(x), buf(out)],
          u,
          grid1d(outer, 1),
        );
      } else {
        for (const [l0, l1] of loopRanges(len, 1)) {
          rt.dispatch(
            `reduce(${op})`,
            rt.pipeline(FILE, 'reduceCols', constants),
            [buf(x), buf(out)],
            packParams(P, { outer, len, inner, l0, l1 }),
            grid1d(outer * inner),
          );
        }
      }
    },
    argReduce(op, x, out, outer, len, inner) {
      for (const [l0, l1] of loopRanges(len, 1)) {
        rt.dispatch(
          `arg${op}`,
          rt.pipeline(FILE, 'argReduce', { OP: op === 'max' ? 0 : 1 }),
          [buf(x), buf(out)],
          packParams(P, { outer, len, inner, l0, l1 }),
          grid1d(outer * inner),
        );
      }
    },
  };
}
