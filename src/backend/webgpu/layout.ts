import type { LayoutKernels, Storage } from '../backend.js';
import { collapseDims, numel } from '../strided.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'layout.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
// Threads the scatter aims for: enough to fill a GPU, few enough that each idx pass stays cheap.
const SCATTER_THREADS = 16384;

export function layoutKernels(rt: WebGPURuntime): LayoutKernels {
  return {
    copyStrided(src, dst, shape, srcOffset, srcStrides, dstOffset, dstStrides) {
      const n = numel(shape);
      if (n === 0) return;
      const c = collapseDims(shape, srcStrides, dstStrides);
      const u = new Uniform().u32(...c.shape, 0, 0).i32(...c.strides[0], 0, 0).i32(...c.strides[1], 0, 0)
        .i32(srcOffset, dstOffset).u32(n, 0);
      rt.dispatch('copyStrided', rt.pipeline(FILE, 'copyStrided'), [buf(src), buf(dst)], u.view(), grid1d(n));
    },
    gatherRows(x, idx, out, nIdx, cols) {
      if (nIdx === 0 || cols === 0) return;
      const rows = Math.floor(x.length / cols);
      const u = new Uniform().u32(nIdx, cols, rows, 0);
      rt.dispatch('gatherRows', rt.pipeline(FILE, 'gatherRows'), [buf(x), buf(idx), buf(out)], u.view(), grid1d(nIdx * cols));
    },
    scatterAddRows(dy, idx, dx, nIdx, rows, cols) {
      if (rows === 0 || cols === 0) return;
      const rowBlocks = Math.min(rows, Math.max(1, Math.ceil(SCATTER_THREADS / cols)));
      const u = new Uniform().u32(nIdx, cols, rows, rowBlocks);
      rt.dispatch('scatterAddRows', rt.pipeline(FILE, 'scatterAddRows'), [buf(dy), buf(idx), buf(dx)], u.view(),
        grid1d(rowBlocks * cols));
    },
  };
}
