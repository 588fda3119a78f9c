// Winograd F(4×4, 3×3) transforms (assembly/winograd.ts), between which src/tensor/ops/conv.ts runs
// the products as one batched matmul, and the convolution and its weight gradient's products fused
// per block of tiles (assembly/winograd-fused.ts, winograd-fused-grad.ts).
import type { ConvKernels } from '../backend.js';
import { BackendError, WINOGRAD_BLOCK, WINOGRAD_VALUES, winogradRange } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { padPlanes, Scratch } from './convgemm.js';
import { ptr } from './storage.js';

/** Units (blocks of 16 tiles of one channel) per thread below which a fork-join costs more than it saves. */
const GRAIN_BLOCKS = 32;
/** Filters per thread, likewise. */
const GRAIN_FILTERS = 512;
/** Blocks of 16 tiles (every channel) per thread in winogradFused. */
const GRAIN_FUSED = 4;
/** Bytes all of winogradConvGrad's group accumulators may take, the most groups, the fewest blocks per group. */
const GRAD_ACC_BYTES = 1 << 23;
const GRAD_GROUPS = 8;
const GRAD_GROUP_BLOCKS = 8;

/**
 * The groups of blocks winogradConvGrad sums apart and then adds in order: fixed by the shape (never
 * the thread count, so the result is the same on any), enough to share among threads, each with
 * enough blocks to repay zeroing and adding its [36][O][C] accumulator (rounded up to the
 * micro-kernel's panels), and all of them within a bound.
 */
export function winogradGradGroups(blocks: number, accBytes: number): number {
  const most = Math.min(GRAD_GROUPS, Math.floor(blocks / GRAD_GROUP_BLOCKS), Math.floor(GRAD_ACC_BYTES / accBytes));
  return Math.max(1, most);
}

/** The images [b0, b0 + B) that hold tiles [first, first + count) of `tiles` per image, and first counted from b0. */
function tileImages(tiles: number, first: number, count: number): { b0: number; B: number; firstIn: number } {
  const b0 = Math.floor(first / tiles);
  return { b0, B: Math.floor((first + count - 1) / tiles) + 1 - b0, firstIn: first - b0 * tiles };
}

type Transform = 'winogradWeights' | 'winogradInput' | 'winogradOutput' | 'winogradOutputGrad' | 'winogradWeightsGrad';
type Kernel = Transform | 'winogradConv' | 'winogradConvGrad';

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

export function winogradKernels(rt: WasmRuntime): Pick<ConvKernels, Kernel> {
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
    winogradConv(x, u, out, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradConv');
      const C = p.channels,
        O = p.outChannels;
      if (np === 0 || O === 0) return;
      // the images that hold the tiles, zero-padded so that every tile's 6×6 patch is inside (+ 8
      // floats the last patch row's second vector load reads past), the filters as the micro-kernel's
      // A panels; then one fork-join over blocks of tiles
      const { b0, B, firstIn } = tileImages(th * tw, first, count);
      const [Hp, Wp] = [4 * th + 2, 4 * tw + 2];
      const mr = rt.exports.convBlocking(0);
      const slot = rt.exports.winogradFusedSlot(C, O);
      const sc = new Scratch(rt);
      try {
        const src = ptr(x) + b0 * C * p.height * p.width * 4;
        const xp = padPlanes(
          rt,
          sc,
          src,
          B * C,
          p.height,
          p.width,
          p.padH,
          p.padW,
          Hp,
          Wp,
          8,
          "winogradConv's padded input",
        );
        const upk = sc.bytes(WINOGRAD_VALUES * Math.ceil(O / mr) * mr * C * 4, "winogradConv's packed filters");
        const scratch = sc.bytes(64 + rt.threads * slot, "winogradConv's per-thread scratch");
        rt.run('winogradPackU', [ptr(u), upk, O, C], WINOGRAD_VALUES, WINOGRAD_VALUES);
        rt.i32(scratch, 1)[0] = 0;
        const dst = ptr(out) + b0 * O * p.outH * p.outW * 4;
        const args = [xp, upk, dst, C, O, Hp, Wp, p.outH, p.outW, th, tw, firstIn, count, slot, scratch];
        rt.run('winogradFused', args as never, np / WINOGRAD_BLOCK, GRAIN_FUSED);
      } finally {
        sc.release();
      }
    },
    winogradConvGrad(x, dy, du, p, first, count, accumulate) {
      const { th, tw } = winogradRange(p, first, count, 'winogradConvGrad');
      const C = p.channels,
        O = p.outChannels;
      if (C === 0 || O === 0) return;
      if (count === 0) {
        if (!accumulate) rt.f32(ptr(du), WINOGRAD_VALUES * O * C).fill(0);
        return;
      }
      // the images that hold the tiles, then one image of zeros that tiles past count read: x padded
      // as in winogradConv, dy to whole 4×4 blocks
      const { b0, B, firstIn } = tileImages(th * tw, first, count);
      const [Hp, Wp, Hq, Wq] = [4 * th + 2, 4 * tw + 2, 4 * th, 4 * tw];
      const [mr, nr] = [rt.exports.convBlocking(0), rt.exports.convBlocking(1)];
      const accBytes = WINOGRAD_VALUES * Math.ceil(O / mr) * mr * Math.ceil(C / nr) * nr * 4;
      const G = winogradGradGroups(Math.ceil(count / WINOGRAD_BLOCK), accBytes);
      const slot = rt.exports.winogradGradSlot(C, O);
      const sc = new Scratch(rt);
      try {
        const xs = ptr(x) + b0 * C * p.height * p.width * 4,
          ys = ptr(dy) + b0 * O * p.outH * p.outW * 4;
        const what = "winogradConvGrad's padded";
        const xp = padPlanes(
          rt,
          sc,
          xs,
          B * C,
          p.height,
          p.width,
          p.padH,
          p.padW,
          Hp,
          Wp,
          C * Hp * Wp + 8,
          `${what} input`,
        );
        const dyp = padPlanes(rt, sc, ys, B * O, p.outH, p.outW, 0, 0, Hq, Wq, O * Hq * Wq, `${what} output gradient`);
        const acc = sc.bytes(G * accBytes, "winogradConvGrad's group accumulators");
        const scratch = sc.bytes(64 + rt.threads * slot, "winogradConvGrad's per-thread scratch");
        rt.i32(scratch, 1)[0] = 0;
        const args = [xp, dyp, acc, C, O, Hp, Wp, th, tw, firstIn, count, B, G, slot, scratch];
        rt.run('winogradGradFused', args as never, G, 1);
        rt.run('winogradGradSum', [acc, ptr(du), G, O, C, accumulate ? 1 : 0], WINOGRAD_VALUES, WINOGRAD_VALUES);
      } finally {
        sc.release();
      }
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
