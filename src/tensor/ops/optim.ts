// Optimisation ops (kernels: adamw, ema; gradient norms through the sumsq reduce): the AdamW
// optimiser with explicit parameter groups, the teacher EMA, and torch/DINO gradient clipping.
// Everything stays on the device: clipping computes its coefficients with tensor ops, so nothing
// is read back per parameter.
import { keep, noGrad, ShapeError, Tensor } from '../tensor.js';
import { empty, zeros } from '../create.js';
import { assertDType, assertSameBackend, sameShape } from '../shape.js';
import { add, affine, div, minimum, mul, sqrt } from './elementwise.js';
import { sumSquares } from './reduce.js';
import { reshape } from './view.js';

export interface ParamGroup {
  params: Tensor[];
  /** Mutable: schedules set it before each step(). */
  lr: number;
  /** Mutable: schedules set it before each step(). 0 for biases and 1-D params in DINO. */
  weightDecay: number;
}

export interface AdamWOptions {
  /** Defaults for groups that omit lr / weightDecay (torch: 1e-3, 1e-2). */
  lr?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
}

/** Per-parameter state, as torch keeps it: its own step count (params without a grad do not advance). */
export interface AdamWParamState {
  step: number;
  m: Tensor;
  v: Tensor;
}

/** Optimiser state in parameter order (groups concatenated); null for params never stepped. */
export interface AdamWState {
  /** How many times step() has run. */
  step: number;
  params: (AdamWParamState | null)[];
}

type GroupInput = { params: Tensor[]; lr?: number; weightDecay?: number };

/** torch.optim.AdamW over explicit parameter groups; state (m, v) is allocated on first use. */
export class AdamW {
  readonly groups: ParamGroup[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  stepCount = 0;
  private readonly slots = new Map<Tensor, AdamWParamState>();
  private disposed = false;

  constructor(groups: GroupInput[] | Tensor[], opts: AdamWOptions = {}) {
    const lr = opts.lr ?? 1e-3;
    const wd = opts.weightDecay ?? 1e-2;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    for (const b of [this.beta1, this.beta2])
      if (!(b >= 0 && b < 1))
        throw new ShapeError('AdamW', `betas must be in [0, 1), got [${this.beta1}, ${this.beta2}]`);
    const list: GroupInput[] =
      groups.length > 0 && groups[0] instanceof Tensor ? [{ params: groups as Tensor[] }] : (groups as GroupInput[]);
    this.groups = list.map((g) => ({ params: [...g.params], lr: g.lr ?? lr, weightDecay: g.weightDecay ?? wd }));
    const seen = new Set<Tensor>();
    for (const p of this.params()) {
      if (seen.has(p)) throw new ShapeError('AdamW', `parameter ${describe(p)} appears in more than one group`);
      seen.add(p);
      assertDType('AdamW', p, 'f32', `parameter ${describe(p)}`);
      if (!p.requiresGrad) throw new ShapeError('AdamW', `parameter ${describe(p)} does not require grad`);
    }
  }

  /** Every parameter, groups in order. */
  params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** One update of every parameter that has a .grad, with each group's current lr / weightDecay. */
  step(): void {
    this.check();
    for (const p of this.params()) {
      const grad = p.grad;
      if (!grad) continue;
      if (!sameShape(grad.shape, p.shape))
        throw new ShapeError('AdamW', `gradient of ${describe(p)} has shape [${grad.shape}], parameter [${p.shape}]`);
      assertSameBackend('AdamW', p, grad);
      assertDType('AdamW', grad, 'f32', `gradient of ${describe(p)}`);
    }
    this.stepCount++;
    for (const g of this.groups) {
      for (const p of g.params) {
        const grad = p.grad;
        if (!grad) continue;
        let s = this.slots.get(p);
        if (!s) {
          s = { step: 0, m: keep(zeros(p.shape, p.backend)), v: keep(zeros(p.shape, p.backend)) };
          this.slots.set(p, s);
        }
        s.step++;
        if (p.size === 0) continue;
        p.backend.adamw(p.storage, grad.storage, s.m.storage, s.v.storage, p.size, {
          lr: g.lr,
          beta1: this.beta1,
          beta2: this.beta2,
          eps: this.eps,
          weightDecay: g.weightDecay,
          step: s.step,
        });
      }
    }
  }

  /** Frees every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params()) {
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  /** The live state (tensors owned by the optimiser: read them, do not dispose them). */
  state(): AdamWState {
    this.check();
    return {
      step: this.stepCount,
      params: this.params().map((p) => {
        const e = this.slots.get(p);
        return e ? { ...e } : null;
      }),
    };
  }

  /** Replaces the state with copies of `s` (the caller keeps ownership of its tensors). */
  loadState(s: AdamWState): void {
    this.check();
    const params = this.params();
    if (s.params.length !== params.length)
      throw new ShapeError(
        'AdamW.loadState',
        `state has ${s.params.length} entries, optimiser has ${params.length} parameters`,
      );
    if (!Number.isInteger(s.step) || s.step < 0)
      throw new ShapeError('AdamW.loadState', `invalid step count ${s.step}`);
    s.params.forEach((e, i) => {
      if (!e) return;
      const p = params[i];
      for (const t of [e.m, e.v]) {
        if (!sameShape(t.shape, p.shape))
          throw new ShapeError(
            'AdamW.loadState',
            `state ${i} has shape [${t.shape}], parameter ${describe(p)} [${p.shape}]`,
          );
        assertSameBackend('AdamW.loadState', p, t);
        assertDType('AdamW.loadState', t, 'f32', `state ${i}`);
      }
      if (!Number.isInteger(e.step) || e.step < 1)
        throw new ShapeError('AdamW.loadState', `state ${i} has invalid step ${e.step}`);
    });
    const copies = noGrad(() =>
      s.params.map((e) => e && { step: e.step, m: keep(affine(e.m, 1, 0)), v: keep(affine(e.v, 1, 0)) }),
    );
    this.clearState();
    params.forEach((p, i) => {
      const c = copies[i];
      if (c) this.slots.set(p, c);
    });
    this.stepCount = s.step;
  }

  /** Frees the optimiser state (the parameters and their grads are the caller's). */
  dispose(): void {
    if (this.disposed) return;
    this.clearState();
    this.disposed = true;
  }

  private clearState(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }

  private check(): void {
    if (this.disposed) throw new Error('AdamW: used after dispose()');
  }
}

function describe(p: Tensor): string {
  return p.name ? `'${p.name}'` : `#${p.id} [${p.shape}]`;
}

/**
 * Splits named parameters the way facebookresearch/dino's get_params_groups does: biases and 1-D
 * params get no weight decay. Returns [decayed, notDecayed].
 */
export function decayGroups(named: Iterable<[string, Tensor]>): [Tensor[], Tensor[]] {
  const decayed: Tensor[] = [];
  const plain: Tensor[] = [];
  for (const [name, p] of named) {
    if (!p.requiresGrad) continue;
    (name.endsWith('.bias') || p.rank === 1 ? plain : decayed).push(p);
  }
  return [decayed, plain];
}

/** target ← momentum·target + (1 − momentum)·source for each pair, in place (teacher EMA; no grad). */
export function emaUpdate(targets: Tensor[], sources: Tensor[], momentum: number): void {
  if (targets.length !== sources.length)
    throw new ShapeError('emaUpdate', `${targets.length} targets but ${sources.length} sources`);
  if (!Number.isFinite(momentum)) throw new ShapeError('emaUpdate', `momentum must be finite, got ${momentum}`);
  targets.forEach((t, i) => {
    const s = sources[i];
    if (!sameShape(t.shape, s.shape))
      throw new ShapeError('emaUpdate', `pair ${i}: target [${t.shape}] vs source [${s.shape}]`);
    assertSameBackend('emaUpdate', t, s);
    assertDType('emaUpdate', t, 'f32', `target ${i}`);
    assertDType('emaUpdate', s, 'f32', `source ${i}`);
    if (t.storage === s.storage) throw new ShapeError('emaUpdate', `pair ${i}: target and source share storage`);
  });
  targets.forEach((t, i) => {
    if (t.size > 0) t.backend.ema(t.storage, sources[i].storage, t.size, momentum);
  });
}

function gradsOf(op: string, params: Tensor[]): Tensor[] {
  const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
  if (grads.length > 1) assertSameBackend(op, ...grads);
  return grads;
}

/** Σ g² of one gradient as a scalar tensor, in one reduce pass over the flat buffer. */
function gradSumSquares(g: Tensor): Tensor {
  const flat = reshape(g, [g.size]);
  const ss = sumSquares(flat);
  flat.dispose();
  return ss;
}

/** √Σ‖g‖² over every grad (a scalar tensor, or null when no param has a grad). */
function totalNorm(op: string, params: Tensor[]): Tensor | null {
  const grads = gradsOf(op, params);
  if (grads.length === 0) return null;
  let acc: Tensor | null = null;
  for (const g of grads) {
    const ss = gradSumSquares(g);
    if (acc) {
      const next = add(acc, ss);
      acc.dispose();
      ss.dispose();
      acc = next;
    } else {
      acc = ss;
    }
  }
  const norm = sqrt(acc!);
  acc!.dispose();
  return norm;
}

/** The total L2 norm of all grads (torch.nn.utils.clip_grad_norm_'s total_norm): a scalar tensor; 0 without grads. */
export function globalGradNorm(params: Tensor[]): Tensor {
  return noGrad(() => {
    const n = totalNorm('globalGradNorm', params);
    if (n) return n;
    if (params.length === 0) throw new ShapeError('globalGradNorm', 'no parameters');
    return zeros([], params[0].backend);
  });
}

/** grad ← grad·coef for a scalar coefficient tensor; the old grad tensor is freed. */
function scaleGrad(p: Tensor, coef: Tensor): void {
  const scaled = keep(mul(p.grad!, coef));
  p.grad!.dispose();
  p.grad = scaled;
}

/** min(1, maxNorm / (norm + 1e-6)) on the device. */
function clipCoef(norm: Tensor, maxNorm: number): Tensor {
  const d = affine(norm, 1, 1e-6);
  const c = div(maxNorm, d);
  d.dispose();
  const clamped = minimum(c, 1);
  c.dispose();
  return clamped;
}

/**
 * torch.nn.utils.clip_grad_norm_ (L2): scales every grad by min(1, maxNorm / (total + 1e-6)).
 * Returns the total norm before clipping (a scalar tensor). Grads are replaced by new tensors.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  if (!(maxNorm >= 0)) throw new ShapeError('clipGradNorm', `maxNorm must be ≥ 0, got ${maxNorm}`);
  return noGrad(() => {
    const norm = totalNorm('clipGradNorm', params);
    if (!norm) {
      if (params.length === 0) throw new ShapeError('clipGradNorm', 'no parameters');
      return zeros([], params[0].backend);
    }
    const coef = clipCoef(norm, maxNorm);
    for (const p of params) if (p.grad) scaleGrad(p, coef);
    coef.dispose();
    return norm;
  });
}

/**
 * facebookresearch/dino's clip_gradients: each parameter's grad is clipped to norm `clip` on its
 * own (coef = clip / (‖g‖ + 1e-6), applied when < 1). Returns the pre-clip norm of each parameter
 * that has a grad, as scalar tensors the caller owns.
 */
export function clipGradients(params: Tensor[], clip: number): Tensor[] {
  if (!(clip >= 0)) throw new ShapeError('clipGradients', `clip must be ≥ 0, got ${clip}`);
  return noGrad(() => {
    gradsOf('clipGradients', params);
    const norms: Tensor[] = [];
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      const ss = gradSumSquares(g);
      // One kernel for norm, coefficient and scaling (sqrt, affine, div, clamp and mul before).
      const norm = empty([], g.backend);
      const scaled = keep(empty(g.shape, g.backend));
      g.backend.clipScale(g.storage, ss.storage, scaled.storage, norm.storage, g.size, clip);
      ss.dispose();
      g.dispose();
      p.grad = scaled;
      norms.push(norm);
    }
    return norms;
  });
}
