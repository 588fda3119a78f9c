import type { SoftmaxKernels } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// Rows per thread below which splitting costs more than it saves (~16k elements of work).
const grain = (cols: number) => Math.max(1, Math.ceil(16384 / Math.max(1, cols)));

export function softmaxKernels(rt: WasmRuntime): SoftmaxKernels {
  return {
    softmax(x, out, rows, cols, log) {
      if (cols === 0) return;
      rt.run('softmax', [ptr(x), ptr(out), cols, log ? 1 : 0], rows, grain(cols));
    },
    softmaxGrad(y, dy, dx, rows, cols, log) {
      if (cols === 0) return;
      rt.run('softmaxGrad', [ptr(y), ptr(dy), ptr(dx), cols, log ? 1 : 0], rows, grain(cols));
    },
  };
}
