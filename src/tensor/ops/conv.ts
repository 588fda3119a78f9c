// 2-D convolution and pooling over NCHW images (kernels: conv2d/conv2dGradInput/conv2dGradWeight,
// winogradWeights/winogradInput/winogradOutput and their adjoints with matmul, im2col/col2im with matmul,
// pool2d/pool2dGrad).
// conv2d's default ('auto') runs a 3×3 stride-1 convolution with enough channels as Winograd
// F(4×4, 3×3) (assembly/winograd.ts: transforms, one batched matmul of the 36 transformed values,
// inverse transform), forward, input gradient and weight gradient; everything else runs
// the backend's convolution kernels (on wasm an implicit GEMM that never writes the column matrix,
// see assembly/convgemm.ts). 'direct' forces those kernels. The 'im2col' algorithm is the earlier route,
// kept as a cross-check: im2col followed by one batched matmul (a matrix per image) that writes
// NCHW directly: out[b] [O, P] = W [O, K] · col[b]ᵀ, with col[b] [P, K], P = outH·outW, K = C·kh·kw.
import {
  matmulParams,
  WINOGRAD_BLOCK,
  WINOGRAD_VALUES,
  winogradColumns,
  winogradTiles,
  type Backend,
  type Conv2dParams,
  type ConvParams,
  type Storage,
} from '../../backend/backend.js';
import { composedWinogradConv, composedWinogradConvGrad } from '../../backend/winograd-compose.js';
import { noGrad, ShapeError, Tensor } from '../tensor.js';
import { empty, zeros } from '../create.js';
import { needsGrad, record } from '../autograd.js';
import { assertDType, assertSameBackend } from '../shape.js';
import { add } from './elementwise.js';
import { sum } from './reduce.js';
import { reshape } from './view.js';

export type Size2 = number | [number, number];
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd' | 'im2col';
export const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['auto', 'direct', 'winograd', 'im2col'];

/**
 * Whether 'auto' runs a convolution as Winograd F(4×4, 3×3): a 3×3 window at stride 1 with padding
 * at most 2 (the input gradient is then the same kind of convolution, padded 2 − padding), enough
 * reduction (input channels forward, output channels for the input gradient, the smaller of the two
 * for the weight gradient) that the products repay the transforms, and few wasted outputs in the
 * 4×4 tiles (a 2×2 map computes 16 outputs per 4 it keeps). Measured per layer, wasm, resnet_cpu's
 * shapes (128 crops of 28² or 256 of 12², padding 1, chunks of 4 MiB), implicit GEMM ÷ Winograd
 * time, forward / input gradient, 1 thread (CPU time) and 2 threads (wall):
 *   16×28²  1.16 / 1.22   0.83 / 0.77      32×14²  1.35 / 1.32   1.12 / 1.06
 *   64×7²   1.63 / 1.78   1.43 / 1.44      128×4²  2.08 / 2.14   2.05 / 2.00
 *   64×3²   1.37 / 1.43   1.31 / 1.18      32×6²   1.06 / 1.11   0.87 / 0.82
 * and before chunking 128×2² 0.83 (1 thread). The products cost channels² × tiles and scale with
 * threads; the transforms cost channels × tiles and are memory-bound, so two cores gain less from
 * them: Winograd wins from 32 channels where tiles waste little (≤ 1.5× the outputs: 14² and 7² are
 * 1.31×) and from 64 where they waste up to 2× (3² and 6² are 1.78×). The weight gradient gains
 * like the forward (1 thread: 1.27× at 16×28², 2.48× at 128×4²).
 * Fused (the forward and the input gradient on wasm, where winogradConv keeps each block of tiles in
 * cache; see fusedFits), implicit GEMM ÷ fused Winograd, forward, 1 / 2 threads (wall), Intel Xeon
 * host 2026-12-05, `node dist/bench/index.js conv-layers`: 16×28² 2.21 / 2.22, 16×12² 2.17 / 2.26,
 * 32×14² 1.85 / 1.86, 32×6² 1.31 / 1.37, 64×7² 2.20 / 2.14, 64×3² 1.11 / 1.21: from 16 channels
 * where tiles waste up to 2×.
 */
export function winogradFits(p: Conv2dParams, reduction: number, fused = false): boolean {
  if (!winogradShape(p)) return false;
  const waste = tileWaste(p);
  if (fused && reduction >= 16 && waste <= 2) return true;
  return (reduction >= 32 && waste <= 1.5) || (reduction >= 64 && waste <= 2);
}

/** Outputs the 4×4 tiles compute per output kept (a 2×2 map: 4). */
function tileWaste(p: Conv2dParams): number {
  const { th, tw } = winogradTiles(p);
  return (16 * th * tw) / (p.outH * p.outW);
}

/** The shapes the Winograd kernels compute at all: 3×3, stride 1, padding at most 2. */
function winogradShape(p: Conv2dParams): boolean {
  return p.kernelH === 3 && p.kernelW === 3 && p.strideH === 1 && p.strideW === 1 && p.padH <= 2 && p.padW <= 2;
}

/**
 * Bytes of transformed values (V, its packed copy in matmul, M) one chunk of tiles may hold on
 * wasm: the transforms and the product of a chunk then meet in cache instead of streaming V and M
 * through memory three times (see winogradConv), and each chunk's kernels still have enough work
 * to split over threads. Measured, forward ms, 16×28² at 1 thread (CPU): one chunk 13.9, 16 MiB
 * 13.6, 4 MiB 11.4, 1 MiB 11.7; 32×14² at 2 threads (wall): 16 MiB 5.0, 4 MiB 5.7, 1 MiB 7.3
 * (four kernel calls per chunk, each a fork-join).
 */
export const WINOGRAD_CHUNK_BYTES = 1 << 22;
/** On WebGPU every chunk costs three dispatches and a GPU has no such cache to fit: chunks only bound memory. */
const WINOGRAD_CHUNK_BYTES_GPU = 1 << 28;

/**
 * Tiles per chunk: all n where wasm runs the fused kernels (they need no chunks to stay in cache),
 * else as many as the backend's budget holds, at least four blocks, at most all n.
 */
function winogradChunk(be: Backend, n: number, C: number, O: number, fused: boolean): number {
  if (fused && be.kind === 'wasm') return n;
  const budget = be.kind === 'wasm' ? WINOGRAD_CHUNK_BYTES : WINOGRAD_CHUNK_BYTES_GPU;
  const fit = Math.floor(budget / (WINOGRAD_VALUES * 4 * (2 * C + O)) / WINOGRAD_BLOCK) * WINOGRAD_BLOCK;
  return Math.min(n, Math.max(WINOGRAD_BLOCK * 4, fit));
}

/**
 * Channel counts up to which wasm runs the Winograd convolution fused (winogradConv, one block of
 * tiles at a time in cache, the filters re-read per block) rather than as three kernels over chunks
 * of tiles (one batched matmul that reuses the filters across the chunk). Forward ms, three kernels /
 * fused, 1 thread and 2 (wall), Intel Xeon host 2026-12-05, `node dist/bench/index.js conv-layers`:
 * 16×28² 11.6 / 5.9 and 5.8 / 3.0; 32×14² 9.5 / 6.1 and 4.6 / 3.0; 64×7² 6.4 / 5.0 and 3.4 / 2.6;
 * 128×4² 4.7 / 4.7 and 2.5 / 3.0 (its 2.4 MiB of packed filters are re-read from beyond L2 on every
 * block). On WebGPU winogradConv is the three kernels, so every size takes it.
 */
const FUSED_MAX_CHANNELS = 64;

/** Whether backend be runs the Winograd convolution with channels → outChannels fused. */
export function fusedFits(be: Backend, channels: number, outChannels: number): boolean {
  return be.kind !== 'wasm' || Math.max(channels, outChannels) <= FUSED_MAX_CHANNELS;
}

/**
 * Whether backend be runs the Winograd weight gradient's products fused (winogradConvGrad): on wasm
 * up to 32 channels, and up to 64 where the tiles waste at most 1.5× the outputs. Its products
 * reduce over one block of 16 tiles at a time, each a micro-kernel call that loads and stores its
 * accumulators, so at 64 channels a map of few tiles (3², 16 tiles of 9 outputs each) stays with the
 * composition's long reductions. Weight gradient ms, implicit GEMM / three kernels / fused, 1 thread,
 * Intel Xeon host 2026-12-05, `node dist/bench/index.js conv-layers`: 16×28² 15.6 / 11.4 / 7.8,
 * 16×12² 5.3 / 4.1 / 2.7, 32×14² 13.2 / 9.1 / 7.0, 32×6² 5.1 / 4.7 / 3.8, 64×7² 11.5 / 6.3 / 6.1,
 * 64×3² 4.4 / 2.9 / 3.4, 128×4² 13.9 / 4.8 / 6.6; 2 threads (wall): 8.2 / 5.5 / 3.6, 3.0 / 2.2 / 1.4,
 * 6.9 / 4.5 / 3.5, 2.7 / 2.6 / 2.0, 6.1 / 3.3 / 3.4, 2.5 / 1.6 / 2.0, 7.1 / 2.5 / 6.4.
 */
export function fusedGradFits(be: Backend, p: ConvParams): boolean {
  if (be.kind !== 'wasm') return true;
  const waste = tileWaste(p);
  const most = Math.max(p.channels, p.outChannels);
  return most <= 32 || (most <= FUSED_MAX_CHANNELS && waste <= 1.5);
}

/**
 * out = the convolution p of x (Winograd F(4×4, 3×3)): filters transformed once, then per chunk of
 * tiles the inputs transformed, the 36 products [outChannels × channels]·[channels × tiles] as one
 * batched matmul, and the outputs transformed back, through winogradConv where fusedFits (on wasm
 * all tiles in one call: it needs no chunks to stay in cache), else as the three kernels here.
 * flip: w is the forward filter [channels, outChannels, 3, 3] of which p is the input gradient.
 */
function winogradConv(be: Backend, x: Storage, w: Storage, out: Storage, p: ConvParams, flip: boolean): void {
  const { n } = winogradTiles(p);
  const O = p.outChannels,
    C = p.channels;
  const fused = fusedFits(be, C, O);
  const chunk = winogradChunk(be, n, C, O, fused);
  const u = be.alloc(WINOGRAD_VALUES * O * C, 'f32');
  be.winogradWeights(w, u, flip ? C : O, flip ? O : C, flip);
  const cols = winogradColumns(chunk);
  const v = fused ? null : be.alloc(WINOGRAD_VALUES * C * cols, 'f32');
  const m = fused ? null : be.alloc(WINOGRAD_VALUES * O * cols, 'f32');
  for (let first = 0; first < n; first += chunk) {
    const count = Math.min(chunk, n - first);
    if (v && m) composedWinogradConv(be, x, u, out, p, first, count, v, m);
    else be.winogradConv(x, u, out, p, first, count);
  }
  for (const s of [u, v, m]) if (s) be.free(s);
}

/**
 * dw [O, C, 3, 3] of the convolution p (Winograd F(4×4, 3×3)): per chunk of tiles the inputs
 * transformed as forward (V) and dy through the adjoint of the output transform (dM), the 36
 * products dU_ξ += dM_ξ [O × tiles] · V_ξᵀ [tiles × C] accumulated chunk after chunk in order, then
 * the adjoint of the filter transform. Through winogradConvGrad where fusedGradFits (on wasm all
 * tiles in one call), else as the three kernels here.
 */
function winogradGradWeight(be: Backend, x: Storage, dy: Storage, dw: Storage, p: ConvParams): void {
  const { n } = winogradTiles(p);
  const O = p.outChannels,
    C = p.channels;
  const fused = fusedGradFits(be, p);
  const chunk = winogradChunk(be, n, C, O, fused);
  const du = be.alloc(WINOGRAD_VALUES * O * C, 'f32');
  const cols = winogradColumns(chunk);
  const v = fused ? null : be.alloc(WINOGRAD_VALUES * C * cols, 'f32');
  const dm = fused ? null : be.alloc(WINOGRAD_VALUES * O * cols, 'f32');
  for (let first = 0; first < n; first += chunk) {
    const count = Math.min(chunk, n - first);
    if (v && dm) composedWinogradConvGrad(be, x, dy, du, p, first, count, first > 0, v, dm);
    else be.winogradConvGrad(x, dy, du, p, first, count, first > 0);
  }
  for (const s of [v, dm]) if (s) be.free(s);
  be.winogradWeightsGrad(du, dw, O, C);
  be.free(du);
}

/** The input gradient of the convolution p as a convolution of dy (3×3, stride 1, padding 2 − p's). */
function transposedParams(p: ConvParams): ConvParams {
  return {
    ...p,
    channels: p.outChannels,
    height: p.outH,
    width: p.outW,
    padH: p.kernelH - 1 - p.padH,
    padW: p.kernelW - 1 - p.padW,
    outH: p.height,
    outW: p.width,
    outChannels: p.channels,
  };
}

export interface Conv2dOptions {
  stride?: Size2;
  padding?: Size2;
  /**
   * 'auto' (default): Winograd where winogradFits, else the backend's convolution kernels; 'direct':
   * those kernels always; 'winograd': Winograd (an error where it does not fit); 'im2col': column
   * matrix + matmul.
   */
  algorithm?: ConvAlgorithm;
  /** With 'im2col': cap on the column buffer (elements, default 2^24); larger batches run in chunks of images. */
  maxColumnElements?: number;
}

function pair(op: string, what: string, v: Size2, min: number): [number, number] {
  const p: [number, number] = Array.isArray(v) ? [v[0], v[1]] : [v, v];
  if (!p.every((d) => Number.isInteger(d) && d >= min))
    throw new ShapeError(op, `${what} must be integers ≥ ${min}, got ${v}`);
  return p;
}

/** Output geometry of a kh×kw window sliding over x [B, C, H, W] (PyTorch's floor mode). */
function geometry(op: string, x: Tensor, kernel: [number, number], stride: Size2, padding: Size2): Conv2dParams {
  assertDType(op, x, 'f32');
  if (x.rank !== 4) throw new ShapeError(op, `input must be [batch, channels, height, width], got [${x.shape}]`);
  const [batch, channels, height, width] = x.shape;
  const [strideH, strideW] = pair(op, 'strides', stride, 1);
  const [padH, padW] = pair(op, 'paddings', padding, 0);
  const [kernelH, kernelW] = kernel;
  const outH = Math.floor((height + 2 * padH - kernelH) / strideH) + 1;
  const outW = Math.floor((width + 2 * padW - kernelW) / strideW) + 1;
  if (outH < 1 || outW < 1) {
    throw new ShapeError(
      op,
      `a ${kernelH}x${kernelW} window does not fit a ${height}x${width} input padded by ${padH},${padW}`,
    );
  }
  return { batch, channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW };
}

/** Elements one im2col buffer may hold by default (64 MiB); larger batches run in chunks of images. */
const COL_LIMIT = 1 << 24;

/**
 * PyTorch's F.conv2d without groups or dilation: x [B, C, H, W], weight [O, C, kh, kw], bias [O].
 * Backward keeps nothing but x and the weight (the im2col route rebuilds its columns: they are K
 * times the input).
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  assertDType('conv2d', weight, 'f32', 'weight');
  assertSameBackend('conv2d', x, weight, ...(bias ? [bias] : []));
  if (weight.rank !== 4) throw new ShapeError('conv2d', `weight must be [out, in, kh, kw], got [${weight.shape}]`);
  const [O, Cw, kh, kw] = weight.shape;
  const p = geometry('conv2d', x, [kh, kw], opts.stride ?? 1, opts.padding ?? 0);
  if (Cw !== p.channels)
    throw new ShapeError('conv2d', `weight expects ${Cw} input channels, input [${x.shape}] has ${p.channels}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== O))
    throw new ShapeError('conv2d', `bias must be [${O}], got [${bias.shape}]`);
  const algorithm = opts.algorithm ?? 'auto';
  if (!CONV_ALGORITHMS.includes(algorithm)) throw new ShapeError('conv2d', `unknown algorithm '${String(algorithm)}'`);
  if (algorithm === 'winograd' && !winogradShape(p)) {
    throw new ShapeError(
      'conv2d',
      `Winograd F(4x4, 3x3) needs a 3x3 kernel at stride 1 with padding at most 2, got ${kh}x${kw} at stride ${p.strideH},${p.strideW} padding ${p.padH},${p.padW}`,
    );
  }
  const be = x.backend;
  // fused on wasm where fusedFits, which pays from fewer channels (winogradFits)
  const wino = (reduction: number, fused: boolean) =>
    algorithm === 'winograd' || (algorithm === 'auto' && winogradFits(p, reduction, fused));
  const limit = opts.maxColumnElements ?? COL_LIMIT;
  if (!(limit >= 1)) throw new ShapeError('conv2d', `maxColumnElements must be ≥ 1, got ${limit}`);
  const B = p.batch,
    P = p.outH * p.outW,
    K = p.channels * kh * kw;
  const chunk = Math.max(1, Math.min(B, Math.floor(limit / Math.max(1, P * K))));
  const cp: ConvParams = { ...p, outChannels: O };
  let out = empty([B, O, p.outH, p.outW], be);
  if (out.size > 0 && K === 0) be.fill(out.storage, out.size, 0);
  else if (out.size > 0 && wino(p.channels, be.kind === 'wasm' && fusedFits(be, p.channels, O)))
    winogradConv(be, x.storage, weight.storage, out.storage, cp, false);
  else if (out.size > 0 && algorithm !== 'im2col') be.conv2d(x.storage, weight.storage, out.storage, cp);
  else if (out.size > 0) im2colForward(x, weight, out, p, chunk);
  if (bias) {
    const pre = out;
    out = noGrad(() => {
      const b4 = reshape(bias, [1, O, 1, 1]);
      const y = add(pre, b4);
      b4.dispose();
      return y;
    });
    pre.dispose();
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'conv2d', inputs, (g) => {
    let gx: Tensor | null = null,
      gw: Tensor | null = null;
    if ((x.requiresGrad || weight.requiresGrad) && g.size > 0 && K > 0 && algorithm !== 'im2col') {
      if (x.requiresGrad) {
        gx = empty(x.shape, be);
        if (wino(O, be.kind === 'wasm' && fusedFits(be, O, p.channels)))
          winogradConv(be, g.storage, weight.storage, gx.storage, transposedParams(cp), true);
        else be.conv2dGradInput(g.storage, weight.storage, gx.storage, cp);
      }
      if (weight.requiresGrad) {
        gw = empty(weight.shape, be);
        if (wino(Math.min(p.channels, O), be.kind === 'wasm' && fusedGradFits(be, cp)))
          winogradGradWeight(be, x.storage, g.storage, gw.storage, cp);
        else be.conv2dGradWeight(x.storage, g.storage, gw.storage, cp);
      }
    } else if ((x.requiresGrad || weight.requiresGrad) && g.size > 0 && K > 0) {
      [gx, gw] = convBackward(x, weight, g, p, chunk, x.requiresGrad, weight.requiresGrad);
    } else {
      if (x.requiresGrad) gx = zeros(x.shape, be);
      if (weight.requiresGrad) gw = zeros(weight.shape, be);
    }
    const gb = bias?.requiresGrad ? sum(g, [0, 2, 3]) : null;
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}

/** The im2col route's forward: per chunk of images, columns then one batched matmul into out. */
function im2colForward(x: Tensor, weight: Tensor, out: Tensor, p: Conv2dParams, chunk: number): void {
  const be = x.backend;
  const O = weight.shape[0],
    B = p.batch,
    P = p.outH * p.outW,
    K = p.channels * p.kernelH * p.kernelW;
  const xImg = p.channels * p.height * p.width,
    yImg = O * P;
  const col = be.alloc(chunk * P * K, 'f32');
  const xs = new Slicer(be, x.storage, xImg, chunk, B);
  const ys = new Slicer(be, out.storage, yImg, chunk, B);
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const n = Math.min(chunk, B - b0);
    be.im2col(xs.read(b0, n), col, { ...p, batch: n });
    be.matmul(
      weight.storage,
      col,
      ys.target(),
      matmulParams({ batch: n, m: O, n: P, k: K, transB: true, strideB: P * K }),
    );
    ys.write(b0, n);
  }
  be.free(col);
  xs.free();
  ys.free();
}

/**
 * The im2col route's backward. Per chunk of images: dX via dcol[b] [P, K] = g[b]ᵀ · W and col2im (each pixel gathers the columns
 * that read it); dW as Σ_b g[b] [O, P] · col[b] [P, K], summed over b in a fixed order.
 */
function convBackward(
  x: Tensor,
  weight: Tensor,
  g: Tensor,
  p: Conv2dParams,
  chunk: number,
  wantX: boolean,
  wantW: boolean,
): [Tensor | null, Tensor | null] {
  const be = x.backend;
  const O = weight.shape[0],
    B = p.batch,
    P = p.outH * p.outW,
    K = p.channels * p.kernelH * p.kernelW;
  const xImg = p.channels * p.height * p.width,
    yImg = O * P;
  const gx = wantX ? empty(x.shape, be) : null;
  const gs = new Slicer(be, g.storage, yImg, chunk, B);
  const xs = wantW ? new Slicer(be, x.storage, xImg, chunk, B) : null;
  const dxs = gx ? new Slicer(be, gx.storage, xImg, chunk, B) : null;
  const col = be.alloc(chunk * P * K, 'f32');
  const per = wantW ? be.alloc(chunk * O * K, 'f32') : null;
  let acc: Storage | null = null;
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const n = Math.min(chunk, B - b0);
    const pc = { ...p, batch: n };
    const gChunk = gs.read(b0, n);
    if (dxs) {
      be.matmul(
        gChunk,
        weight.storage,
        col,
        matmulParams({ batch: n, m: P, n: K, k: O, transA: true, strideA: O * P }),
      );
      be.col2im(col, dxs.target(), pc);
      dxs.write(b0, n);
    }
    if (xs && per) {
      be.im2col(xs.read(b0, n), col, pc);
      be.matmul(gChunk, col, per, matmulParams({ batch: n, m: O, n: K, k: P, strideA: O * P, strideB: P * K }));
      const part = be.alloc(O * K, 'f32');
      be.reduce('sum', per, part, 1, n, O * K);
      if (acc) {
        const next = be.alloc(O * K, 'f32');
        be.binary('add', acc, part, next, [O * K], [1], [1]);
        be.free(acc);
        be.free(part);
        acc = next;
      } else {
        acc = part;
      }
    }
  }
  be.free(col);
  if (per) be.free(per);
  for (const sl of [gs, xs, dxs]) sl?.free();
  return [gx, acc ? new Tensor(be, acc, weight.shape) : null];
}

/**
 * Images [b0, b0 + n) of a batch-major storage. With one chunk covering the batch it is the
 * storage itself (no copies); otherwise chunks go through a scratch storage by strided copies.
 */
class Slicer {
  private readonly scratch: Storage | null;
  constructor(
    private readonly be: Backend,
    private readonly whole: Storage,
    private readonly per: number,
    chunk: number,
    batch: number,
  ) {
    this.scratch = chunk >= batch ? null : be.alloc(chunk * per, whole.dtype);
  }
  /** The chunk's images, for reading. */
  read(b0: number, n: number): Storage {
    if (!this.scratch) return this.whole;
    this.be.copyStrided(this.whole, this.scratch, [n * this.per], b0 * this.per, [1], 0, [1]);
    return this.scratch;
  }
  /** Where a kernel should write the chunk; write() then puts it in place. */
  target(): Storage {
    return this.scratch ?? this.whole;
  }
  write(b0: number, n: number): void {
    if (this.scratch) this.be.copyStrided(this.scratch, this.whole, [n * this.per], 0, [1], b0 * this.per, [1]);
  }
  free(): void {
    if (this.scratch) this.be.free(this.scratch);
  }
}

function poolGeometry(op: string, x: Tensor, kernel: Size2, stride: Size2 | undefined, padding: Size2): Conv2dParams {
  const k = pair(op, 'kernel sizes', kernel, 1);
  const pad = pair(op, 'paddings', padding, 0);
  if (pad[0] > k[0] / 2 || pad[1] > k[1] / 2) {
    throw new ShapeError(op, `padding ${pad} must be at most half the kernel size ${k} (every window needs a pixel)`);
  }
  return geometry(op, x, k, stride ?? k, pad);
}

/**
 * Max pooling (PyTorch's F.max_pool2d, floor mode; stride defaults to the kernel size). Padding
 * never wins; the gradient goes to the first maximum of each window.
 */
export function maxPool2d(x: Tensor, kernel: Size2, stride?: Size2, padding: Size2 = 0): Tensor {
  const p = poolGeometry('maxPool2d', x, kernel, stride, padding);
  const be = x.backend;
  const out = empty([p.batch, p.channels, p.outH, p.outW], be);
  const argmax = needsGrad(x) ? empty(out.shape, be, 'i32') : null;
  if (out.size > 0) be.pool2d('max', x.storage, out.storage, argmax?.storage ?? null, p);
  const result = record(out, 'maxPool2d', [x], (g) => {
    const dx = empty(x.shape, be);
    if (dx.size > 0) be.pool2dGrad('max', g.storage, argmax!.storage, dx.storage, p);
    return [dx];
  });
  if (!result.node) argmax?.dispose();
  return result;
}

/** Average pooling with count_include_pad=True (PyTorch's default for F.avg_pool2d). */
export function avgPool2d(x: Tensor, kernel: Size2, stride?: Size2, padding: Size2 = 0): Tensor {
  const p = poolGeometry('avgPool2d', x, kernel, stride, padding);
  const be = x.backend;
  const out = empty([p.batch, p.channels, p.outH, p.outW], be);
  if (out.size > 0) be.pool2d('avg', x.storage, out.storage, null, p);
  return record(out, 'avgPool2d', [x], (g) => {
    const dx = empty(x.shape, be);
    if (dx.size > 0) be.pool2dGrad('avg', g.storage, null, dx.storage, p);
    return [dx];
  });
}
