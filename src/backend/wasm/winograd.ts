// Winograd F(4×4, 3×3) transforms (assembly/winograd.ts); src/tensor/ops/conv.ts runs the product
// between them as one batched matmul.
import type { ConvKernels } from '../backend.js';
import { BackendError, WINOGRAD_BLOCK, winogradRange } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

/** Units (blocks of 16 tiles of one channel) per thread below which a fork-join costs more than it saves. */
const GRAIN_BLOCKS = 32;
/** Filters per thread, likewise. */
const GRAIN_FILTERS = 512;

type Transform = 'winogradWeights' | 'winogradInput' | 'winogradOutput' | 'winogradOutputGrad' | 'winogradWeightsGrad';

/** Runs a transform with its per-thread scratch slots, taken from the pool for the call. */
function withSlots(rt: WasmRuntime, name: Transform, args: number[], units: number, grain: number): void {
  const [block, slot] = [rt.exports.winogradBlocking(0), rt.exports.winogradBlocking(1)];
  if (block !== WINOGRAD_BLOCK)
    throw new BackendError(`the kernels' tile block is ${block}, not ${WINOGRAD_BLOCK}`, name);
  const bytes = 64 + rt.threads * slot;
  const scratch = rt.allocBytes(bytes, `${name}'s per-thread scratch`);
  try {
    rt.i32(scratch, 1)[0] = 0;
    // the argument lists are the kernels' own (typed in exports.ts), scratch last
    rt.run(name, [...args, scratch] as never, units, grain);
  } finally {
    rt.freeBytes(scratch, bytes);
  }
}

export function winogradKernels(rt: WasmRuntime): Pick<ConvKernels, Transform> {
  return {
    winogradWeights(w, u, outChannels, channels, flip) {
      const [R, S] = flip ? [channels, outChannels] : [outChannels, channels];
      if (R === 0 || S === 0) return;
      withSlots(rt, 'winogradWeights', [ptr(w), ptr(u), R, S, flip ? 1 : 0], R, Math.ceil(GRAIN_FILTERS / S));
    },
    winogradInput(x, v, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradInput');
      if (np === 0 || p.channels === 0) return;
      const args = [ptr(x), ptr(v), p.channels, p.height, p.width, p.padH, p.padW, th, tw, first, count, np];
      withSlots(rt, 'winogradInput', args, (p.channels * np) / WINOGRAD_BLOCK, GRAIN_BLOCKS);
    },
    winogradOutput(m, out, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradOutput');
      if (np === 0 || p.outChannels === 0) return;
      const args = [ptr(m), ptr(out), p.outChannels, p.outH, p.outW, th, tw, first, count, np];
      withSlots(rt, 'winogradOutput', args, (p.outChannels * np) / WINOGRAD_BLOCK, GRAIN_BLOCKS);
    },
    winogradOutputGrad(dy, dm, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradOutputGrad');
      if (np === 0 || p.outChannels === 0) return;
      const args = [ptr(dy), ptr(dm), p.outChannels, p.outH, p.outW, th, tw, first, count, np];
      withSlots(rt, 'winogradOutputGrad', args, (p.outChannels * np) / WINOGRAD_BLOCK, GRAIN_BLOCKS);
    },
    winogradWeightsGrad(du, dw, outChannels, channels) {
      if (outChannels === 0 || channels === 0) return;
      const args = [ptr(du), ptr(dw), outChannels, channels];
      withSlots(rt, 'winogradWeightsGrad', args, outChannels, Math.ceil(GRAIN_FILTERS / channels));
    },
  };
}
