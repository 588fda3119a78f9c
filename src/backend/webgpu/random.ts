import type { RandomKernels } from '../backend.js';
import { BackendError, RANDOM_CODES } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'random.wgsl';
const TWO32 = 2 ** 32;

export function randomKernels(rt: WebGPURuntime): RandomKernels {
  return {
    random(dist, out, n, seed, offset, a, b) {
      // Same split as src/backend/wasm/random.ts: seed and offset are integers below 2^53.
      if (!Number.isSafeInteger(seed) || seed < 0) throw new BackendError(`seed must be an integer in [0, 2^53), got ${seed}`, 'random');
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + n)) {
        throw new BackendError(`offset must be an integer with offset + n < 2^53, got ${offset}`, 'random');
      }
      if (n <= 0) return;
      const block = Math.floor(offset / 4);
      const phase = offset % 4;
      const u = new Uniform().u32(n, seed % TWO32, Math.floor(seed / TWO32), block % TWO32, Math.floor(block / TWO32), phase).f32(a, b);
      rt.dispatch(`random(${dist})`, rt.pipeline(FILE, 'random', { DIST: RANDOM_CODES[dist] }), [(out as GpuStorage).buffer],
        u.view(), grid1d(Math.ceil((phase + n) / 4)));
    },
  };
}
