import type { LayoutKernels, Storage } from '../backend.js';
import { collapseDims, numel } from '../strided.js';
import { activeDims, grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { loopRanges } from './loop-budget.js';

const FILE = 'layout.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const COPY = paramLayout(FILE, 'Copy', [
  ['shape', 'array<vec4<u32>, 2>'],
  ['srcStrides', 'array<vec4<i32>, 2>'],
  ['dstStrides', 'array<vec4<i32>, 2>'],
  ['srcOffset', 'i32'],
  ['dstOffset', 'i32'],
  ['n', 'u32'],
  ['_pad', 'u32'],
]);
const ROWS = paramLayout(FILE, 'Rows', [
  ['nIdx', 'u32'],
  ['cols', 'u32'],
  ['rows', 'u32'],
  ['rowBlocks', 'u32'],
  ['i0', 'u32'],
  ['i1', 'u32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
]);
// Threads the scatter aims for: enough to fill a GPU, few enough that each idx pass stays cheap.
// Every thread walks all of idx, so the work is threads x nIdx: a software adapter, whose 2-16 CPU
// threads are filled by a few workgroups, aims for 1024. vit_cpu batch 8's scatter of 1024 indices
// into [1024, 256] on llvmpipe (64 -> 4 row blocks), submitted on its own: 45.2 -> 3.3 ms.
const SCATTER_THREADS = 16384;
const SCATTER_THREADS_SOFTWARE = 1024;

export function layoutKernels(rt: WebGPURuntime): LayoutKernels {
  return {
    copyStrided(src, dst, shape, srcOffset, srcStrides, dstOffset, dstStrides) {
      const n = numel(shape);
      if (n === 0) return;
      const c = collapseDims(shape, srcStrides, dstStrides);
      const u = packParams(COPY, {
        shape: c.shape,
        srcStrides: c.strides[0],
        dstStrides: c.strides[1],
        srcOffset,
        dstOffset,
        n,
      });
      rt.dispatch(
        'copyStrided',
        rt.pipeline(FILE, 'copyStrided', { DIMS: activeDims(c.shape) }),
        [buf(src), buf(dst)],
        u,
        grid1d(n),
      );
    },
    gatherRows(x, idx, out, nIdx, cols) {
      if (nIdx === 0 || cols === 0) return;
      const rows = Math.floor(x.length / cols);
      const u = packParams(ROWS, { nIdx, cols, rows, rowBlocks: 0, i0: 0, i1: nIdx });
      rt.dispatch('gatherRows', rt.pipeline(FILE, 'gatherRows'), [buf(x), buf(idx), buf(out)], u, grid1d(nIdx * cols));
    },
    scatterAddRows(dy, idx, dx, nIdx, rows, cols) {
      if (rows === 0 || cols === 0) return;
      const threads = rt.software ? SCATTER_THREADS_SOFTWARE : SCATTER_THREADS;
      const rowBlocks = Math.min(rows, Math.max(1, Math.ceil(threads / cols)));
      // A thread zeroes its rows of a block once, then walks idx: in ranges (./loop-budget.ts).
      for (const [i0, i1] of loopRanges(nIdx, 1, 1, Math.ceil(rows / rowBlocks))) {
        rt.dispatch(
          'scatterAddRows',
          rt.pipeline(FILE, 'scatterAddRows'),
          [buf(dy), buf(idx), buf(dx)],
          packParams(ROWS, { nIdx, cols, rows, rowBlocks, i0, i1 }),
          grid1d(rowBlocks * cols),
        );
      }
    },
  };
}
