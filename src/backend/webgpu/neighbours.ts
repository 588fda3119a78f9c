import { BackendError, type Storage } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'neighbours.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const BM = 64; // x rows per workgroup (wgsl/neighbours.wgsl)

export function nearestNeighbor(rt: WebGPURuntime, x: Storage, y: Storage, outVal: Storage, outIdx: Storage,
  m: number, k: number, d: number, excludeSelf: boolean): void {
  if (m === 0) return;
  const u = new Uniform().u32(m, k, d, excludeSelf ? 1 : 0).f32(-Infinity).u32(0, 0, 0);
  rt.dispatch('nearestNeighbor', rt.pipeline(FILE, 'nearestNeighbor'), [buf(x), buf(y), buf(outVal), buf(outIdx)],
    u.view(), grid1d(m, BM));
}

const SELF_FILE = 'neighbours-self.wgsl';

/**
 * With m = 1 and no candidate list this is the one-sided search (its tiled kernel is the faster
 * on a GPU); otherwise one thread per row keeps its m best (wgsl/neighbours-self.wgsl).
 */
export function nearestNeighborSelf(rt: WebGPURuntime, x: Storage, outVal: Storage, outIdx: Storage, cand: Storage | null,
  k: number, d: number, m: number, excludeSelf: boolean): void {
  if (k === 0) return;
  if (!Number.isInteger(m) || m < 1) throw new BackendError(`m = ${m} must be a positive integer`, 'nearestNeighborSelf');
  if (!cand && m === 1) {
    nearestNeighbor(rt, x, x, outVal, outIdx, k, k, d, excludeSelf);
    return;
  }
  const listV = rt.alloc(k * m, 'f32');
  const listI = cand ? (cand as GpuStorage) : rt.alloc(k * m, 'i32');
  try {
    const u = new Uniform().u32(k, d, m, excludeSelf ? 1 : 0).f32(-Infinity).u32(0, 0, 0);
    rt.dispatch('nearestNeighborSelf', rt.pipeline(SELF_FILE, 'selfTopM'),
      [buf(x), buf(outVal), buf(outIdx), listV.buffer, listI.buffer], u.view(), grid1d(k, 64));
  } finally {
    rt.free(listV);
    if (!cand) rt.free(listI);
  }
}

export function nearestAmongCandidates(rt: WebGPURuntime, x: Storage, cand: Storage, outVal: Storage, outIdx: Storage,
  k: number, d: number, m: number): void {
  if (k === 0) return;
  const u = new Uniform().u32(k, d, m, 0).f32(-Infinity).u32(0, 0, 0);
  rt.dispatch('nearestAmongCandidates', rt.pipeline(SELF_FILE, 'candidates'), [buf(x), buf(cand), buf(outVal), buf(outIdx)],
    u.view(), grid1d(k, 64));
}

export function topk(rt: WebGPURuntime, x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void {
  if (rows === 0 || k === 0) return;
  const u = new Uniform().u32(rows, cols, k, 0);
  rt.dispatch('topk', rt.pipeline(FILE, 'topk'), [buf(x), buf(outVal), buf(outIdx)], u.view(), grid1d(rows, 64));
}
