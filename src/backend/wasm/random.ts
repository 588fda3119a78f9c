import type { RandomKernels } from '../backend.js';
import { BackendError, RANDOM_CODES } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const TWO32 = 2 ** 32;

/**
 * Splits seed and stream offset into the u32 words the kernel takes: key (lo, hi), the first Philox
 * block (lo, hi) and the position inside it. Both may be integers up to 2^53 (JS numbers are exact
 * there); src/backend/webgpu/random.ts splits the same way.
 */
function philoxArgs(
  n: number,
  seed: number,
  offset: number,
): { key: [number, number]; base: [number, number]; phase: number; blocks: number } {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new BackendError(`seed must be an integer in [0, 2^53), got ${seed}`, 'random');
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + n)) {
    throw new BackendError(`offset must be an integer with offset + n < 2^53, got ${offset}`, 'random');
  }
  const block = Math.floor(offset / 4);
  const phase = offset % 4;
  return {
    key: [seed % TWO32, Math.floor(seed / TWO32)],
    base: [block % TWO32, Math.floor(block / TWO32)],
    phase,
    blocks: Math.ceil((phase + n) / 4),
  };
}

export function randomKernels(rt: WasmRuntime): RandomKernels {
  return {
    random(dist, out, n, seed, offset, a, b) {
      const r = philoxArgs(n, seed, offset);
      if (n <= 0) return;
      rt.run('random', [ptr(out), RANDOM_CODES[dist], n, ...r.key, ...r.base, r.phase, a, b], r.blocks, 1024);
    },
  };
}
