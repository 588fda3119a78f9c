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

export function attentionKernels(rt: WasmRuntime): AttentionKernels {
  return {
    attention(qkv, out, probs, p) {
      overUnits(rt, p, 2 * p.tokens * p.tokens * p.headDim, (tail, units, grain) =>
        rt.run('attention', [ptr(qkv), ptr(out), ptr(probs), ...tail], units, grain),
      );
    },
    attentionGrad(qkv, probs, dout, dqkv, p) {
      overUnits(rt, p, 4 * p.tokens * p.tokens * p.headDim, (tail, units, grain) =>
        rt.run('attentionGrad', [ptr(qkv), ptr(probs), ptr(dout), ptr(dqkv), ...tail], units, grain),
      );
    },
  };
}
