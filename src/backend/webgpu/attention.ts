import type { AttentionKernels, AttentionParams, Storage } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'attention.wgsl';
const WG = 64; // wgsl/attention.wgsl's workgroup size
const buf = (s: Storage) => (s as GpuStorage).buffer;

const P = paramLayout(FILE, 'P', [
  ['tokens', 'u32'],
  ['heads', 'u32'],
  ['dh', 'u32'],
  ['rows', 'u32'],
  ['scale', 'f32'],
  ['_a', 'u32'],
  ['_b', 'u32'],
  ['_c', 'u32'],
]);

function uniform(p: AttentionParams): Uint8Array {
  return packParams(P, {
    tokens: p.tokens,
    heads: p.heads,
    dh: p.headDim,
    rows: p.batch * p.heads * p.tokens,
    scale: p.scale,
  });
}

const empty = (p: AttentionParams) => p.batch * p.heads * p.tokens === 0 || p.headDim === 0;

export function attentionKernels(rt: WebGPURuntime): AttentionKernels {
  return {
    attention(qkv, out, probs, p) {
      if (empty(p)) return;
      rt.dispatch(
        'attention',
        rt.pipeline(FILE, 'attention'),
        [buf(qkv), buf(out), buf(probs)],
        uniform(p),
        grid1d(p.batch * p.heads * p.tokens, WG),
      );
    },
    attentionGrad(qkv, probs, dout, dqkv, p) {
      if (empty(p)) return;
      const rows = p.batch * p.heads * p.tokens;
      // dS between the two passes; the pool hands it out again only after the submit that uses it.
      const ds = rt.alloc(rows * p.tokens, 'f32');
      try {
        const u = uniform(p);
        rt.dispatch(
          'attentionGradQ',
          rt.pipeline(FILE, 'attentionGradQ'),
          [buf(qkv), buf(probs), buf(dout), buf(ds), buf(dqkv)],
          u,
          grid1d(rows, WG),
        );
        rt.dispatch(
          'attentionGradKV',
          rt.pipeline(FILE, 'attentionGradKV'),
          [buf(qkv), buf(probs), buf(dout), buf(ds), buf(dqkv)],
          u,
          grid1d(rows, WG),
        );
      } finally {
        rt.free(ds);
      }
    },
  };
}
