import type { LayoutKernels } from '../backend.js';
import { BackendError } from '../backend.js';
import { collapseDims, numel, splitLongRun } from '../strided.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves
// gatherRows reports a bad index position here: the last word of the runtime's scratch block,
// clear of the shape/stride arrays that scratchI32 writes from its start.
const BAD_SLOT = 4092;

export function layoutKernels(rt: WasmRuntime): LayoutKernels {
  return {
    copyStrided(src, dst, shape, srcOffset, srcStrides, dstOffset, dstStrides) {
      if (numel(shape) === 0) return;
      const c = collapseDims(shape, srcStrides, dstStrides);
      splitLongRun(c);
      const [pShape, pS, pD] = rt.scratchI32(c.shape, c.strides[0], c.strides[1]);
      const rows = numel(c.shape.slice(0, 5));
      rt.run(
        'copyStrided',
        [ptr(src), ptr(dst), pShape, srcOffset, pS, dstOffset, pD],
        rows,
        Math.max(1, GRAIN / c.shape[5]),
      );
    },
    gatherRows(x, idx, out, nIdx, cols) {
      if (nIdx === 0 || cols === 0) return;
      const rows = Math.floor(x.length / cols);
      const bad = rt.scratch + BAD_SLOT;
      const flag = rt.i32(bad, 1);
      flag[0] = -1;
      rt.run('gatherRows', [ptr(x), ptr(idx), ptr(out), cols, rows, bad], nIdx, Math.max(1, GRAIN / cols));
      if (flag[0] >= 0) {
        const pos = flag[0];
        const value = rt.i32(ptr(idx), idx.length)[pos];
        throw new BackendError(`index ${value} at position ${pos} is out of range for ${rows} rows`, 'gatherRows');
      }
    },
    scatterAddRows(dy, idx, dx, nIdx, rows, cols) {
      if (rows === 0 || cols === 0) return;
      // Enough row blocks that every thread gets units; each extra block costs one more pass over idx.
      const chunks = Math.ceil(cols / 64);
      const rowBlocks = Math.min(rows, Math.max(1, Math.ceil((2 * rt.threads) / chunks)));
      const units = rt.exports.scatterUnits(cols, rowBlocks);
      const perUnit = nIdx + Math.ceil(rows / rowBlocks) * Math.min(cols, 64);
      rt.run(
        'scatterAddRows',
        [ptr(dy), ptr(idx), ptr(dx), nIdx, rows, cols, rowBlocks],
        units,
        Math.max(1, Math.ceil(GRAIN / perUnit)),
      );
    },
  };
}
