import type { Storage } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// y rows per cache block: about 128 KiB of packed values, so a block stays in L2 while every x
// tile of a thread streams over it.
const BLOCK_FLOATS = 32768;
const PANEL = 8;
const TILE = 4;

/**
 * Packs all of y into a temporary (k rounded up to 8, × d floats, returned to the pool after) and
 * searches it in one parallel call: two fork-joins whatever k is.
 */
export function nearestNeighbor(rt: WasmRuntime, x: Storage, y: Storage, outVal: Storage, outIdx: Storage,
  m: number, k: number, d: number, excludeSelf: boolean): void {
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
    rt.run('nnSearch', [ptr(x), packed, ptr(outVal), ptr(outIdx), m, k, d, excludeSelf ? 1 : 0, blockPanels],
      Math.ceil(m / TILE), Math.max(1, Math.ceil(65536 / perTile)));
  } finally {
    rt.freeBytes(packed, bytes);
  }
}

export function topk(rt: WasmRuntime, x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void {
  if (rows === 0 || k === 0) return;
  rt.run('topk', [ptr(x), ptr(outVal), ptr(outIdx), cols, k], rows, Math.max(1, Math.ceil(16384 / Math.max(1, cols * Math.min(k, 8)))));
}
