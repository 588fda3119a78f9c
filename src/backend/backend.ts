// The kernel contract. Every backend implements exactly this; nothing above src/backend/ knows
// which one it talks to. Kernels take storages and plain numbers, allocate nothing themselves and
// write into the `out` storages they are given. All index arithmetic is in elements, not bytes.

export type DType = 'f32' | 'i32';

/** An opaque device allocation of `length` 4-byte elements. */
export interface Storage {
  readonly length: number;
  readonly dtype: DType;
}

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'relu'
  | 'gelu'
  | 'tanh'
  | 'sigmoid'
  | 'pow' // x^a
  | 'affine' // a*x + b
  | 'clamp' // min(max(x, a), b)
  | 'square'
  | 'recip';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow' | 'gt' | 'ge' | 'lt' | 'le' | 'eq'; // comparisons write 1 or 0

export type ReduceOp = 'sum' | 'max' | 'min' | 'sumsq';

/** The codes both kernel languages use for the ops above (WGSL override constants, AS switch). */
export const UNARY_CODES: Record<UnaryOp, number> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  abs: 5,
  relu: 6,
  gelu: 7,
  tanh: 8,
  sigmoid: 9,
  pow: 10,
  affine: 11,
  clamp: 12,
  square: 13,
  recip: 14,
};
export const BINARY_CODES: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  max: 4,
  min: 5,
  pow: 6,
  gt: 7,
  ge: 8,
  lt: 9,
  le: 10,
  eq: 11,
};
export const REDUCE_CODES: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, sumsq: 3 };

/** Highest rank the strided kernels (binary, where, copyStrided) accept. */
export const MAX_RANK = 6;

/**
 * Multi-head self-attention over a fused projection: q, k, v are read in place from qkv
 * [batch, tokens, 3, heads, headDim]; scores are scale·q·kᵀ.
 */
export interface AttentionParams {
  batch: number;
  tokens: number;
  heads: number;
  headDim: number;
  scale: number;
}

export interface MatmulParams {
  batch: number;
  m: number;
  n: number;
  k: number;
  /** A is stored [k, m] instead of [m, k]. */
  transA: boolean;
  /** B is stored [n, k] instead of [k, n]. */
  transB: boolean;
  /** Element stride between consecutive batch matrices; 0 broadcasts one matrix over the batch. */
  strideA: number;
  strideB: number;
  /** Optional bias of length n added to every row, then the activation. */
  bias: Storage | null;
  activation: 'none' | 'gelu';
  /** Accumulate into out (out += A·B) instead of overwriting; bias/activation must be off. */
  accumulate: boolean;
  /** When given (batch 1 only): receives Σ_k op(A)[i, k] for each of the m rows, e.g. a bias gradient. */
  rowSumsA?: Storage | null;
  /**
   * When given (activation 'gelu' only): receives op(A)·op(B) + bias, the activation's input, while out
   * receives its GELU, both from the one pass (autograd keeps it for the GELU's backward).
   */
  preActivation?: Storage | null;
}

/** A plain product (no transposes, broadcast operands, no bias or activation, overwrite) with `overrides`. */
export function matmulParams(
  overrides: Partial<MatmulParams> & Pick<MatmulParams, 'batch' | 'm' | 'n' | 'k'>,
): MatmulParams {
  return {
    transA: false,
    transB: false,
    strideA: 0,
    strideB: 0,
    bias: null,
    activation: 'none',
    accumulate: false,
    ...overrides,
  };
}

/** Refuses the MatmulParams combinations the contract rules out, with the same error on every backend. */
export function checkMatmulParams(p: MatmulParams): void {
  if (p.accumulate && (p.bias || p.activation !== 'none')) {
    throw new BackendError('accumulate cannot be combined with a bias or an activation', 'matmul');
  }
  if (p.rowSumsA && p.batch !== 1) throw new BackendError(`row sums of A need batch 1, got ${p.batch}`, 'matmul');
  if (p.preActivation && p.activation !== 'gelu')
    throw new BackendError('a kept pre-activation needs an activation', 'matmul');
}

export interface Conv2dParams {
  batch: number;
  channels: number;
  height: number;
  width: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

/** A convolution's geometry with its output channels: the weight is [outChannels, channels, kernelH, kernelW]. */
export interface ConvParams extends Conv2dParams {
  outChannels: number;
}

/** Values per tile of the Winograd F(4×4, 3×3) transforms (6×6). */
export const WINOGRAD_VALUES = 36;

/** Tiles the Winograd transforms handle as one unit (assembly/winograd.ts BLOCK). */
export const WINOGRAD_BLOCK = 16;

/**
 * The tile grid of a 3×3 stride-1 convolution computed as Winograd F(4×4, 3×3): th × tw tiles of
 * 4×4 outputs per image, n = batch·th·tw tiles in all, numbered q = (b·th + ty)·tw + tx.
 */
export function winogradTiles(p: Conv2dParams): { th: number; tw: number; n: number } {
  const th = Math.ceil(p.outH / 4),
    tw = Math.ceil(p.outW / 4);
  return { th, tw, n: p.batch * th * tw };
}

/** Columns of the transformed matrices [36][channels][columns] for `count` tiles: rounded up to WINOGRAD_BLOCK (the extra columns are zero). */
export function winogradColumns(count: number): number {
  return Math.ceil(count / WINOGRAD_BLOCK) * WINOGRAD_BLOCK;
}

/** Refuses a tile range outside the grid, with the same error on every backend. */
export function checkWinogradRange(p: Conv2dParams, first: number, count: number, kernel: string): void {
  const { n } = winogradTiles(p);
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > n) {
    throw new BackendError(`tiles [${first}, ${first + count}) are not inside the ${n} tiles of the grid`, kernel);
  }
}

/**
 * What every tile-range Winograd kernel checks and needs, on every backend: the shape (checkWinograd)
 * and the range (checkWinogradRange) refused alike, then the grid's th × tw and the columns np of
 * the transformed matrices for `count` tiles.
 */
export function winogradRange(
  p: Conv2dParams,
  first: number,
  count: number,
  kernel: string,
): { th: number; tw: number; np: number } {
  checkWinograd(p, kernel);
  checkWinogradRange(p, first, count, kernel);
  const { th, tw } = winogradTiles(p);
  return { th, tw, np: winogradColumns(count) };
}

/** Refuses what the Winograd kernels do not compute, with the same error on every backend. */
export function checkWinograd(p: Conv2dParams, kernel: string): void {
  if (p.kernelH !== 3 || p.kernelW !== 3 || p.strideH !== 1 || p.strideW !== 1) {
    throw new BackendError(
      `Winograd F(4x4, 3x3) needs a 3x3 kernel at stride 1, got ${p.kernelH}x${p.kernelW} at stride ${p.strideH},${p.strideW}`,
      kernel,
    );
  }
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

export type RandomDist = 'uniform' | 'normal' | 'bernoulli';
export const RANDOM_CODES: Record<RandomDist, number> = { uniform: 0, normal: 1, bernoulli: 2 };

export interface MemoryStats {
  /** Storages allocated and not yet freed. */
  liveBuffers: number;
  /** Bytes held by live storages. */
  liveBytes: number;
  /** Bytes sitting in the pool, ready for reuse. */
  pooledBytes: number;
}

/** elementwise (assembly/elementwise.ts, wgsl/elementwise.wgsl) */
export interface ElementwiseKernels {
  fill(out: Storage, n: number, value: number): void;
  unary(op: UnaryOp, x: Storage, out: Storage, n: number, a: number, b: number): void;
  /** dx = dy * f'(x); y = f(x) is given for ops whose derivative is cheaper from it. */
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, n: number, a: number, b: number): void;
  /** out[idx] = a[idx·aStrides] op b[idx·bStrides] over `shape`; stride 0 broadcasts. */
  binary(
    op: BinaryOp,
    a: Storage,
    b: Storage,
    out: Storage,
    shape: number[],
    aStrides: number[],
    bStrides: number[],
  ): void;
  /** out = cond != 0 ? a : b, strided like binary. */
  where(
    cond: Storage,
    a: Storage,
    b: Storage,
    out: Storage,
    shape: number[],
    cStrides: number[],
    aStrides: number[],
    bStrides: number[],
  ): void;
}

/** matmul (assembly/matmul.ts, wgsl/matmul.wgsl and wgsl/matmul-vec4.wgsl); out is [batch, m, n] contiguous */
export interface MatmulKernels {
  matmul(a: Storage, b: Storage, out: Storage, p: MatmulParams): void;
}

/**
 * attention (assembly/attention.ts; wgsl/flash-attention.wgsl and wgsl/attention.wgsl). Between the
 * forward and the backward pass the op keeps `saved`, of Backend.attentionSavedLength(p) f32
 * elements, whose contents only the backend that wrote it reads: wasm saves the softmax
 * [batch, heads, tokens, tokens], WebGPU the log-sum-exp of each score row [batch, heads, tokens]
 * (flash) up to head size 128 and the softmax past it.
 */
export interface AttentionKernels {
  /** out [batch, tokens, heads, headDim] = softmax(scale·q·kᵀ)·v per head; saved receives what attentionGrad needs. */
  attention(qkv: Storage, out: Storage, saved: Storage, p: AttentionParams): void;
  /** dqkv (qkv's layout) overwritten with the gradients of q, k and v, given the forward's out and saved, and dout. */
  attentionGrad(qkv: Storage, out: Storage, saved: Storage, dout: Storage, dqkv: Storage, p: AttentionParams): void;
  /** probs [batch, heads, tokens, tokens] = softmax(scale·q·kᵀ) per head (attention maps; no gradient). */
  attentionProbs(qkv: Storage, probs: Storage, p: AttentionParams): void;
}

/** reduce (assembly/reduce.ts, wgsl/reduce.wgsl): x viewed as [outer, len, inner] → out [outer, inner] */
export interface ReduceKernels {
  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void;
  /** Index (i32) of the first max/min along len. */
  argReduce(op: 'max' | 'min', x: Storage, out: Storage, outer: number, len: number, inner: number): void;
}

/** softmax (assembly/softmax.ts, wgsl/softmax.wgsl) over the last axis of [rows, cols] */
export interface SoftmaxKernels {
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void;
  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void;
}

/** norm (assembly/norm.ts, wgsl/norm.wgsl): layer norm over the last axis of [rows, cols] */
export interface NormKernels {
  layerNorm(
    x: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    out: Storage,
    mean: Storage,
    rstd: Storage,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /**
   * A residual add and the layer norm after it, one kernel: sum = x + a, out = layerNorm(sum) (the
   * bits of the add then layerNorm). a holds aRows rows of cols (aRows divides rows), repeated down
   * x's rows: a position embedding shared by a batch.
   */
  addLayerNorm(
    x: Storage,
    a: Storage,
    aRows: number,
    sum: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    out: Storage,
    mean: Storage,
    rstd: Storage,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /**
   * dgamma/dbeta are overwritten (not accumulated). With dres, dx = dres + the norm's input gradient
   * (each value added as a separate add would: the same bits): autograd's pending gradient of x.
   */
  layerNormGrad(
    x: Storage,
    gamma: Storage | null,
    mean: Storage,
    rstd: Storage,
    dy: Storage,
    dx: Storage,
    dgamma: Storage | null,
    dbeta: Storage | null,
    rows: number,
    cols: number,
    dres?: Storage | null,
  ): void;

  // batch norm over feature maps x [n, C, hw] (assembly/norm.ts, wgsl/norm.wgsl), one channel at a time
  /** Per channel: mean and biased variance over n·hw values (two passes, fixed order). */
  batchNormStats(x: Storage, mean: Storage, variance: Storage, n: number, C: number, hw: number): void;
  /** out = act((x − mean)·rstd·gamma + beta + residual); gamma/beta/residual may be null, act relu when `relu`. */
  batchNormApply(
    x: Storage,
    mean: Storage,
    rstd: Storage,
    gamma: Storage | null,
    beta: Storage | null,
    residual: Storage | null,
    out: Storage,
    n: number,
    C: number,
    hw: number,
    relu: boolean,
  ): void;
  /**
   * Backward of batchNormApply: g = dy (times [y > 0] when relu; y is the forward's out). dres ← g,
   * dbeta ← Σ g, dgamma ← Σ g·x̂ with x̂ = (x − mean)·rstd (each overwritten where given); dx ←
   * gamma·rstd·(g − mean(g) − x̂·mean(g·x̂)) for batch statistics, gamma·rstd·g for fixed ones.
   */
  batchNormGrad(
    x: Storage,
    y: Storage | null,
    mean: Storage,
    rstd: Storage,
    gamma: Storage | null,
    dy: Storage,
    dx: Storage,
    dgamma: Storage | null,
    dbeta: Storage | null,
    dres: Storage | null,
    n: number,
    C: number,
    hw: number,
    relu: boolean,
    batchStats: boolean,
  ): void;
}

/** layout (assembly/layout.ts, wgsl/layout.wgsl) */
export interface LayoutKernels {
  /** dst[dstOffset + idx·dstStrides] = src[srcOffset + idx·srcStrides] for idx over shape. */
  copyStrided(
    src: Storage,
    dst: Storage,
    shape: number[],
    srcOffset: number,
    srcStrides: number[],
    dstOffset: number,
    dstStrides: number[],
  ): void;
  /** out[i, :] = x[idx[i], :]; idx is i32. */
  gatherRows(x: Storage, idx: Storage, out: Storage, nIdx: number, cols: number): void;
  /** dx[r, :] = Σ_{i: idx[i] = r} dy[i, :], in index order (deterministic); dx is overwritten. */
  scatterAddRows(dy: Storage, idx: Storage, dx: Storage, nIdx: number, rows: number, cols: number): void;
}

/** neighbours (assembly/neighbours.ts, wgsl/neighbours.wgsl) */
export interface NeighboursKernels {
  /** For each row i of x [m, d]: max_j <x_i, y_j> over rows j of y [k, d] and its index (first on
   *  ties); j = i skipped when excludeSelf. Never materialises m × k. */
  nearestNeighbor(
    x: Storage,
    y: Storage,
    outVal: Storage,
    outIdx: Storage,
    m: number,
    k: number,
    d: number,
    excludeSelf: boolean,
  ): void;
  /** nearestNeighbor of x [k, d] against itself (each pair's score computed once, bit-identical to
   *  nearestNeighbor(x, x, ...)); with cand, also each row's m best as i32 [k, m], best first (value
   *  descending, then index ascending), -1 past the candidates there are. */
  nearestNeighborSelf(
    x: Storage,
    outVal: Storage,
    outIdx: Storage,
    cand: Storage | null,
    k: number,
    d: number,
    m: number,
    excludeSelf: boolean,
  ): void;
  /** Each row r of x [k, d]: the best inner product with the rows cand[r, 0..m) (i32, -1 = none) and
   *  its index, first index on ties; -inf / -1 when no candidate. Same score arithmetic as the search. */
  nearestAmongCandidates(
    x: Storage,
    cand: Storage,
    outVal: Storage,
    outIdx: Storage,
    k: number,
    d: number,
    m: number,
  ): void;
  /** The k largest of each row of [rows, cols], descending, lowest index first on ties. */
  topk(x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void;
}

/** conv (assembly/conv.ts, wgsl/conv.wgsl); images NCHW */
export interface ConvKernels {
  /** out [batch, outH·outW, channels·kernelH·kernelW]; padding reads zero. */
  im2col(x: Storage, out: Storage, p: Conv2dParams): void;
  /** Adjoint of im2col: dx overwritten with the sum of every column entry that read it. */
  col2im(col: Storage, dx: Storage, p: Conv2dParams): void;
  /**
   * Cross-correlation without bias (PyTorch's conv2d): out [batch, outChannels, outH, outW] =
   * Σ_c,ky,kx w[o, c, ky, kx]·x[b, c, oy·strideH − padH + ky, ox·strideW − padW + kx], padding reads
   * zero; out overwritten. Each output sums its taps in one fixed order (thread-count independent).
   */
  conv2d(x: Storage, w: Storage, out: Storage, p: ConvParams): void;
  /** dx [batch, channels, height, width] overwritten with conv2d's input gradient given dy (a gather: deterministic). */
  conv2dGradInput(dy: Storage, w: Storage, dx: Storage, p: ConvParams): void;
  /** dw [outChannels, channels, kernelH, kernelW] overwritten with conv2d's weight gradient summed over the batch, in a fixed order. */
  conv2dGradWeight(x: Storage, dy: Storage, dw: Storage, p: ConvParams): void;
  /**
   * Winograd F(4×4, 3×3) filter transform of w [outChannels, channels, 3, 3]: u [36][outChannels][channels]
   * = G g Gᵀ per filter, or with flip the 180° rotation of each filter transposed, u [36][channels][outChannels]
   * (the filter of the input gradient).
   */
  winogradWeights(w: Storage, u: Storage, outChannels: number, channels: number, flip: boolean): void;
  /**
   * v [36][channels][winogradColumns(count)]: column j = Bᵀ d B of tile first + j's 6×6 input patch
   * (padding reads zero, columns past count are zero); tiles numbered as winogradTiles says.
   */
  winogradInput(x: Storage, v: Storage, p: ConvParams, first: number, count: number): void;
  /**
   * The outputs of tiles [first, first + count) in out [batch, outChannels, outH, outW] = Aᵀ m A of
   * column j of m [36][outChannels][winogradColumns(count)] for tile first + j; no other output is written.
   */
  winogradOutput(m: Storage, out: Storage, p: ConvParams, first: number, count: number): void;
  /**
   * The outputs of tiles [first, first + count) in out [batch, outChannels, outH, outW]: the Winograd
   * convolution of x with u [36][outChannels][channels] (winogradWeights' output). Bit for bit
   * winogradInput, then M_ξ = U_ξ·V_ξ with each output one fma chain over the channels in order from
   * zero (matmul's), then winogradOutput; a backend may fuse the three (wasm does, per block of tiles).
   */
  winogradConv(x: Storage, u: Storage, out: Storage, p: ConvParams, first: number, count: number): void;
  /**
   * The adjoint of winogradOutput, for the weight gradient: dm [36][outChannels][winogradColumns(count)],
   * column j = A dY Aᵀ of tile first + j's 4×4 block of dy [batch, outChannels, outH, outW] (outputs
   * past outH × outW read zero, columns past count are zero).
   */
  winogradOutputGrad(dy: Storage, dm: Storage, p: ConvParams, first: number, count: number): void;
  /**
   * The weight gradient's 36 products for tiles [first, first + count): du [36][outChannels][channels]
   * = (du if accumulate) + Σ_tiles dM_ξ·V_ξᵀ, with V_ξ winogradInput's and dM_ξ winogradOutputGrad's
   * values (dy [batch, outChannels, outH, outW]), summed in an order fixed by the shape, not the thread
   * count; a backend may fuse the three (wasm does, per block of tiles).
   */
  winogradConvGrad(
    x: Storage,
    dy: Storage,
    du: Storage,
    p: ConvParams,
    first: number,
    count: number,
    accumulate: boolean,
  ): void;
  /** The adjoint of winogradWeights (not flipped): dw [outChannels, channels, 3, 3] = Gᵀ dU G of du [36][outChannels][channels], overwritten. */
  winogradWeightsGrad(du: Storage, dw: Storage, outChannels: number, channels: number): void;
  /** out [batch, channels, outH, outW]; argmax (i32, input flat index within the image plane) for max. */
  pool2d(op: 'max' | 'avg', x: Storage, out: Storage, argmax: Storage | null, p: Conv2dParams): void;
  pool2dGrad(op: 'max' | 'avg', dy: Storage, argmax: Storage | null, dx: Storage, p: Conv2dParams): void;
}

/** random (assembly/random.ts, wgsl/random.wgsl): element i uses counter (offset + i) with the key */
export interface RandomKernels {
  /** uniform: [a, b); normal: mean a, std b; bernoulli: 1 with probability a. */
  random(dist: RandomDist, out: Storage, n: number, seed: number, offset: number, a: number, b: number): void;
}

/** optim (assembly/optim.ts, wgsl/optim.wgsl) */
export interface OptimKernels {
  /** In place on param, m, v (decoupled weight decay, bias-corrected moments). */
  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, n: number, p: AdamWParams): void;
  /** target = momentum·target + (1 − momentum)·source, in place. */
  ema(target: Storage, source: Storage, n: number, momentum: number): void;
  /**
   * facebookresearch/dino's clip of one gradient g [n] whose sum of squares is ss[0]: norm[0] =
   * √ss, out = g · clamp(clip / (norm + 1e-6), −∞, 1), each step the f32 operation of the tensor
   * ops it replaces (sqrt, affine, div, clamp, mul), so the results are theirs bit for bit.
   */
  clipScale(grad: Storage, ss: Storage, out: Storage, norm: Storage, n: number, clip: number): void;
}

/** Every kernel of the contract by family (the unit a backend file implements and the profiler groups by). */
export interface KernelFamilies {
  elementwise: ElementwiseKernels;
  matmul: MatmulKernels;
  attention: AttentionKernels;
  reduce: ReduceKernels;
  softmax: SoftmaxKernels;
  norm: NormKernels;
  layout: LayoutKernels;
  neighbours: NeighboursKernels;
  conv: ConvKernels;
  random: RandomKernels;
  optim: OptimKernels;
}

export type KernelFamily = keyof KernelFamilies;

type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** All kernels, derived from KernelFamilies so that a family added there is part of the contract. */
export type Kernels = Intersection<KernelFamilies[KernelFamily]>;
export type KernelName = keyof Kernels;

type FamilyOf<K extends KernelName> = {
  [F in KernelFamily]: K extends keyof KernelFamilies[F] ? F : never;
}[KernelFamily];

/**
 * Each kernel's family, the runtime list of kernels (the profiler wraps exactly these). Its type
 * admits one value per kernel and needs every kernel, so an entry left out or filed under another
 * family does not compile.
 */
export const KERNEL_FAMILY: { readonly [K in KernelName]: FamilyOf<K> } = {
  fill: 'elementwise',
  unary: 'elementwise',
  unaryGrad: 'elementwise',
  binary: 'elementwise',
  where: 'elementwise',
  matmul: 'matmul',
  attention: 'attention',
  attentionGrad: 'attention',
  attentionProbs: 'attention',
  reduce: 'reduce',
  argReduce: 'reduce',
  softmax: 'softmax',
  softmaxGrad: 'softmax',
  layerNorm: 'norm',
  addLayerNorm: 'norm',
  layerNormGrad: 'norm',
  batchNormStats: 'norm',
  batchNormApply: 'norm',
  batchNormGrad: 'norm',
  copyStrided: 'layout',
  gatherRows: 'layout',
  scatterAddRows: 'layout',
  nearestNeighbor: 'neighbours',
  nearestNeighborSelf: 'neighbours',
  nearestAmongCandidates: 'neighbours',
  topk: 'neighbours',
  im2col: 'conv',
  col2im: 'conv',
  conv2d: 'conv',
  conv2dGradInput: 'conv',
  conv2dGradWeight: 'conv',
  winogradWeights: 'conv',
  winogradInput: 'conv',
  winogradOutput: 'conv',
  winogradConv: 'conv',
  winogradOutputGrad: 'conv',
  winogradConvGrad: 'conv',
  winogradWeightsGrad: 'conv',
  pool2d: 'conv',
  pool2dGrad: 'conv',
  random: 'random',
  adamw: 'optim',
  ema: 'optim',
  clipScale: 'optim',
};

export const KERNEL_NAMES = Object.keys(KERNEL_FAMILY) as readonly KernelName[];

/** The kernels plus what holds their storages: allocation, transfers and the device's queue. */
export interface Backend extends Kernels {
  readonly kind: 'wasm' | 'webgpu';
  /** Human-readable description: build, threads, adapter. Tests print it. */
  readonly description: string;

  alloc(length: number, dtype: DType): Storage;
  free(s: Storage): void;
  upload(s: Storage, data: Float32Array | Int32Array): void;
  download(s: Storage): Promise<Float32Array | Int32Array>;
  /** Waits until all enqueued work has finished (and surfaces any deferred device error). */
  sync(): Promise<void>;
  /**
   * Starts the work enqueued so far without waiting for it: WebGPU submits its pending commands,
   * wasm has nothing pending (its kernels return when done). Results are the same with or without.
   */
  flush(): void;
  memory(): MemoryStats;
  /**
   * Submits of command buffers and CPU waits for the device (a read-back, a sync) since the backend
   * was created. Wasm has neither (its kernels return when done): both stay 0.
   */
  traffic(): DeviceTraffic;
  /**
   * The most bytes live at once since the backend was made or since resetPeakLiveBytes(): a run's
   * memory high-water mark. Unlike RSS it is the same for the same allocations, whatever else the
   * process holds, so runs sharing a process can be compared.
   */
  peakLiveBytes(): number;
  /** Starts a new high-water mark at the bytes live now. */
  resetPeakLiveBytes(): void;
  /**
   * f32 elements the attention forward pass saves for its backward pass at these parameters (what
   * they hold is the backend's own business: see AttentionKernels).
   */
  attentionSavedLength(p: AttentionParams): number;
  /** Releases workers / the device. The backend is unusable afterwards. */
  destroy(): void;
}

export interface DeviceTraffic {
  submits: number;
  waits: number;
}

export class BackendError extends Error {
  constructor(
    message: string,
    readonly kernel?: string,
  ) {
    super(kernel ? `${kernel}: ${message}` : message);
    this.name = 'BackendError';
  }
}
