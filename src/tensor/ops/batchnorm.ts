// Batch normalisation with PyTorch's semantics (F.batch_norm). Feature maps [N, C, H, W] (and any
// call that fuses a residual add or a ReLU) run the batchNorm* kernels: statistics, one fused
// normalise-affine-add-ReLU pass and one fused backward, a tape node holding only the per-channel
// mean and rstd. [N, C] without fusion (the DINO head's BatchNorm1d) keeps its composition of
// elementwise and reduce ops, whose results stay bit for bit what they were.
import { noGrad, ShapeError, tidy, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, sameShape } from '../shape.js';
import { add, mul, rsqrt, square, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { reshape } from './view.js';

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Updated in place (no gradient) in training mode; used for normalising in eval mode. */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  /** Batch statistics when true (or when there are no running statistics); default false, as F.batch_norm. */
  training?: boolean;
  /** running = (1 − momentum)·running + momentum·batch statistic. */
  momentum?: number;
  eps?: number;
  /** Added after the affine transform, before the ReLU (a ResNet block's shortcut); same shape as x. */
  residual?: Tensor | null;
  /** ReLU on the result. */
  relu?: boolean;
}

/**
 * x [N, C] or [N, C, H, W], statistics per channel over the other axes. Training normalises with
 * the biased batch variance and folds the unbiased one into runningVar.
 */
export function batchNorm(x: Tensor, opts: BatchNormOptions = {}): Tensor {
  const op = 'batchNorm';
  const { weight = null, bias = null, runningMean = null, runningVar = null } = opts;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  assertDType(op, x, 'f32');
  if (x.rank !== 2 && x.rank !== 4) throw new ShapeError(op, `input must be [N, C] or [N, C, H, W], got [${x.shape}]`);
  const C = x.shape[1];
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
    ['runningMean', runningMean],
    ['runningVar', runningVar],
  ] as const) {
    if (!t) continue;
    assertSameBackend(op, x, t);
    assertDType(op, t, 'f32', name);
    if (!sameShape(t.shape, [C])) throw new ShapeError(op, `${name} has shape [${t.shape}], expected [${C}]`);
  }
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    throw new ShapeError(op, `needs eps > 0 and momentum in [0, 1], got ${eps}, ${momentum}`);
  if ((runningMean === null) !== (runningVar === null))
    throw new ShapeError(op, 'runningMean and runningVar go together');
  const batchStats = (opts.training ?? false) || !runningMean;
  const residual = opts.residual ?? null;
  if (residual) {
    assertSameBackend(op, x, residual);
    assertDType(op, residual, 'f32', 'residual');
    if (!sameShape(residual.shape, x.shape))
      throw new ShapeError(op, `residual has shape [${residual.shape}], expected [${x.shape}]`);
  }
  if (x.rank === 4 || residual || opts.relu) {
    return fused(
      x,
      weight,
      bias,
      runningMean,
      runningVar,
      residual,
      opts.relu ?? false,
      batchStats,
      opts.training ?? false,
      momentum,
      eps,
    );
  }
  const axes = x.rank === 2 ? [0] : [0, 2, 3];
  const statShape = x.rank === 2 ? [1, C] : [1, C, 1, 1];
  const count = x.size / Math.max(1, C);
  if (batchStats && count <= 1)
    throw new ShapeError(op, `needs more than one value per channel for batch statistics, got [${x.shape}]`);
  const be = x.backend;
  const stat = (t: Tensor) => reshape(t, statShape);

  const { out, xhat, rstd } = noGrad(() =>
    tidy(() => {
      let mu: Tensor, rstd: Tensor;
      if (batchStats) {
        mu = mean(x, axes, true);
        const v = mean(square(sub(x, mu)), axes, true);
        rstd = rsqrt(add(v, eps));
        if (opts.training && runningMean && runningVar) {
          // Written over the running tensors' storage: they are buffers, not graph values.
          const m = add(mul(runningMean, 1 - momentum), mul(reshape(mu, [C]), momentum));
          const uv = add(mul(runningVar, 1 - momentum), mul(reshape(v, [C]), (momentum * count) / (count - 1)));
          be.unary('affine', m.storage, runningMean.storage, C, 1, 0);
          be.unary('affine', uv.storage, runningVar.storage, C, 1, 0);
        }
      } else {
        mu = stat(runningMean!);
        rstd = rsqrt(add(stat(runningVar!), eps));
      }
      const xhat = mul(sub(x, mu), rstd);
      let y = xhat;
      if (weight) y = mul(y, stat(weight));
      if (bias) y = add(y, stat(bias));
      // y may be xhat itself; hand out a separate view so each is owned once
      return { out: y === xhat ? reshape(xhat, x.shape) : y, xhat, rstd };
    }),
  );

  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const result = record(out, op, inputs, (g) => {
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      const dxhat = weight ? mul(g, stat(weight)) : g;
      if (batchStats) {
        // d/dx of (x − μ)·rstd with μ and σ² taken from x itself
        const centred = sub(sub(dxhat, mean(dxhat, axes, true)), mul(xhat, mean(mul(dxhat, xhat), axes, true)));
        gx = mul(centred, rstd);
      } else {
        gx = mul(dxhat, rstd);
      }
    }
    const gw = weight?.requiresGrad ? sum(mul(g, xhat), axes) : null;
    const gb = bias?.requiresGrad ? sum(g, axes) : null;
    const grads = [gx];
    if (weight) grads.push(gw);
    if (bias) grads.push(gb);
    return grads;
  });
  if (!result.node) {
    xhat.dispose();
    rstd.dispose();
  }
  return result;
}

/** The kernel route: see the file comment. Running statistics are updated as in batchNorm. */
function fused(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  residual: Tensor | null,
  relu: boolean,
  batchStats: boolean,
  training: boolean,
  momentum: number,
  eps: number,
): Tensor {
  const op = 'batchNorm';
  const be = x.backend;
  const N = x.shape[0],
    C = x.shape[1];
  const hw = N * C === 0 ? 0 : x.size / (N * C);
  const count = N * hw;
  const { mean, rstd } = noGrad(() =>
    tidy(() => {
      if (!batchStats) return { mean: reshape(runningMean!, [C]), rstd: rsqrt(add(runningVar!, eps)) };
      const mean = empty([C], be),
        variance = empty([C], be);
      be.batchNormStats(x.storage, mean.storage, variance.storage, N, C, hw);
      if (training && runningMean && runningVar) {
        const m = add(mul(runningMean, 1 - momentum), mul(mean, momentum));
        const uv = add(mul(runningVar, 1 - momentum), mul(variance, (momentum * count) / (count - 1)));
        be.unary('affine', m.storage, runningMean.storage, C, 1, 0);
        be.unary('affine', uv.storage, runningVar.storage, C, 1, 0);
      }
      return { mean, rstd: rsqrt(add(variance, eps)) };
    }),
  );
  const out = empty(x.shape, be);
  if (out.size > 0) {
    be.batchNormApply(
      x.storage,
      mean.storage,
      rstd.storage,
      weight?.storage ?? null,
      bias?.storage ?? null,
      residual?.storage ?? null,
      out.storage,
      N,
      C,
      hw,
      relu,
    );
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  const result = record(out, op, inputs, (g) => {
    const dx = empty(x.shape, be);
    const dgamma = weight?.requiresGrad ? empty([C], be) : null;
    const dbeta = bias?.requiresGrad ? empty([C], be) : null;
    const dres = residual?.requiresGrad ? empty(x.shape, be) : null;
    be.batchNormGrad(
      x.storage,
      relu ? out.storage : null,
      mean.storage,
      rstd.storage,
      weight?.storage ?? null,
      g.storage,
      dx.storage,
      dgamma?.storage ?? null,
      dbeta?.storage ?? null,
      dres?.storage ?? null,
      N,
      C,
      hw,
      relu,
      batchStats,
    );
    const grads = [x.requiresGrad ? dx : null];
    if (weight) grads.push(dgamma);
    if (bias) grads.push(dbeta);
    if (residual) grads.push(dres);
    return grads;
  });
  if (!result.node) {
    mean.dispose();
    rstd.dispose();
  }
  return result;
}
