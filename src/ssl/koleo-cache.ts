// KoLeo-proto's candidate cache. At large K the exact nearest-neighbour search over the prototypes
// (K²·D multiply-adds) costs more than the rest of a DINO step, yet the prototypes move little per
// step: so every `every` steps the exact search also records each prototype's m nearest, and the
// steps in between search only those m. A refresh first asks the stale candidates too, and keeps
// how often they still held the exact neighbour and what the KoLeo value would have been, for the
// training log. Everything is a function of the prototypes and the step number, and the cache is
// checkpointed, so a resumed run stays bit-identical to an uninterrupted one.
import { keep, noGrad, ShapeError, tidy, type Tensor } from '../tensor/tensor.js';
import type { Backend } from '../backend/backend.js';
import { tensor } from '../tensor/create.js';
import { add, log, mul } from '../tensor/ops/elementwise.js';
import { mean } from '../tensor/ops/reduce.js';
import { reshape } from '../tensor/ops/view.js';
import { nearestAmongCandidates, nearestNeighborsSelf, neighborDistance } from '../tensor/ops/neighbours.js';

/** What a refresh measured about the candidates it replaced (read back by the trainer). */
export interface KoleoCacheStats {
  /** The step (steps done before it) of the refresh, and of the candidates it checked. */
  step: number;
  builtAt: number;
  /** Share of prototypes whose neighbour among the cached candidates is the exact one. */
  agree: number;
  /** KoLeo (without its weight) with the exact neighbours and with the cached ones. */
  koleoExact: number;
  koleoCached: number;
}

interface PendingStats {
  step: number;
  builtAt: number;
  exactIdx: Tensor;
  cachedIdx: Tensor;
  exact: Tensor;
  cached: Tensor;
}

const disposeStats = (p: PendingStats) => {
  for (const t of [p.exactIdx, p.cachedIdx, p.exact, p.cached]) t.dispose();
};

export class KoleoProtoCache {
  /** i32 [K, m], from the exact search at step builtAt; null until the first one. */
  private cand: Tensor | null = null;
  private built = -1;
  private pending: PendingStats | null = null;

  constructor(
    readonly every: number,
    readonly m: number,
  ) {
    if (!Number.isInteger(every) || every < 2)
      throw new ShapeError('KoleoProtoCache', `refreshes every ${every} steps: needs an integer ≥ 2`);
    if (!Number.isInteger(m) || m < 1)
      throw new ShapeError('KoleoProtoCache', `m = ${m} candidates: needs a positive integer`);
  }

  get builtAt(): number {
    return this.built;
  }

  get candidates(): Tensor | null {
    return this.cand;
  }

  /** Whether `step` runs the exact search. A step's later micro-batches repeat its first one's kind. */
  due(step: number): boolean {
    return this.cand === null || step - this.built >= this.every || step === this.built;
  }

  /**
   * The neighbour index [K] (i32, the caller disposes) of every row of xn (L2-normalised
   * prototypes) at `step`, self excluded: exact on a refresh, else among the cached candidates.
   */
  neighbours(xn: Tensor, step: number, eps: number): Tensor {
    const K = xn.shape[0];
    if (this.m >= K) throw new ShapeError('KoleoProtoCache', `${this.m} candidates need more than ${K} prototypes`);
    return noGrad(() => {
      if (!this.due(step)) {
        const r = nearestAmongCandidates(xn, this.cand!);
        r.values.dispose();
        return r.indices;
      }
      const r = nearestNeighborsSelf(xn, this.m, { excludeSelf: true });
      r.values.dispose();
      if (this.cand && step !== this.built) this.measure(xn, r.indices, step, eps);
      this.cand?.dispose();
      this.cand = keep(r.candidates);
      this.built = step;
      return r.indices;
    });
  }

  private measure(xn: Tensor, exactIdx: Tensor, step: number, eps: number): void {
    const stale = nearestAmongCandidates(xn, this.cand!);
    stale.values.dispose();
    const koleo = (idx: Tensor) => keep(tidy(() => mul(mean(log(add(neighborDistance(xn, xn, idx, eps), eps))), -1)));
    if (this.pending) disposeStats(this.pending);
    // The caller disposes exactIdx; the stats keep their own handle on it.
    // Kept out of any enclosing tidy scope: they outlive the step that made them.
    this.pending = {
      step,
      builtAt: this.built,
      exactIdx: keep(reshape(exactIdx, exactIdx.shape)),
      cachedIdx: keep(stale.indices),
      exact: koleo(exactIdx),
      cached: koleo(stale.indices),
    };
  }

  /** The last refresh's measurements, once (null if none is waiting). Reads back 2·K indices. */
  async takeStats(): Promise<KoleoCacheStats | null> {
    const p = this.pending;
    if (!p) return null;
    this.pending = null;
    try {
      const a = await p.exactIdx.data(),
        b = await p.cachedIdx.data();
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      return {
        step: p.step,
        builtAt: p.builtAt,
        agree: same / a.length,
        koleoExact: await p.exact.item(),
        koleoCached: await p.cached.item(),
      };
    } finally {
      disposeStats(p);
    }
  }

  /** For checkpoints: the candidates (as exact small integers) and the step they were built at. */
  async hostState(): Promise<{ builtAt: number; shape: number[]; data: Float32Array } | null> {
    if (!this.cand) return null;
    const data = Float32Array.from(await this.cand.data());
    return { builtAt: this.built, shape: [...this.cand.shape], data };
  }

  /** Restores hostState()'s output (from a checkpoint). */
  load(state: { builtAt: number; shape: number[]; data: ArrayLike<number> }, be: Backend): void {
    const [K, m] = state.shape;
    if (state.shape.length !== 2 || m !== this.m || !Number.isInteger(state.builtAt) || state.builtAt < 0) {
      throw new ShapeError(
        'KoleoProtoCache',
        `a saved cache of shape [${state.shape}] built at step ${state.builtAt} does not fit ${this.m} candidates per prototype`,
      );
    }
    for (let e = 0; e < state.data.length; e++) {
      const v = state.data[e];
      if (!(Number.isInteger(v) && v >= -1 && v < K))
        throw new ShapeError('KoleoProtoCache', `saved candidate ${v} is not a prototype index below ${K}`);
    }
    this.dispose();
    this.cand = keep(tensor(state.data, state.shape, be, 'i32'));
    this.built = state.builtAt;
  }

  dispose(): void {
    this.cand?.dispose();
    this.cand = null;
    this.built = -1;
    if (this.pending) disposeStats(this.pending);
    this.pending = null;
  }
}
