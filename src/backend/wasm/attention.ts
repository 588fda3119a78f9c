import type { AttentionKernels, AttentionParams } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

/** Multiply-adds per thread below which a fork-join costs more than it saves. */
const GRAIN_FLOPS = 1 << 16;

/** The arguments both attention kernels take after their buffers. */
type Tail = [tokens: number, heads: number, dh: number, scale: number, scratch: number];

/**
 * Calls `launch` to run a kernel over the (image, head) units with one scratch slot per thread
 * (returned to the pool after).
 */
function overUnits(
  rt: WasmRuntime,
  p: AttentionParams,
  flopsPerUnit: number,
  launch: (tail: Tail, units: number, grain: number) => void,
): void {
  const units = p.batch * p.heads;
  if (units === 0 || p.tokens === 0 || p.headDim === 0) return;
  const slotBytes = 4 * rt.exports.attentionSlotFloats(p.tokens, p.headDim);
  const scratchBytes = 64 + rt.threads * slotBytes;
  const scratch = rt.allocBytes(scratchBytes, `attention's per-thread scratch (${p.tokens} tokens)`);
  try {
    rt.i32(scratch, 1)[0] = 0; // the slot counter the threads claim from
    launch([p.tokens, p.heads, p.headDim, p.scale, scratch], units, Math.max(1, Math.ceil(GRAIN_FLOPS / flopsPerUnit)));
  } finally {
    rt.freeBytes(scratch, scratchBytes);
  }
}

/** f32 elements the wasm forward saves for the backward: the softmax [batch, heads, tokens, tokens]. */
export const attentionSavedLength = (p: AttentionParams) => p.batch * p.heads * p.tokens * p.tokens;

export function attentionKernels(rt: WasmRuntime): AttentionKernels {
  const forward = (qkv: number, out: number, probs: number, p: AttentionParams) =>
    overUnits(rt, p, 2 * p.tokens * p.tokens * p.headDim, (tail, units, grain) =>
      rt.run('attention', [qkv, out, probs, ...tail], units, grain),
    );
  return {
    attention(qkv, out, probs, p) {
      forward(ptr(qkv), ptr(out), ptr(probs), p);
    },
    attentionProbs(qkv, probs, p) {
      // The forward kernel, its output into scratch.
      const bytes = 4 * p.batch * p.tokens * p.heads * p.headDim;
      const out = rt.allocBytes(Math.max(4, bytes), "attentionProbs' scratch output");
      try {
        forward(ptr(qkv), out, ptr(probs), p);
      } finally {
        rt.freeBytes(out, Math.max(4, bytes));
      }
    },
    // out is not read: the saved softmax has all the backward needs.
    attentionGrad(qkv, _out, probs, dout, dqkv, p) {
      overUnits(rt, p, 4 * p.tokens * p.tokens * p.headDim, (tail, units, grain) =>
        rt.run('attentionGrad', [ptr(qkv), ptr(probs), ptr(dout), ptr(dqkv), ...tail], units, grain),
      );
    },
  };
}
