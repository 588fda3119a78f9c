// AdamW and EMA on the wasm backend: the host derives the per-step scalars in f64 (adamwScalars,
// shared with the WebGPU side so both round them identically) and the kernel makes one SIMD pass,
// split across threads for large buffers.
import type { AdamWParams, OptimKernels } from '../backend.js';
import { BackendError } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves

export interface AdamWScalars {
  decay: number;
  beta1: number;
  omb1: number;
  beta2: number;
  omb2: number;
  stepSize: number;
  bc2Sqrt: number;
  eps: number;
}

/** torch.optim.AdamW's per-step scalars, in f64 as PyTorch computes them on the host. */
export function adamwScalars(p: AdamWParams): AdamWScalars {
  if (!Number.isInteger(p.step) || p.step < 1)
    throw new BackendError(`step must be an integer ≥ 1, got ${p.step}`, 'adamw');
  for (const [k, b] of [
    ['beta1', p.beta1],
    ['beta2', p.beta2],
  ] as const) {
    if (!(b >= 0 && b < 1)) throw new BackendError(`${k} must be in [0, 1), got ${b}`, 'adamw');
  }
  if (!Number.isFinite(p.lr) || !Number.isFinite(p.weightDecay) || !(p.eps >= 0)) {
    throw new BackendError(
      `lr, weightDecay must be finite and eps ≥ 0 (lr ${p.lr}, weightDecay ${p.weightDecay}, eps ${p.eps})`,
      'adamw',
    );
  }
  return {
    decay: 1 - p.lr * p.weightDecay,
    beta1: p.beta1,
    omb1: 1 - p.beta1,
    beta2: p.beta2,
    omb2: 1 - p.beta2,
    stepSize: p.lr / (1 - p.beta1 ** p.step),
    bc2Sqrt: Math.sqrt(1 - p.beta2 ** p.step),
    eps: p.eps,
  };
}

/** DINO's clip_gradients adds this to each norm before dividing (clip / (‖g‖ + 1e-6)). */
export const CLIP_EPS = 1e-6;

/** clip ≥ 0, as clipGradients takes it (0 zeroes the gradient; +∞ leaves it as it is). */
export function checkClip(clip: number): void {
  if (!(clip >= 0)) throw new BackendError(`clip must be ≥ 0, got ${clip}`, 'clipScale');
}

export function optimKernels(rt: WasmRuntime): OptimKernels {
  return {
    adamw(param, grad, m, v, n, p) {
      const s = adamwScalars(p);
      rt.run(
        'adamw',
        [
          ptr(param),
          ptr(grad),
          ptr(m),
          ptr(v),
          s.decay,
          s.beta1,
          s.omb1,
          s.beta2,
          s.omb2,
          s.stepSize,
          s.bc2Sqrt,
          s.eps,
        ],
        n,
        GRAIN,
      );
    },
    ema(target, source, n, momentum) {
      if (!Number.isFinite(momentum)) throw new BackendError(`momentum must be finite, got ${momentum}`, 'ema');
      rt.run('ema', [ptr(target), ptr(source), momentum, 1 - momentum], n, GRAIN);
    },
    clipScale(grad, ss, out, norm, n, clip) {
      checkClip(clip);
      const [g, s, o, nrm] = [ptr(grad), ptr(ss), ptr(out), ptr(norm)];
      // An empty gradient still has a norm (0) to write: the kernel writes it for the thread at 0.
      if (n === 0) rt.exports.clipScale(g, s, o, nrm, clip, CLIP_EPS, -Infinity, 1, 0, 0);
      else rt.run('clipScale', [g, s, o, nrm, clip, CLIP_EPS, -Infinity, 1], n, GRAIN);
    },
  };
}
