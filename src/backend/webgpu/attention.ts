import type { AttentionKernels, AttentionParams, Storage } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

// Two kernels: wgsl/flash-attention.wgsl (tiled, online softmax, saves one log-sum-exp per row) for
// head sizes up to FLASH_MAX_HEAD_DIM, and wgsl/attention.wgsl (one invocation per row, saves the
// whole softmax) past that. savedLength() says which one a shape gets, so the op allocates the
// right buffer between the two passes; `attentionProbs` always runs the probs kernel.

const FILE = 'attention.wgsl';
const FLASH = 'flash-attention.wgsl';
const WG = 64; // attention.wgsl's workgroup size, flash-attention.wgsl's largest
/** flash-attention.wgsl's MAXDH (its private row arrays). */
export const FLASH_MAX_HEAD_DIM = 128;
/** flash-attention.wgsl's STAGE4 and MAXBT: vec4s per staged tile array, most rows per tile. */
const STAGE4 = 480;
const MAX_TILE = 128;
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

const F = paramLayout(FLASH, 'F', [
  ['tokens', 'u32'],
  ['heads', 'u32'],
  ['blocks', 'u32'],
  ['groups', 'u32'],
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
const useFlash = (p: AttentionParams) => p.headDim <= FLASH_MAX_HEAD_DIM;

/** Rows of the other side staged per tile at head size dh (see flash-attention.wgsl). */
export const flashTileRows = (dh: number) => Math.min(MAX_TILE, Math.floor(STAGE4 / Math.ceil(dh / 4)));

/** f32 elements the WebGPU forward saves: log-sum-exp per row with flash, else the softmax. */
export function savedLength(p: AttentionParams): number {
  const rows = p.batch * p.heads * p.tokens;
  return useFlash(p) ? rows : rows * p.tokens;
}

/** Rows per flash block (its workgroup size): the power of two ≥ tokens, from 8 to 64. */
export const flashBlockRows = (tokens: number) => Math.min(WG, Math.max(8, 2 ** Math.ceil(Math.log2(tokens))));

/** Workgroups and the uniform block of a flash pass: one workgroup per block of rows of a unit. */
function flashLaunch(p: AttentionParams) {
  const rows = flashBlockRows(p.tokens);
  const blocks = Math.ceil(p.tokens / rows);
  const groups = p.batch * p.heads * blocks;
  const constants = { DH: p.headDim, BT: flashTileRows(p.headDim), WG: rows };
  const u = packParams(F, { tokens: p.tokens, heads: p.heads, blocks, groups, scale: p.scale });
  return { grid: grid1d(groups, 1), constants, u };
}

/**
 * The per-row kernel of attention.wgsl on its own (saves the softmax, B·H·T·T): the fallback past
 * head size 128, and the baseline `protodino bench gpu` times the flash kernel against.
 */
export function probsAttention(rt: WebGPURuntime): Pick<AttentionKernels, 'attention' | 'attentionGrad'> {
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
    attentionGrad(qkv, _out, probs, dout, dqkv, p) {
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

export function attentionKernels(rt: WebGPURuntime): AttentionKernels {
  const probs = probsAttention(rt);
  return {
    attention(qkv, out, saved, p) {
      if (empty(p)) return;
      if (!useFlash(p)) return probs.attention(qkv, out, saved, p);
      const { grid, constants, u } = flashLaunch(p);
      rt.dispatch(
        'flashForward',
        rt.pipeline(FLASH, 'flashForward', constants),
        [buf(qkv), buf(out), buf(saved)],
        u,
        grid,
      );
    },
    attentionGrad(qkv, out, saved, dout, dqkv, p) {
      if (empty(p)) return;
      if (!useFlash(p)) return probs.attentionGrad(qkv, out, saved, dout, dqkv, p);
      // D = rowsum(dO ⊙ O) per row, written by flashGradQ and read by flashGradKV.
      const d = rt.alloc(p.batch * p.heads * p.tokens, 'f32');
      try {
        const { grid, constants, u } = flashLaunch(p);
        rt.dispatch(
          'flashGradQ',
          rt.pipeline(FLASH, 'flashGradQ', constants),
          [buf(qkv), buf(out), buf(dout), buf(saved), buf(d), buf(dqkv)],
          u,
          grid,
        );
        rt.dispatch(
          'flashGradKV',
          rt.pipeline(FLASH, 'flashGradKV', constants),
          [buf(qkv), buf(dout), buf(saved), buf(d), buf(dqkv)],
          u,
          grid,
        );
      } finally {
        rt.free(d);
      }
    },
    attentionProbs(qkv, probsOut, p) {
      if (empty(p)) return;
      const out = rt.alloc(p.batch * p.tokens * p.heads * p.headDim, 'f32');
      try {
        probs.attention(qkv, out, probsOut, p);
      } finally {
        rt.free(out);
      }
    },
  };
}
