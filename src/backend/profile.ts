// A profiling Backend: wraps another backend, times every kernel call made inside a profiled step
// and groups the times by kernel family (the sections of backend.ts). Outside beginStep/endStep it
// only forwards, so networks built on it cost one flag test per kernel when profiling is off.
//
// Timing model. Wasm kernels are synchronous (the fork-join returns when every thread is done), so
// the wall time of a call is the kernel's time. WebGPU kernels are only encoded; here, while a step
// is profiled, each kernel is submitted on its own right after encoding. That serialises the step
// (no batching of dispatches into one submit, one pass per kernel) and adds per-submit cost, so a
// profiled WebGPU step is slower than an unprofiled one. On Dawn's OpenGL ES backend (Mesa llvmpipe
// here) a submit executes the work before it returns, so the per-kernel times are the work itself;
// on an adapter that runs submits asynchronously the work left over at the end of the step shows up
// as "device wait" (endStep awaits the queue) instead of under the kernels.
import type {
  AdamWParams, AttentionParams, Backend, BinaryOp, Conv2dParams, ConvParams, DType, MatmulParams, MemoryStats, RandomDist, ReduceOp, Storage,
  UnaryOp,
} from './backend.js';
import type { WebGPUBackend } from './webgpu/index.js';

export type KernelFamily =
  | 'elementwise' | 'matmul' | 'attention' | 'reduce' | 'softmax' | 'norm' | 'layout' | 'neighbours' | 'conv' | 'random' | 'optim';

export const KERNEL_FAMILIES = ['elementwise', 'matmul', 'attention', 'reduce', 'softmax', 'norm', 'layout', 'neighbours', 'conv', 'random', 'optim'] as const;

/** Kernel method → family, as backend.ts groups them. */
const FAMILY: Record<string, KernelFamily> = {
  fill: 'elementwise', unary: 'elementwise', unaryGrad: 'elementwise', binary: 'elementwise', where: 'elementwise',
  matmul: 'matmul',
  attention: 'attention', attentionGrad: 'attention',
  reduce: 'reduce', argReduce: 'reduce',
  softmax: 'softmax', softmaxGrad: 'softmax',
  layerNorm: 'norm', layerNormGrad: 'norm', batchNormStats: 'norm', batchNormApply: 'norm', batchNormGrad: 'norm',
  copyStrided: 'layout', gatherRows: 'layout', scatterAddRows: 'layout',
  nearestNeighbor: 'neighbours', nearestNeighborSelf: 'neighbours', nearestAmongCandidates: 'neighbours', topk: 'neighbours',
  im2col: 'conv', col2im: 'conv', conv2d: 'conv', conv2dGradInput: 'conv', conv2dGradWeight: 'conv', pool2d: 'conv', pool2dGrad: 'conv',
  random: 'random',
  adamw: 'optim', ema: 'optim',
};

export function kernelFamily(kernel: string): KernelFamily {
  const f = FAMILY[kernel];
  if (!f) throw new Error(`profile: '${kernel}' is not a kernel of the Backend interface`);
  return f;
}

interface Stat {
  calls: number;
  ms: number;
}

/** Accumulated times of some steps. Keys of `kernels` are the method, with the op where it has one (binary.add). */
class Totals {
  steps = 0;
  stepMs = 0;
  transferMs = 0;
  transferCalls = 0;
  waitMs = 0;
  readonly kernels = new Map<string, Stat>();
}

export interface ProfileRow {
  name: string;
  calls: number;
  ms: number;
  pct: number;
}

export interface ProfileReport {
  backend: string;
  /** Steps the averages are over. */
  steps: number;
  /** The first step is left out when there are more (pipeline compilation, memory growth). */
  firstStepExcluded: boolean;
  /** Mean wall time of a profiled step, ms. */
  stepMs: number;
  /** True on WebGPU: kernels were submitted one by one (see the file comment). */
  serialised: boolean;
  /** Per kernel family, per step: calls and ms; pct of the step. Families never called are left out. */
  families: ProfileRow[];
  /** Per kernel (method.op), per step, slowest first. */
  kernels: ProfileRow[];
  /** upload/download per step. */
  transfer: ProfileRow;
  /** Awaiting the device at the end of the step (work not yet finished when the step's code returned). */
  deviceWait: ProfileRow;
  /** Step time not in kernels, transfers or the wait: autograd, tensor bookkeeping, allocation, JS. */
  host: ProfileRow;
}

export class ProfiledBackend implements Backend {
  readonly kind: 'wasm' | 'webgpu';
  readonly description: string;
  private active = false;
  private stepStart = 0;
  private first: Totals | null = null;
  private rest = new Totals();
  private cur = new Totals();
  /** Submits the kernel just encoded (WebGPU), so its work is inside its own timing. */
  private readonly afterKernel: (() => void) | null;

  constructor(readonly inner: Backend) {
    this.kind = inner.kind;
    this.description = inner.description;
    this.afterKernel = inner.kind === 'webgpu' ? () => (inner as WebGPUBackend).rt.flush() : null;
  }

  // ---- steps --------------------------------------------------------------------------------

  /** Starts recording one step; kernels called until endStep are timed. */
  beginStep(): void {
    if (this.active) throw new Error('profile: beginStep called twice without endStep');
    this.active = true;
    this.cur = new Totals();
    this.stepStart = performance.now();
  }

  /** Waits for the device, then closes the step. */
  async endStep(): Promise<void> {
    if (!this.active) throw new Error('profile: endStep without beginStep');
    const t0 = performance.now();
    await this.inner.sync();
    const t1 = performance.now();
    this.active = false;
    const c = this.cur;
    c.waitMs += t1 - t0;
    c.stepMs += t1 - this.stepStart;
    c.steps = 1;
    if (!this.first) this.first = c;
    else merge(this.rest, c);
  }

  /** Forgets every recorded step. */
  reset(): void {
    this.first = null;
    this.rest = new Totals();
  }

  get steps(): number {
    return (this.first ? 1 : 0) + this.rest.steps;
  }

  /** Per-step averages over the recorded steps (all but the first when there are several). */
  report(): ProfileReport {
    const useRest = this.rest.steps > 0;
    const t = useRest ? this.rest : this.first;
    if (!t) throw new Error('profile: no step was recorded');
    const n = t.steps;
    const stepMs = t.stepMs / n;
    const row = (name: string, calls: number, ms: number): ProfileRow => ({ name, calls: calls / n, ms: ms / n, pct: (100 * ms) / t.stepMs });
    const fam = new Map<KernelFamily, Stat>();
    let kernelMs = 0;
    for (const [key, s] of t.kernels) {
      const f = kernelFamily(key.split('.')[0]);
      const a = fam.get(f) ?? { calls: 0, ms: 0 };
      a.calls += s.calls;
      a.ms += s.ms;
      fam.set(f, a);
      kernelMs += s.ms;
    }
    const families = [...fam].map(([f, s]) => row(f, s.calls, s.ms)).sort((a, b) => b.ms - a.ms);
    const kernels = [...t.kernels].map(([k, s]) => row(k, s.calls, s.ms)).sort((a, b) => b.ms - a.ms);
    const hostMs = t.stepMs - kernelMs - t.transferMs - t.waitMs;
    return {
      backend: this.description, steps: n, firstStepExcluded: useRest, stepMs, serialised: this.afterKernel !== null,
      families, kernels,
      transfer: row('transfer (upload/download)', t.transferCalls, t.transferMs),
      deviceWait: row('device wait (end of step)', 0, t.waitMs),
      host: row('host (autograd, bookkeeping, JS)', 0, hostMs),
    };
  }

  // ---- timing -------------------------------------------------------------------------------

  /** Runs one kernel call, timing it under key while a step is being profiled. */
  private timed(key: string, run: () => void): void {
    if (!this.active) return run();
    const t0 = performance.now();
    run();
    this.record(key, t0);
  }

  private record(key: string, t0: number): void {
    if (this.afterKernel) this.afterKernel();
    const ms = performance.now() - t0;
    const s = this.cur.kernels.get(key);
    if (s) {
      s.calls++;
      s.ms += ms;
    } else {
      this.cur.kernels.set(key, { calls: 1, ms });
    }
  }

  // ---- memory and transfers (forwarded; transfers timed) ------------------------------------

  alloc(length: number, dtype: DType): Storage {
    return this.inner.alloc(length, dtype);
  }
  free(s: Storage): void {
    this.inner.free(s);
  }
  upload(s: Storage, data: Float32Array | Int32Array): void {
    if (!this.active) return this.inner.upload(s, data);
    const t0 = performance.now();
    this.inner.upload(s, data);
    this.cur.transferMs += performance.now() - t0;
    this.cur.transferCalls++;
  }
  async download(s: Storage): Promise<Float32Array | Int32Array> {
    if (!this.active) return this.inner.download(s);
    const t0 = performance.now();
    const r = await this.inner.download(s);
    this.cur.transferMs += performance.now() - t0;
    this.cur.transferCalls++;
    return r;
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  memory(): MemoryStats {
    return this.inner.memory();
  }
  destroy(): void {
    this.inner.destroy();
  }

  // ---- kernels ------------------------------------------------------------------------------

  fill(out: Storage, n: number, value: number): void {
    this.timed('fill', () => this.inner.fill(out, n, value));
  }
  unary(op: UnaryOp, x: Storage, out: Storage, n: number, a: number, b: number): void {
    this.timed(`unary.${op}`, () => this.inner.unary(op, x, out, n, a, b));
  }
  unaryGrad(op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, n: number, a: number, b: number): void {
    this.timed(`unaryGrad.${op}`, () => this.inner.unaryGrad(op, x, y, dy, dx, n, a, b));
  }
  binary(op: BinaryOp, a: Storage, b: Storage, out: Storage, shape: number[], aStrides: number[], bStrides: number[]): void {
    this.timed(`binary.${op}`, () => this.inner.binary(op, a, b, out, shape, aStrides, bStrides));
  }
  where(cond: Storage, a: Storage, b: Storage, out: Storage, shape: number[], cStrides: number[], aStrides: number[], bStrides: number[]): void {
    this.timed('where', () => this.inner.where(cond, a, b, out, shape, cStrides, aStrides, bStrides));
  }
  matmul(a: Storage, b: Storage, out: Storage, p: MatmulParams): void {
    this.timed('matmul', () => this.inner.matmul(a, b, out, p));
  }
  attention(qkv: Storage, out: Storage, probs: Storage, p: AttentionParams): void {
    this.timed('attention', () => this.inner.attention(qkv, out, probs, p));
  }
  attentionGrad(qkv: Storage, probs: Storage, dout: Storage, dqkv: Storage, p: AttentionParams): void {
    this.timed('attentionGrad', () => this.inner.attentionGrad(qkv, probs, dout, dqkv, p));
  }
  reduce(op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    this.timed(`reduce.${op}`, () => this.inner.reduce(op, x, out, outer, len, inner));
  }
  argReduce(op: 'max' | 'min', x: Storage, out: Storage, outer: number, len: number, inner: number): void {
    this.timed(`argReduce.${op}`, () => this.inner.argReduce(op, x, out, outer, len, inner));
  }
  softmax(x: Storage, out: Storage, rows: number, cols: number, log: boolean): void {
    this.timed(log ? 'softmax.log' : 'softmax', () => this.inner.softmax(x, out, rows, cols, log));
  }
  softmaxGrad(y: Storage, dy: Storage, dx: Storage, rows: number, cols: number, log: boolean): void {
    this.timed(log ? 'softmaxGrad.log' : 'softmaxGrad', () => this.inner.softmaxGrad(y, dy, dx, rows, cols, log));
  }
  layerNorm(x: Storage, gamma: Storage | null, beta: Storage | null, out: Storage, mean: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
    this.timed('layerNorm', () => this.inner.layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps));
  }
  layerNormGrad(x: Storage, gamma: Storage | null, mean: Storage, rstd: Storage, dy: Storage, dx: Storage, dgamma: Storage | null, dbeta: Storage | null, rows: number, cols: number): void {
    this.timed('layerNormGrad', () => this.inner.layerNormGrad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols));
  }
  batchNormStats(x: Storage, mean: Storage, variance: Storage, n: number, C: number, hw: number): void {
    this.timed('batchNormStats', () => this.inner.batchNormStats(x, mean, variance, n, C, hw));
  }
  batchNormApply(x: Storage, mean: Storage, rstd: Storage, gamma: Storage | null, beta: Storage | null, residual: Storage | null,
    out: Storage, n: number, C: number, hw: number, relu: boolean): void {
    this.timed('batchNormApply', () => this.inner.batchNormApply(x, mean, rstd, gamma, beta, residual, out, n, C, hw, relu));
  }
  batchNormGrad(x: Storage, y: Storage | null, mean: Storage, rstd: Storage, gamma: Storage | null, dy: Storage, dx: Storage,
    dgamma: Storage | null, dbeta: Storage | null, dres: Storage | null, n: number, C: number, hw: number, relu: boolean,
    batchStats: boolean): void {
    this.timed('batchNormGrad', () => this.inner.batchNormGrad(x, y, mean, rstd, gamma, dy, dx, dgamma, dbeta, dres, n, C, hw, relu, batchStats));
  }
  copyStrided(src: Storage, dst: Storage, shape: number[], srcOffset: number, srcStrides: number[], dstOffset: number, dstStrides: number[]): void {
    this.timed('copyStrided', () => this.inner.copyStrided(src, dst, shape, srcOffset, srcStrides, dstOffset, dstStrides));
  }
  gatherRows(x: Storage, idx: Storage, out: Storage, nIdx: number, cols: number): void {
    this.timed('gatherRows', () => this.inner.gatherRows(x, idx, out, nIdx, cols));
  }
  scatterAddRows(dy: Storage, idx: Storage, dx: Storage, nIdx: number, rows: number, cols: number): void {
    this.timed('scatterAddRows', () => this.inner.scatterAddRows(dy, idx, dx, nIdx, rows, cols));
  }
  nearestNeighbor(x: Storage, y: Storage, outVal: Storage, outIdx: Storage, m: number, k: number, d: number, excludeSelf: boolean): void {
    this.timed('nearestNeighbor', () => this.inner.nearestNeighbor(x, y, outVal, outIdx, m, k, d, excludeSelf));
  }
  nearestNeighborSelf(x: Storage, outVal: Storage, outIdx: Storage, cand: Storage | null, k: number, d: number, m: number,
    excludeSelf: boolean): void {
    this.timed('nearestNeighborSelf', () => this.inner.nearestNeighborSelf(x, outVal, outIdx, cand, k, d, m, excludeSelf));
  }
  nearestAmongCandidates(x: Storage, cand: Storage, outVal: Storage, outIdx: Storage, k: number, d: number, m: number): void {
    this.timed('nearestAmongCandidates', () => this.inner.nearestAmongCandidates(x, cand, outVal, outIdx, k, d, m));
  }
  topk(x: Storage, outVal: Storage, outIdx: Storage, rows: number, cols: number, k: number): void {
    this.timed('topk', () => this.inner.topk(x, outVal, outIdx, rows, cols, k));
  }
  im2col(x: Storage, out: Storage, p: Conv2dParams): void {
    this.timed('im2col', () => this.inner.im2col(x, out, p));
  }
  col2im(col: Storage, dx: Storage, p: Conv2dParams): void {
    this.timed('col2im', () => this.inner.col2im(col, dx, p));
  }
  conv2d(x: Storage, w: Storage, out: Storage, p: ConvParams): void {
    this.timed('conv2d', () => this.inner.conv2d(x, w, out, p));
  }
  conv2dGradInput(dy: Storage, w: Storage, dx: Storage, p: ConvParams): void {
    this.timed('conv2dGradInput', () => this.inner.conv2dGradInput(dy, w, dx, p));
  }
  conv2dGradWeight(x: Storage, dy: Storage, dw: Storage, p: ConvParams): void {
    this.timed('conv2dGradWeight', () => this.inner.conv2dGradWeight(x, dy, dw, p));
  }
  pool2d(op: 'max' | 'avg', x: Storage, out: Storage, argmax: Storage | null, p: Conv2dParams): void {
    this.timed(`pool2d.${op}`, () => this.inner.pool2d(op, x, out, argmax, p));
  }
  pool2dGrad(op: 'max' | 'avg', dy: Storage, argmax: Storage | null, dx: Storage, p: Conv2dParams): void {
    this.timed(`pool2dGrad.${op}`, () => this.inner.pool2dGrad(op, dy, argmax, dx, p));
  }
  random(dist: RandomDist, out: Storage, n: number, seed: number, offset: number, a: number, b: number): void {
    this.timed(`random.${dist}`, () => this.inner.random(dist, out, n, seed, offset, a, b));
  }
  adamw(param: Storage, grad: Storage, m: Storage, v: Storage, n: number, p: AdamWParams): void {
    this.timed('adamw', () => this.inner.adamw(param, grad, m, v, n, p));
  }
  ema(target: Storage, source: Storage, n: number, momentum: number): void {
    this.timed('ema', () => this.inner.ema(target, source, n, momentum));
  }
}

function merge(into: Totals, t: Totals): void {
  into.steps += t.steps;
  into.stepMs += t.stepMs;
  into.transferMs += t.transferMs;
  into.transferCalls += t.transferCalls;
  into.waitMs += t.waitMs;
  for (const [k, s] of t.kernels) {
    const a = into.kernels.get(k);
    if (a) {
      a.calls += s.calls;
      a.ms += s.ms;
    } else {
      into.kernels.set(k, { ...s });
    }
  }
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtCalls = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/** The profile as markdown: one row per kernel family, then transfers, device wait and host time; the top kernels below. */
export function profileTable(r: ProfileReport, topKernels = 10): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = (list: ProfileRow[], calls: boolean) => list.map((x) => line([x.name, calls ? fmtCalls(x.calls) : '', fmtMs(x.ms), `${x.pct.toFixed(1)}%`]));
  const kernelMs = r.families.reduce((s, f) => s + f.ms, 0);
  const note = `${r.backend}: mean of ${r.steps} step${r.steps === 1 ? '' : 's'}${r.firstStepExcluded ? ' (first step left out)' : ''}, ` +
    `${fmtMs(r.stepMs)} ms per step${r.serialised ? '; kernels submitted one at a time (serialised, slower than unprofiled)' : ''}`;
  return [
    note, '',
    line(['kernel family', 'calls/step', 'ms/step', '% of step']), line(['---', '---', '---', '---']),
    ...rows(r.families, true),
    line(['**all kernels**', fmtCalls(r.families.reduce((s, f) => s + f.calls, 0)), fmtMs(kernelMs), `${((100 * kernelMs) / r.stepMs).toFixed(1)}%`]),
    ...rows([r.transfer], true),
    ...(r.deviceWait.ms > 0.05 * r.stepMs || r.serialised ? rows([r.deviceWait], false) : []),
    ...rows([r.host], false),
    line(['**step**', '', fmtMs(r.stepMs), '100%']),
    '',
    line(['kernel', 'calls/step', 'ms/step', '% of step']), line(['---', '---', '---', '---']),
    ...rows(r.kernels.slice(0, topKernels), true),
  ].join('\n');
}
