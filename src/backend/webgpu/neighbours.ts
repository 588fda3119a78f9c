import type { Storage } from '../backend.js';
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

export function topk(rt: WebGPURuntime, x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void {
  if (rows === 0 || k === 0) return;
  const u = new Uniform().u32(rows, cols, k, 0);
  rt.dispatch('topk', rt.pipeline(FILE, 'topk'), [buf(x), buf(outVal), buf(outIdx)], u.view(), grid1d(rows, 64));
}
