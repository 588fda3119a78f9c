// AdamW and EMA on WebGPU: one thread per element, scalars derived on the host exactly as on wasm.
import type { OptimKernels, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { adamwScalars } from '../wasm/optim.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'optim.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

export function optimKernels(rt: WebGPURuntime): OptimKernels {
  return {
    adamw(param, grad, m, v, n, p) {
      const s = adamwScalars(p);
      const u = new Uniform().u32(n).f32(s.decay, s.beta1, s.omb1, s.beta2, s.omb2, s.stepSize, s.bc2Sqrt, s.eps);
      rt.dispatch('adamw', rt.pipeline(FILE, 'adamw'), [buf(param), buf(grad), buf(m), buf(v)], u.view(), grid1d(n));
    },
    ema(target, source, n, momentum) {
      if (!Number.isFinite(momentum)) throw new BackendError(`momentum must be finite, got ${momentum}`, 'ema');
      const u = new Uniform().u32(n).f32(momentum, 1 - momentum);
      rt.dispatch('ema', rt.pipeline(FILE, 'ema'), [buf(target), buf(source)], u.view(), grid1d(n));
    },
  };
}
