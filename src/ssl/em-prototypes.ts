// Decoupled prototypes (--prototypes em): the K prototypes are the means of a diagonal-covariance
// Gaussian mixture over the teacher's L2-normalised bottleneck features (backbone features with
// --prototypes_only), fitted by online EM with deterministic annealing instead of by gradient. The
// equations, and which parts of them are our reconstruction of arXiv 2510.20108, are in
// docs/em-prototypes.md; the names here follow it.
//
// Everything runs on the device through existing ops (two matmuls for the log-joint, softmax,
// reductions, elementwise), so both backends fit the mixture with their own kernels; a B×K×D
// tensor is never formed.
import type { Backend } from '../backend/backend.js';
import { keep, noGrad, ShapeError, tidy, type Tensor } from '../tensor/tensor.js';
import { full, tensor } from '../tensor/create.js';
import { add, div, exp, greater, log, maximum, mul, sqrt, square, sub, where } from '../tensor/ops/elementwise.js';
import { matmul } from '../tensor/ops/matmul.js';
import { sum } from '../tensor/ops/reduce.js';
import { softmax } from '../tensor/ops/softmax.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { nearestNeighbor } from '../tensor/ops/neighbours.js';
import { Generator, type GeneratorState } from '../tensor/ops/random.js';
import { reshape } from '../tensor/ops/view.js';

/**
 * Pseudo-count of the initial state: the initial means and unit variances weigh as much as one
 * sample, so the first features the component explains move it most of the way.
 */
export const EM_INIT_COUNT = 1;
/** Initial per-dimension variance ("unit variances"). */
export const EM_INIT_VARIANCE = 1;
/**
 * Mixture weights below this are raised to it before the log, so a component that has lost all its
 * mass keeps a finite log-weight (and its mean) instead of NaN.
 */
export const EM_MIN_WEIGHT = 1e-12;
/**
 * Symmetry breaking: components whose normalised means are closer than this Euclidean distance
 * (cosine above 1 − ε²/2) are identical as far as EM is concerned, and EM can never pull identical
 * components apart, so each of them is displaced by EM_SPLIT_SCALE of its own standard deviation
 * in a random direction. Ten times below the collapse metric's ε = 0.025 so the split rule
 * separates true duplicates without deciding the measured unique count.
 */
export const EM_SPLIT_EPS = 0.0025;
export const EM_SPLIT_SCALE = 0.5;
/** Stream of the split directions, offset from the run seed so it shares no draws with the networks. */
export const EM_GENERATOR_SALT = 0x454d;

export interface EmOptions {
  /** Per-sample forgetting rate η of a component's statistics, in (0, 1). */
  eta: number;
  /** Floor of every per-dimension variance. */
  varFloor: number;
  /** β at step 0 of the annealing, in (0, 1]. */
  betaStart: number;
  /** Steps over which β rises linearly to 1 (0: β = 1 throughout). */
  betaWarmup: number;
  /** Seed of the split directions' generator. */
  seed: number;
}

/** The EM state as it goes into a checkpoint (the means, variances and weights follow from it). */
export interface EmHostState {
  count: Float32Array;
  sum: Float32Array;
  sumsq: Float32Array;
  usage: Float32Array;
  generator: GeneratorState;
}

export const EM_TENSOR_NAMES = ['count', 'sum', 'sumsq', 'usage'] as const;

export class EmPrototypes {
  readonly K: number;
  readonly D: number;
  readonly backend: Backend;
  readonly opts: EmOptions;
  readonly generator: Generator;
  /** N_k, the forgotten soft count [K, 1]. */
  count!: Tensor;
  /** S_k = Σ r·x [K, D]. */
  sum!: Tensor;
  /** Q_k = Σ r·x² [K, D]. */
  sumsq!: Tensor;
  /** u_k, the mixture weights [1, K] (sum to 1). */
  usage!: Tensor;
  /** μ_k = S_k / N_k [K, D]. */
  mean!: Tensor;
  /** σ²_k = max(Q_k / N_k − μ_k², floor) [K, D]. */
  variance!: Tensor;
  /** log max(u_k, EM_MIN_WEIGHT) [1, K]. */
  logWeight!: Tensor;
  /** How many components the last update displaced (host copy, for the log). */
  lastSplit = 0;

  /** Starts from `prototypes` [K, D] (normalised here) with unit variances and uniform weights. */
  constructor(prototypes: Tensor, opts: EmOptions) {
    if (prototypes.rank !== 2)
      throw new ShapeError('EmPrototypes', `expects [K, D] prototypes, got [${prototypes.shape}]`);
    if (!(opts.eta > 0 && opts.eta < 1)) throw new RangeError(`EmPrototypes: eta must be in (0, 1), got ${opts.eta}`);
    if (!(opts.varFloor > 0)) throw new RangeError(`EmPrototypes: varFloor must be positive, got ${opts.varFloor}`);
    if (!(opts.betaStart > 0 && opts.betaStart <= 1))
      throw new RangeError(`EmPrototypes: betaStart must be in (0, 1], got ${opts.betaStart}`);
    [this.K, this.D] = prototypes.shape;
    this.backend = prototypes.backend;
    this.opts = { ...opts };
    this.generator = new Generator(opts.seed + EM_GENERATOR_SALT);
    const s = noGrad(() =>
      tidy(() => {
        const mu = l2Normalize(prototypes, -1);
        const n0 = full([this.K, 1], EM_INIT_COUNT, this.backend);
        return {
          count: n0,
          sum: mul(mu, EM_INIT_COUNT),
          sumsq: mul(add(square(mu), EM_INIT_VARIANCE), EM_INIT_COUNT),
          usage: full([1, this.K], 1 / this.K, this.backend),
        };
      }),
    );
    this.setStats(s);
  }

  /** β_t = β₀ + (1 − β₀)·min(1, t / T) after t steps. */
  beta(step: number): number {
    const { betaStart: b0, betaWarmup: T } = this.opts;
    return T <= 0 ? 1 : b0 + (1 - b0) * Math.min(1, step / T);
  }

  /**
   * log π_k + log N(x | μ_k, diag σ²_k) + D/2·log 2π for every row of x [B, D] against every
   * component, [B, K]: −½ x²·(1/σ²)ᵀ + x·(μ/σ²)ᵀ + c_k, two matmuls.
   */
  logJoint(x: Tensor): Tensor {
    this.checkFeatures(x);
    return noGrad(() =>
      tidy(() => {
        const prec = div(1, this.variance);
        const quad = matmul(square(x), mul(prec, -0.5), { transB: true });
        const lin = matmul(x, mul(this.mean, prec), { transB: true });
        // c_k = log π_k − ½ Σ_d μ²/σ² − ½ Σ_d log σ²
        const c = sub(
          this.logWeight,
          reshape(mul(add(sum(mul(square(this.mean), prec), 1), sum(log(this.variance), 1)), 0.5), [1, this.K]),
        );
        return add(add(quad, lin), c);
      }),
    );
  }

  /** The E-step: softmax_k(β · log-joint), [B, K]. */
  responsibilities(x: Tensor, beta: number): Tensor {
    return noGrad(() => tidy(() => softmax(mul(this.logJoint(x), beta), -1)));
  }

  /**
   * One online EM step on the features x [B, D] after `step` steps: annealed E-step, forgetting
   * sufficient statistics, M-step, then the split of identical components (and the M-step again,
   * so the parameters are always the M-step of the stored statistics: what a resume recomputes).
   */
  update(x: Tensor, step: number): void {
    this.checkFeatures(x);
    const B = x.shape[0];
    const { eta } = this.opts;
    const s = noGrad(() =>
      tidy(() => {
        const r = this.responsibilities(x, this.beta(step));
        const n = reshape(sum(r, 0), [this.K, 1]);
        // ρ_k = (1 − η)^{n_k}: no mass, no forgetting; a component taking many samples forgets fastest.
        const rho = exp(mul(n, Math.log1p(-eta)));
        const count = add(mul(this.count, rho), n);
        const s1 = add(mul(this.sum, rho), matmul(r, x, { transA: true }));
        const s2 = add(mul(this.sumsq, rho), matmul(r, square(x), { transA: true }));
        // Weights average over ~K/η samples: η/K per sample, the rate a fairly used component sees.
        const gamma = -Math.expm1(B * Math.log1p(-eta / this.K));
        const usage = add(mul(this.usage, 1 - gamma), mul(reshape(n, [1, this.K]), gamma / B));
        return { count, sum: s1, sumsq: s2, usage };
      }),
    );
    this.setStats(s);
    this.split();
  }

  /**
   * Displaces every component whose normalised mean has another within EM_SPLIT_EPS by
   * EM_SPLIT_SCALE·σ_k ⊙ ξ_k (ξ standard normal), rewriting its statistics so the M-step gives the
   * displaced mean and the same variance. ξ is drawn every update, split or not, so the generator's
   * position depends only on the number of updates.
   */
  private split(): void {
    const thr = 1 - (EM_SPLIT_EPS * EM_SPLIT_EPS) / 2;
    const xi = this.generator.randn([this.K, this.D], this.backend);
    const s = noGrad(() =>
      tidy(() => {
        const nn = nearestNeighbor(l2Normalize(this.mean, -1), undefined, { excludeSelf: true });
        nn.indices.dispose();
        const mask = reshape(greater(nn.values, thr), [this.K, 1]);
        const moved = add(this.mean, mul(mul(sqrt(this.variance), xi), EM_SPLIT_SCALE));
        const sum1 = where(mask, mul(moved, this.count), this.sum);
        const sum2 = where(mask, mul(add(this.variance, square(moved)), this.count), this.sumsq);
        return { sum: sum1, sumsq: sum2, mask: sum(mask) };
      }),
    );
    xi.dispose();
    this.pendingSplit?.dispose();
    this.pendingSplit = keep(s.mask);
    this.setStats({ count: this.count, sum: s.sum, sumsq: s.sumsq, usage: this.usage });
  }

  private pendingSplit: Tensor | null = null;

  /** Components the last update split (reads one number back). */
  async takeSplitCount(): Promise<number> {
    const t = this.pendingSplit;
    if (!t) return 0;
    this.pendingSplit = null;
    try {
      this.lastSplit = await t.item();
    } finally {
      t.dispose();
    }
    return this.lastSplit;
  }

  /** Replaces the statistics (disposing the old ones it does not reuse) and runs the M-step. */
  private setStats(s: { count: Tensor; sum: Tensor; sumsq: Tensor; usage: Tensor }): void {
    const old = [this.count, this.sum, this.sumsq, this.usage].filter((t) => t !== undefined);
    this.count = keep(s.count);
    this.sum = keep(s.sum);
    this.sumsq = keep(s.sumsq);
    this.usage = keep(s.usage);
    for (const t of old) if (![s.count, s.sum, s.sumsq, s.usage].includes(t)) t.dispose();
    this.mStep();
  }

  /** μ = S/N, σ² = max(Q/N − μ², floor), log π = log max(u, EM_MIN_WEIGHT). */
  private mStep(): void {
    const p = noGrad(() =>
      tidy(() => {
        const mean = div(this.sum, this.count);
        const variance = maximum(sub(div(this.sumsq, this.count), square(mean)), this.opts.varFloor);
        return { mean, variance, logWeight: log(maximum(this.usage, EM_MIN_WEIGHT)) };
      }),
    );
    for (const t of [this.mean, this.variance, this.logWeight]) t?.dispose();
    this.mean = keep(p.mean);
    this.variance = keep(p.variance);
    this.logWeight = keep(p.logWeight);
  }

  /** Copies the current means into `weight` [K, D] (a head's weight_v), in place. */
  writeMeans(weight: Tensor): void {
    if (weight.shape.join() !== this.mean.shape.join())
      throw new ShapeError('EmPrototypes.writeMeans', `weight [${weight.shape}] is not [${this.mean.shape}]`);
    this.backend.copyStrided(this.mean.storage, weight.storage, [this.mean.size], 0, [1], 0, [1]);
  }

  async hostState(): Promise<EmHostState> {
    const [count, s1, s2, usage] = (await Promise.all(
      [this.count, this.sum, this.sumsq, this.usage].map((t) => t.data()),
    )) as Float32Array[];
    return { count, sum: s1, sumsq: s2, usage, generator: this.generator.getState() };
  }

  /** Restores a saved state; the parameters are recomputed by the same M-step, so bit for bit. */
  load(h: EmHostState): void {
    const want = { count: this.K, sum: this.K * this.D, sumsq: this.K * this.D, usage: this.K };
    for (const k of EM_TENSOR_NAMES)
      if (h[k].length !== want[k])
        throw new ShapeError('EmPrototypes.load', `em.${k} has ${h[k].length} values, expected ${want[k]}`);
    const be = this.backend;
    this.setStats({
      count: tensor(h.count, [this.K, 1], be),
      sum: tensor(h.sum, [this.K, this.D], be),
      sumsq: tensor(h.sumsq, [this.K, this.D], be),
      usage: tensor(h.usage, [1, this.K], be),
    });
    this.generator.setState(h.generator);
  }

  dispose(): void {
    for (const t of [this.count, this.sum, this.sumsq, this.usage, this.mean, this.variance, this.logWeight])
      t.dispose();
    this.pendingSplit?.dispose();
    this.pendingSplit = null;
  }

  private checkFeatures(x: Tensor): void {
    if (x.rank !== 2 || x.shape[1] !== this.D)
      throw new ShapeError('EmPrototypes', `expects features [B, ${this.D}], got [${x.shape}]`);
  }
}
