import { BackendError, type NeighboursKernels } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// y rows per cache block: about 128 KiB of packed values, so a block stays in L2 while every x
// tile of a thread streams over it.
const BLOCK_FLOATS = 32768;
const PANEL = 8;
const TILE = 4;

// Column panels per chunk of the self search: about 128 KiB of packed rows, which stay in L2 while
// every earlier row panel streams past them.
const CHUNK_FLOATS = 32768;
/** Multiply-adds below which the self search runs on one thread (a fork-join costs more). */
const GRAIN_SELF = 1 << 20;

export function neighboursKernels(rt: WasmRuntime): NeighboursKernels {
  return {
    /**
     * Packs all of y into a temporary (k rounded up to 8, × d floats, returned to the pool after) and
     * searches it in one parallel call: two fork-joins whatever k is.
     */
    nearestNeighbor(x, y, outVal, outIdx, m, k, d, excludeSelf) {
      if (m === 0) return;
      if (k === 0) {
        rt.f32(ptr(outVal), m).fill(-Infinity);
        rt.i32(ptr(outIdx), m).fill(-1);
        return;
      }
      const panels = Math.ceil(k / PANEL);
      const bytes = Math.max(16, panels * PANEL * d * 4);
      const packed = rt.allocBytes(bytes);
      try {
        rt.run('nnPack', [ptr(y), packed, d, k], panels, Math.max(1, Math.ceil(16384 / (PANEL * Math.max(d, 1)))));
        const blockPanels = Math.max(1, Math.floor(BLOCK_FLOATS / (PANEL * Math.max(d, 1))));
        const perTile = panels * PANEL * TILE * Math.max(d, 1);
        rt.run(
          'nnSearch',
          [ptr(x), packed, ptr(outVal), ptr(outIdx), m, k, d, excludeSelf ? 1 : 0, blockPanels],
          Math.ceil(m / TILE),
          Math.max(1, Math.ceil(65536 / perTile)),
        );
      } finally {
        rt.freeBytes(packed, bytes);
      }
    },
    /**
     * The symmetric self search (assembly/neighbours-self.ts): pack, search into one slot per thread,
     * merge per row. Three fork-joins; the slots are pool memory returned at the end.
     */
    nearestNeighborSelf(x, outVal, outIdx, cand, k, d, m, excludeSelf) {
      if (k === 0) return;
      if (!Number.isInteger(m) || m < 1)
        throw new BackendError(`m = ${m} must be a positive integer`, 'nearestNeighborSelf');
      const panels = Math.ceil(k / PANEL);
      const packedBytes = Math.max(16, panels * PANEL * d * 4);
      const chunkPanels = Math.max(1, Math.floor(CHUNK_FLOATS / (PANEL * Math.max(d, 1))));
      const chunks = Math.ceil(panels / chunkPanels);
      const threads = Math.max(1, Math.min(rt.threads, chunks, Math.floor((k * k * Math.max(d, 1)) / 2 / GRAIN_SELF)));
      const slot = rt.exports.nnSelfSlotBytes(k, m);
      const slotsBytes = 16 + threads * slot;
      const packed = rt.allocBytes(packedBytes);
      const counters = rt.allocBytes(16);
      const slots = rt.allocBytes(slotsBytes);
      try {
        rt.run('nnPack', [ptr(x), packed, d, k], panels, Math.max(1, Math.ceil(16384 / (PANEL * Math.max(d, 1)))));
        rt.i32(counters, 2).fill(0);
        // Slots start 16-byte aligned (the pool's blocks are) and slot sizes are multiples of 16.
        rt.run('nnSelfTop', [packed, slots, counters, k, d, m, excludeSelf ? 1 : 0, chunkPanels], threads, 1);
        const used = rt.i32(counters, 1)[0];
        rt.run(
          'nnSelfMerge',
          [slots, used, k, m, ptr(outVal), ptr(outIdx), cand ? ptr(cand) : 0],
          k,
          Math.max(1, Math.ceil(4096 / (m * used))),
        );
      } finally {
        rt.freeBytes(slots, slotsBytes);
        rt.freeBytes(counters, 16);
        rt.freeBytes(packed, packedBytes);
      }
    },
    nearestAmongCandidates(x, cand, outVal, outIdx, k, d, m) {
      if (k === 0) return;
      rt.run(
        'nnCandidates',
        [ptr(x), ptr(cand), ptr(outVal), ptr(outIdx), k, d, m],
        k,
        Math.max(1, Math.ceil(16384 / (Math.max(m, 1) * Math.max(d, 1)))),
      );
    },
    topk(x, outVal, outIdx, rows, cols, k) {
      if (rows === 0 || k === 0) return;
      rt.run(
        'topk',
        [ptr(x), ptr(outVal), ptr(outIdx), cols, k],
        rows,
        Math.max(1, Math.ceil(16384 / Math.max(1, cols * Math.min(k, 8)))),
      );
    },
  };
}
