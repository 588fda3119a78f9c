import type { Storage } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { rowWorkgroup } from './norm.js';

const FILE = 'softmax.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

export function softmax(rt: WebGPURuntime, x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
  if (rows === 0 || cols === 0) return;
  const wg = rowWorkgroup(cols);
  rt.dispatch(log ? 'logSoftmax' : 'softmax', rt.pipeline(FILE, 'softmax', { LOG: log ? 1 : 0, WG: wg }),
    [buf(x), buf(out)], new Uniform().u32(rows, cols, 0, 0).view(), grid1d(rows, 1));
}

export function softmaxGrad(rt: WebGPURuntime, y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
  if (rows === 0 || cols === 0) return;
  const wg = rowWorkgroup(cols);
  rt.dispatch(log ? 'logSoftmaxGrad' : 'softmaxGrad', rt.pipeline(FILE, 'softmaxGrad', { LOG: log ? 1 : 0, WG: wg }),
    [buf(y), buf(dy), buf(dx)], new Uniform().u32(rows, cols, 0, 0).view(), grid1d(rows, 1));
}
