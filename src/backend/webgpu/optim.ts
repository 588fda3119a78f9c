// AdamW, EMA and the gradient clip on WebGPU: one thread per element, scalars derived on the host exactly as on wasm.
import type { OptimKernels, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { adamwScalars, checkClip, CLIP_EPS } from '../wasm/optim.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'optim.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const ADAM = paramLayout(FILE, 'AdamP', [
  ['n', 'u32'],
  ['decay', 'f32'],
  ['beta1', 'f32'],
  ['omb1', 'f32'],
  ['beta2', 'f32'],
  ['omb2', 'f32'],
  ['stepSize', 'f32'],
  ['bc2Sqrt', 'f32'],
  ['eps', 'f32'],
]);
const EMA = paramLayout(FILE, 'EmaP', [
  ['n', 'u32'],
  ['momentum', 'f32'],
  ['oneMinus', 'f32'],
  ['_pad', 'u32'],
]);

const CLIP = paramLayout(FILE, 'ClipP', [
  ['n', 'u32'],
  ['clip', 'f32'],
  ['eps', 'f32'],
  ['lo', 'f32'],
  ['hi', 'f32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);

export function optimKernels(rt: WebGPURuntime): OptimKernels {
  return {
    adamw(param, grad, m, v, n, p) {
      const s = adamwScalars(p);
      const u = packParams(ADAM, {
        n,
        decay: s.decay,
        beta1: s.beta1,
        omb1: s.omb1,
        beta2: s.beta2,
        omb2: s.omb2,
        stepSize: s.stepSize,
        bc2Sqrt: s.bc2Sqrt,
        eps: s.eps,
      });
      rt.dispatch('adamw', rt.pipeline(FILE, 'adamw'), [buf(param), buf(grad), buf(m), buf(v)], u, grid1d(n));
    },
    ema(target, source, n, momentum) {
      if (!Number.isFinite(momentum)) throw new BackendError(`momentum must be finite, got ${momentum}`, 'ema');
      const u = packParams(EMA, { n, momentum, oneMinus: 1 - momentum });
      rt.dispatch('ema', rt.pipeline(FILE, 'ema'), [buf(target), buf(source)], u, grid1d(n));
    },
    clipScale(grad, ss, out, norm, n, clip) {
      checkClip(clip);
      const u = packParams(CLIP, { n, clip, eps: CLIP_EPS, lo: -Infinity, hi: 1 });
      // at least one thread: an empty gradient still gets its norm written
      rt.dispatch(
        'clipScale',
        rt.pipeline(FILE, 'clipScale'),
        [buf(grad), buf(ss), buf(out), buf(norm)],
        u,
        grid1d(Math.max(1, n)),
      );
    },
  };
}
