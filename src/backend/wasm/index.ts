// The wasm backend: AssemblyScript SIMD kernels on a shared memory, rows split across worker threads.
import type {
  AdamWParams, AttentionParams, Backend, BinaryOp, Conv2dParams, ConvParams, DType, MatmulParams, MemoryStats, RandomDist, ReduceOp, Storage,
  UnaryOp,
} from '../backend.js';
import { BackendError } from '../backend.js';
import { WasmRuntime, type WasmBuild } from './runtime.js';
import type { WasmStorage } from './storage.js';
import * as elementwise from './elementwise.js';
import * as matmul from './matmul.js';
import * as attention from './attention.js';
import * as reduce from './reduce.js';
import * as softmax from './softmax.js';
import * as norm from './norm.js';
import * as layout from './layout.js';
import * as neighbours from './neighbours.js';
import * as conv from './conv.js';
import * as convgemm from './convgemm.js';
import * as random from './random.js';
import * as optim from './optim.js';

export interface WasmBackendOptions {
  /** Worker threads including the main one; defaults to the core count. */
  threads?: number;
  /** 'relaxed' (f32x4.relaxed_madd) where the runtime accepts it, else 'simd'. */
  build?: WasmBuild;
}

export class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  readonly description: string;
  private constructor(readonly rt: WasmRuntime) {
    this.description = `wasm ${rt.build} build, ${rt.threads} thread${rt.threads === 1 ? '' : 's'}`;
  }

  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    return new WasmBackend(await WasmRuntime.create(opts));
  }

  alloc(length: number, dtype: DType): Storage {
    if (!Number.isInteger(length) || length < 0) throw new BackendError(`cannot allocate ${length} elements`);
    const ptr = this.rt.allocBytes(Math.max(4, length * 4));
    const s: WasmStorage = { length, dtype, ptr, freed: false };
    return s;
  }

  free(s: Storage): void {
    const w = s as WasmStorage;
    if (w.freed) throw new BackendError('double free of a wasm storage');
    w.freed = true;
    this.rt.freeBytes(w.ptr, Math.max(4, w.length * 4));
  }

  upload(s: Storage, data: Float32Array | Int32Array): void {
    const w = s as WasmStorage;
    if (data.length !== w.length) throw new BackendError(`upload of ${data.length} elements into a storage of ${w.length}`);
    if (w.dtype === 'i32') this.rt.i32(w.ptr, w.length).set(data as Int32Array);
    else this.rt.f32(w.ptr, w.length).set(data as Float32Array);
  }

  async download(s: Storage): Promise<Float32Array | Int32Array> {
    return this.readSync(s);
  }

  /** Wasm work is synchronous, so reads can be too (used by the trainer's hot path and tests). */
  readSync(s: Storage): Float32Array | Int32Array {
    const w = s as WasmStorage;
    return w.dtype === 'i32' ? this.rt.i32(w.ptr, w.length).slice() : this.rt.f32(w.ptr, w.length).slice();
  }

  async sync(): Promise<void> {}

  memory(): MemoryStats {
    return { liveBuffers: this.rt.liveBuffers, liveBytes: this.rt.liveBytes, pooledBytes: this.rt.pooledBytes };
  }

  destroy(): void {
    this.rt.destroy();
  }

  // elementwise
  fill(out: Storage, n: number, value: number): void {
    elementwise.fill(this.rt, out, n, value);
  }
  unary(op: UnaryOp, x: Storage, out: Storage, n: number, a: number, b: number): void {
    elementwise.unary(this.rt, op, x, out, n, a, b);
  }
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, n: number, a: number, b: number): void {
    elementwise.unaryGrad(this.rt, op, x, y, dy, dx, n, a, b);
  }
  binary(op: BinaryOp, a: Storage, b: Storage, out: Storage, shape: number[], aStrides: number[], bStrides: number[]): void {
    elementwise.binary(this.rt, op, a, b, out, shape, aStrides, bStrides);
  }
  where(cond: Storage, a: Storage, b: Storage, out: Storage, shape: number[], cStrides: number[], aStrides: number[], bStrides: number[]): void {
    elementwise.where(this.rt, cond, a, b, out, shape, cStrides, aStrides, bStrides);
  }

  // matmul
  matmul(a: Storage, b: Storage, out: Storage, p: MatmulParams): void {
    matmul.matmul(this.rt, a, b, out, p);
  }

  // attention
  attention(qkv: Storage, out: Storage, probs: Storage, p: AttentionParams): void {
    attention.attention(this.rt, qkv, out, probs, p);
  }
  attentionGrad(qkv: Storage, probs: Storage, dout: Storage, dqkv: Storage, p: AttentionParams): void {
    attention.attentionGrad(this.rt, qkv, probs, dout, dqkv, p);
  }

  // reduce
  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    reduce.reduce(this.rt, op, x, out, outer, len, inner);
  }
  argReduce(op: 'max' | 'min', x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    reduce.argReduce(this.rt, op, x, out, outer, len, inner);
  }

  // softmax
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    softmax.softmax(this.rt, x, out, rows, cols, log);
  }
  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    softmax.softmaxGrad(this.rt, y, dy, dx, rows, cols, log);
  }

  // norm
  layerNorm(x: Storage, gamma: Storage | null, beta: Storage | null, out: Storage, mean: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    norm.layerNorm(this.rt, x, gamma, beta, out, mean, rstd, rows, cols, eps);
  }
  layerNormGrad(x: Storage, gamma: Storage | null, mean: Storage, rstd: Storage, dy: Storage, dx: Storage, dgamma: Storage | null, dbeta: Storage | null, rows: number, cols: number): void {
    norm.layerNormGrad(this.rt, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols);
  }

  batchNormStats(x: Storage, mean: Storage, variance: Storage, n: number, C: number, hw: number): void {
    norm.batchNormStats(this.rt, x, mean, variance, n, C, hw);
  }
  batchNormApply(x: Storage, mean: Storage, rstd: Storage, gamma: Storage | null, beta: Storage | null, residual: Storage | null,
    out: Storage, n: number, C: number, hw: number, relu: boolean): void {
    norm.batchNormApply(this.rt, x, mean, rstd, gamma, beta, residual, out, n, C, hw, relu);
  }
  batchNormGrad(x: Storage, y: Storage | null, mean: Storage, rstd: Storage, gamma: Storage | null, dy: Storage, dx: Storage,
    dgamma: Storage | null, dbeta: Storage | null, dres: Storage | null, n: number, C: number, hw: number, relu: boolean,
    batchStats: boolean): void {
    norm.batchNormGrad(this.rt, x, y, mean, rstd, gamma, dy, dx, dgamma, dbeta, dres, n, C, hw, relu, batchStats);
  }

  // layout
  copyStrided(src: Storage, dst: Storage, shape: number[], srcOffset: number, srcStrides: number[], dstOffset: number, dstStrides: number[]): void {
    layout.copyStrided(this.rt, src, dst, shape, srcOffset, srcStrides, dstOffset, dstStrides);
  }
  gatherRows(x: Storage, idx: Storage, out: Storage, nIdx: number, cols: number): void {
    layout.gatherRows(this.rt, x, idx, out, nIdx, cols);
  }
  scatterAddRows(dy: Storage, idx: Storage, dx: Storage, nIdx: number, rows: number, cols: number): void {
    layout.scatterAddRows(this.rt, dy, idx, dx, nIdx, rows, cols);
  }

  // neighbours
  nearestNeighbor(x: Storage, y: Storage, outVal: Storage, outIdx: Storage, m: number, k: number, d: number, excludeSelf: boolean): void {
    neighbours.nearestNeighbor(this.rt, x, y, outVal, outIdx, m, k, d, excludeSelf);
  }
  nearestNeighborSelf(x: Storage, outVal: Storage, outIdx: Storage, cand: Storage | null, k: number, d: number, m: number,
    excludeSelf: boolean): void {
    neighbours.nearestNeighborSelf(this.rt, x, outVal, outIdx, cand, k, d, m, excludeSelf);
  }
  nearestAmongCandidates(x: Storage, cand: Storage, outVal: Storage, outIdx: Storage, k: number, d: number, m: number): void {
    neighbours.nearestAmongCandidates(this.rt, x, cand, outVal, outIdx, k, d, m);
  }
  topk(x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void {
    neighbours.topk(this.rt, x, outVal, outIdx, rows, cols, k);
  }

  // conv
  im2col(x: Storage, out: Storage, p: Conv2dParams): void {
    conv.im2col(this.rt, x, out, p);
  }
  col2im(col: Storage, dx: Storage, p: Conv2dParams): void {
    conv.col2im(this.rt, col, dx, p);
  }
  conv2d(x: Storage, w: Storage, out: Storage, p: ConvParams): void {
    convgemm.conv2d(this.rt, x, w, out, p);
  }
  conv2dGradInput(dy: Storage, w: Storage, dx: Storage, p: ConvParams): void {
    convgemm.conv2dGradInput(this.rt, dy, w, dx, p);
  }
  conv2dGradWeight(x: Storage, dy: Storage, dw: Storage, p: ConvParams): void {
    convgemm.conv2dGradWeight(this.rt, x, dy, dw, p);
  }
  pool2d(op: 'max' | 'avg', x: Storage, out: Storage, argmax: Storage | null, p: Conv2dParams): void {
    conv.pool2d(this.rt, op, x, out, argmax, p);
  }
  pool2dGrad(op: 'max' | 'avg', dy: Storage, argmax: Storage | null, dx: Storage, p: Conv2dParams): void {
    conv.pool2dGrad(this.rt, op, dy, argmax, dx, p);
  }

  // random
  random(dist: RandomDist, out: Storage, n: number, seed: number, offset: number, a: number, b: number): void {
    random.random(this.rt, dist, out, n, seed, offset, a, b);
  }

  // optim
  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, n: number, p: AdamWParams): void {
    optim.adamw(this.rt, param, grad, m, v, n, p);
  }
  ema(target: Storage, source: Storage, n: number, momentum: number): void {
    optim.ema(this.rt, target, source, n, momentum);
  }
}
