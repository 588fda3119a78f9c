import type { SoftmaxKernels, Storage } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { rowWorkgroup } from './norm.js';

const FILE = 'softmax.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const P = paramLayout(FILE, 'P', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['_a', 'u32'],
  ['_b', 'u32'],
]);

export function softmaxKernels(rt: WebGPURuntime): SoftmaxKernels {
  return {
    softmax(x, out, rows, cols, log) {
      if (rows === 0 || cols === 0) return;
      const wg = rowWorkgroup(cols);
      rt.dispatch(
        log ? 'logSoftmax' : 'softmax',
        rt.pipeline(FILE, 'softmax', { LOG: log ? 1 : 0, WG: wg }),
        [buf(x), buf(out)],
        packParams(P, { rows, cols }),
        grid1d(rows, 1),
      );
    },
    softmaxGrad(y, dy, dx, rows, cols, log) {
      if (rows === 0 || cols === 0) return;
      const wg = rowWorkgroup(cols);
      rt.dispatch(
        log ? 'logSoftmaxGrad' : 'softmaxGrad',
        rt.pipeline(FILE, 'softmaxGrad', { LOG: log ? 1 : 0, WG: wg }),
        [buf(y), buf(dy), buf(dx)],
        packParams(P, { rows, cols }),
        grid1d(rows, 1),
      );
    },
  };
}
