import type { AttentionKernels, AttentionParams, Storage } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'attention.wgsl';
const WG = 64; // wgsl/attention.wgsl's workgroup size
const buf = (s: Storage) => (s as GpuStorage).buffer;

function uniform(p: AttentionParams): Uint8Array {
  return new Uniform().u32(p.tokens, p.heads, p.headDim, p.batch * p.heads * p.tokens).f32(p.scale).u32(0, 0, 0).view();
}

const empty = (p: AttentionParams) => p.batch * p.heads * p.tokens === 0 || p.headDim === 0;

export function attentionKernels(rt: WebGPURuntime): AttentionKernels {
  return {
    attention(qkv, out, probs, p) {
      if (empty(p)) return;
      rt.dispatch('attention', rt.pipeline(FILE, 'attention'), [buf(qkv), buf(out), buf(probs)], uniform(p),
        grid1d(p.batch * p.heads * p.tokens, WG));
    },
    attentionGrad(qkv, probs, dout, dqkv, p) {
      if (empty(p)) return;
      const rows = p.batch * p.heads * p.tokens;
      // dS between the two passes; the pool hands it out again only after the submit that uses it.
      const ds = rt.alloc(rows * p.tokens, 'f32');
      try {
        const u = uniform(p);
        rt.dispatch('attentionGradQ', rt.pipeline(FILE, 'attentionGradQ'), [buf(qkv), buf(probs), buf(dout), buf(ds), buf(dqkv)], u,
          grid1d(rows, WG));
        rt.dispatch('attentionGradKV', rt.pipeline(FILE, 'attentionGradKV'), [buf(qkv), buf(probs), buf(dout), buf(ds), buf(dqkv)], u,
          grid1d(rows, WG));
      } finally {
        rt.free(ds);
      }
    },
  };
}
