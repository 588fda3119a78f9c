// AdamW and EMA on WebGPU: one thread per element, scalars derived on the host exactly as on wasm.
import type { AdamWParams, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { adamwScalars } from '../wasm/optim.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'optim.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

export function adamw(rt: WebGPURuntime, param: Storage, grad: Storage, m: Storage, v: Storage, n: number, p: AdamWParams): void {
  const s = adamwScalars(p);
  const u = new Uniform().u32(n).f32(s.decay, s.beta1, s.omb1, s.beta2, s.omb2, s.stepSize, s.bc2Sqrt, s.eps);
  rt.dispatch('adamw', rt.pipeline(FILE, 'adamw'), [buf(param), buf(grad), buf(m), buf(v)], u.view(), grid1d(n));
}

export function ema(rt: WebGPURuntime, target: Storage, source: Storage, n: number, momentum: number): void {
  if (!Number.isFinite(momentum)) throw new BackendError(`momentum must be finite, got ${momentum}`, 'ema');
  const u = new Uniform().u32(n).f32(momentum, 1 - momentum);
  rt.dispatch('ema', rt.pipeline(FILE, 'ema'), [buf(target), buf(source)], u.view(), grid1d(n));
}
