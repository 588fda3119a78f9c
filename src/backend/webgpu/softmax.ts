import type { SoftmaxKernels, Storage } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { rowWorkgroup } from './norm.js';

const FILE = 'softmax.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

export function softmaxKernels(rt: WebGPURuntime): SoftmaxKernels {
  return {
    softmax(x, out, rows, cols, log) {
      if (rows === 0 || cols === 0) return;
      const wg = rowWorkgroup(cols);
      rt.dispatch(log ? 'logSoftmax' : 'softmax', rt.pipeline(FILE, 'softmax', { LOG: log ? 1 : 0, WG: wg }),
        [buf(x), buf(out)], new Uniform().u32(rows, cols, 0, 0).view(), grid1d(rows, 1));
    },
    softmaxGrad(y, dy, dx, rows, cols, log) {
      if (rows === 0 || cols === 0) return;
      const wg = rowWorkgroup(cols);
      rt.dispatch(log ? 'logSoftmaxGrad' : 'softmaxGrad', rt.pipeline(FILE, 'softmaxGrad', { LOG: log ? 1 : 0, WG: wg }),
        [buf(y), buf(dy), buf(dx)], new Uniform().u32(rows, cols, 0, 0).view(), grid1d(rows, 1));
    },
  };
}
