// Random tensors from a counter-based generator (kernel: random, Philox-4x32-10). A Generator is
// just {seed, offset}: every draw reserves a range of stream positions, so saving and restoring
// that pair reproduces every later draw exactly, on any backend and thread count.
import type { Backend, RandomDist } from '../../backend/backend.js';
import { ShapeError, Tensor } from '../tensor.js';
import { empty, tensor } from '../create.js';
import { checkShape, numel } from '../shape.js';
import { affine, mul } from './elementwise.js';
import { reshape } from './view.js';

export interface GeneratorState {
  seed: number;
  offset: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export class Generator {
  seed: number;
  /** Next unused stream position (Philox-4x32 word index: block offset/4, word offset%4). */
  offset: number;

  constructor(seed = 0, offset = 0) {
    this.seed = 0;
    this.offset = 0;
    this.setState({ seed, offset });
  }

  getState(): GeneratorState {
    return { seed: this.seed, offset: this.offset };
  }

  setState(s: GeneratorState): void {
    if (!Number.isSafeInteger(s.seed) || s.seed < 0)
      throw new RangeError(`seed must be an integer in [0, 2^53), got ${s.seed}`);
    if (!Number.isSafeInteger(s.offset) || s.offset < 0)
      throw new RangeError(`offset must be an integer in [0, 2^53), got ${s.offset}`);
    this.seed = s.seed;
    this.offset = s.offset;
  }

  /**
   * Reserves n stream positions and returns the first. Draws start on a fresh Philox block (a
   * multiple of 4), so two draws never share a block: a normal pairs two words of one block.
   */
  reserve(n: number): number {
    const start = Math.ceil(this.offset / 4) * 4;
    const next = start + Math.ceil(n / 4) * 4;
    if (next > MAX_SAFE) throw new RangeError('random stream exhausted (offset reached 2^53): reseed the generator');
    this.offset = next;
    return start;
  }

  private draw(op: string, dist: RandomDist, shape: readonly number[], be: Backend, a: number, b: number): Tensor {
    const s = checkShape(op, shape);
    const out = empty(s, be);
    const n = numel(s);
    if (n > 0) be.random(dist, out.storage, n, this.seed, this.reserve(n), a, b);
    return out;
  }

  /** Uniform in [lo, hi). */
  rand(shape: readonly number[], be: Backend, lo = 0, hi = 1): Tensor {
    if (!(lo <= hi) || !Number.isFinite(hi - lo))
      throw new ShapeError('rand', `needs finite lo ≤ hi, got [${lo}, ${hi})`);
    return this.draw('rand', 'uniform', shape, be, lo, hi);
  }

  /** Normal with the given mean and standard deviation. */
  randn(shape: readonly number[], be: Backend, mean = 0, std = 1): Tensor {
    if (!(std >= 0) || !Number.isFinite(mean) || !Number.isFinite(std))
      throw new ShapeError('randn', `needs a finite mean and std ≥ 0, got ${mean}, ${std}`);
    return this.draw('randn', 'normal', shape, be, mean, std);
  }

  /** 1 with probability p, else 0. */
  bernoulli(shape: readonly number[], be: Backend, p = 0.5): Tensor {
    if (!(p >= 0 && p <= 1)) throw new ShapeError('bernoulli', `p must be in [0, 1], got ${p}`);
    return this.draw('bernoulli', 'bernoulli', shape, be, p, 0);
  }

  /**
   * Normal(mean, std) truncated to [a, b] (timm/DINO's trunc_normal_; bounds are absolute values,
   * default mean ± 2·std). Drawn on the host by inverse CDF from this generator's stream (an init
   * routine, called once per weight), so it is identical on every backend.
   */
  truncatedNormal(
    shape: readonly number[],
    be: Backend,
    opts: { mean?: number; std?: number; a?: number; b?: number } = {},
  ): Tensor {
    const mean = opts.mean ?? 0,
      std = opts.std ?? 1;
    const a = opts.a ?? mean - 2 * std,
      b = opts.b ?? mean + 2 * std;
    if (!(std > 0) || !(a < b) || !Number.isFinite(mean))
      throw new ShapeError('truncatedNormal', `needs std > 0 and a < b, got std ${std}, [${a}, ${b}]`);
    const s = checkShape('truncatedNormal', shape);
    const n = numel(s);
    const start = this.reserve(n);
    // Sample the side of the mean where the interval's CDF values are small (precise in f64).
    const flip = a - mean + (b - mean) > 0;
    const lo = flip ? (mean - b) / std : (a - mean) / std;
    const hi = flip ? (mean - a) / std : (b - mean) / std;
    const cLo = normalCdf(lo),
      cHi = normalCdf(hi);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = ((philoxWord(this.seed, start + i) >>> 8) + 0.5) / 16777216; // (0, 1)
      const z = Math.min(hi, Math.max(lo, normalQuantile(cLo + u * (cHi - cLo))));
      out[i] = mean + std * (flip ? -z : z);
    }
    return tensor(out, s, be);
  }
}

/** The generator the top-level functions use unless given one. */
export const defaultGenerator = new Generator(0);

/** Restarts the default generator from `seed` (offset 0). */
export function manualSeed(seed: number): void {
  defaultGenerator.setState({ seed, offset: 0 });
}

export const rand = (
  shape: readonly number[],
  be: Backend,
  opts: { lo?: number; hi?: number; generator?: Generator } = {},
) => (opts.generator ?? defaultGenerator).rand(shape, be, opts.lo, opts.hi);
export const randn = (
  shape: readonly number[],
  be: Backend,
  opts: { mean?: number; std?: number; generator?: Generator } = {},
) => (opts.generator ?? defaultGenerator).randn(shape, be, opts.mean, opts.std);
export const bernoulli = (shape: readonly number[], be: Backend, opts: { p?: number; generator?: Generator } = {}) =>
  (opts.generator ?? defaultGenerator).bernoulli(shape, be, opts.p);
export const truncatedNormal = (
  shape: readonly number[],
  be: Backend,
  opts: { mean?: number; std?: number; a?: number; b?: number; generator?: Generator } = {},
) => (opts.generator ?? defaultGenerator).truncatedNormal(shape, be, opts);

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). The
 * gradient flows through the same mask. p = 0 is the identity.
 */
export function dropout(x: Tensor, p: number, gen: Generator = defaultGenerator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ShapeError('dropout', `p must be in [0, 1], got ${p}`);
  if (p === 0) return reshape(x, x.shape);
  const keep = gen.bernoulli(x.shape, x.backend, 1 - p);
  const scaled = affine(keep, p === 1 ? 0 : 1 / (1 - p), 0);
  keep.dispose();
  // the mask is a constant of the graph: mul's backward multiplies the gradient by it
  const out = mul(x, scaled);
  if (!out.node) scaled.dispose();
  return out;
}

// ---- host side of the generator (truncatedNormal) -------------------------------------------

/** High 32 bits of a 32x32-bit unsigned product. */
function mulhi(a: number, b: number): number {
  const a0 = a & 0xffff,
    a1 = a >>> 16,
    b0 = b & 0xffff,
    b1 = b >>> 16;
  const p01 = a0 * b1,
    p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

let cachedBlock = -1,
  cachedSeed = -1;
const cachedWords = new Uint32Array(4);

/** Word j of the stream for `seed`: the same Philox-4x32-10 stream the kernels draw from. */
function philoxWord(seed: number, j: number): number {
  const block = Math.floor(j / 4);
  if (block !== cachedBlock || seed !== cachedSeed) {
    let c0 = block >>> 0,
      c1 = Math.floor(block / 2 ** 32) >>> 0,
      c2 = 0,
      c3 = 0;
    let k0 = seed >>> 0,
      k1 = Math.floor(seed / 2 ** 32) >>> 0;
    for (let r = 0; r < 10; r++) {
      const hi0 = mulhi(0xd2511f53, c0),
        lo0 = Math.imul(0xd2511f53, c0) >>> 0;
      const hi1 = mulhi(0xcd9e8d57, c2),
        lo1 = Math.imul(0xcd9e8d57, c2) >>> 0;
      [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    cachedWords.set([c0, c1, c2, c3]);
    cachedBlock = block;
    cachedSeed = seed;
  }
  return cachedWords[j % 4];
}

/** erfc to near double precision: Taylor series of erf below 2, Laplace's continued fraction above. */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x,
      acc = x;
    for (let k = 1; k < 100; k++) {
      term *= (-x * x) / k;
      const t = term / (2 * k + 1);
      acc += t;
      if (Math.abs(t) < 1e-17 * Math.abs(acc)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * acc;
  }
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

// Acklam's coefficients: central region QA/QB, tails QC/QD.
const QA = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
  2.506628277459239,
];
const QB = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const QC = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
];
const QD = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

/** Φ⁻¹(p) by Acklam's rational approximation (relative error 1.2e-9, far below f32 resolution). */
function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((QC[0] * q + QC[1]) * q + QC[2]) * q + QC[3]) * q + QC[4]) * q + QC[5]) /
      ((((QD[0] * q + QD[1]) * q + QD[2]) * q + QD[3]) * q + 1)
    );
  }
  if (p <= 1 - 0.02425) {
    const q = p - 0.5,
      r = q * q;
    return (
      ((((((QA[0] * r + QA[1]) * r + QA[2]) * r + QA[3]) * r + QA[4]) * r + QA[5]) * q) /
      (((((QB[0] * r + QB[1]) * r + QB[2]) * r + QB[3]) * r + QB[4]) * r + 1)
    );
  }
  const q = Math.sqrt(-2 * Math.log(1 - p));
  return (
    -(((((QC[0] * q + QC[1]) * q + QC[2]) * q + QC[3]) * q + QC[4]) * q + QC[5]) /
    ((((QD[0] * q + QD[1]) * q + QD[2]) * q + QD[3]) * q + 1)
  );
}
