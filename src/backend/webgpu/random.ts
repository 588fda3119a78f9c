import type { RandomKernels } from '../backend.js';
import { BackendError, RANDOM_CODES } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'random.wgsl';
const TWO32 = 2 ** 32;
const P = paramLayout(FILE, 'P', [
  ['n', 'u32'],
  ['k0', 'u32'],
  ['k1', 'u32'],
  ['baseLo', 'u32'],
  ['baseHi', 'u32'],
  ['phase', 'u32'],
  ['a', 'f32'],
  ['b', 'f32'],
]);

export function randomKernels(rt: WebGPURuntime): RandomKernels {
  return {
    random(dist, out, n, seed, offset, a, b) {
      // Same split as src/backend/wasm/random.ts: seed and offset are integers below 2^53.
      if (!Number.isSafeInteger(seed) || seed < 0)
        throw new BackendError(`seed must be an integer in [0, 2^53), got ${seed}`, 'random');
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + n)) {
        throw new BackendError(`offset must be an integer with offset + n < 2^53, got ${offset}`, 'random');
      }
      if (n <= 0) return;
      const block = Math.floor(offset / 4);
      const phase = offset % 4;
      const u = packParams(P, {
        n,
        k0: seed % TWO32,
        k1: Math.floor(seed / TWO32),
        baseLo: block % TWO32,
        baseHi: Math.floor(block / TWO32),
        phase,
        a,
        b,
      });
      rt.dispatch(
        `random(${dist})`,
        rt.pipeline(FILE, 'random', { DIST: RANDOM_CODES[dist] }),
        [(out as GpuStorage).buffer],
        u,
        grid1d(Math.ceil((phase + n) / 4)),
      );
    },
  };
}
