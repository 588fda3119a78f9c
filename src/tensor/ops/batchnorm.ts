// Batch normalisation with PyTorch's semantics (F.batch_norm), composed from elementwise and
// reduce ops with one hand-written backward rule (so the tape holds one node and two saved tensors).
import { noGrad, ShapeError, tidy, type Tensor } from '../tensor.js';
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
  for (const [name, t] of [['weight', weight], ['bias', bias], ['runningMean', runningMean], ['runningVar', runningVar]] as const) {
    if (!t) continue;
    assertSameBackend(op, x, t);
    assertDType(op, t, 'f32', name);
    if (!sameShape(t.shape, [C])) throw new ShapeError(op, `${name} has shape [${t.shape}], expected [${C}]`);
  }
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) throw new ShapeError(op, `needs eps > 0 and momentum in [0, 1], got ${eps}, ${momentum}`);
  if ((runningMean === null) !== (runningVar === null)) throw new ShapeError(op, 'runningMean and runningVar go together');
  const batchStats = (opts.training ?? false) || !runningMean;
  const axes = x.rank === 2 ? [0] : [0, 2, 3];
  const statShape = x.rank === 2 ? [1, C] : [1, C, 1, 1];
  const count = x.size / Math.max(1, C);
  if (batchStats && count <= 1) throw new ShapeError(op, `needs more than one value per channel for batch statistics, got [${x.shape}]`);
  const be = x.backend;
  const stat = (t: Tensor) => reshape(t, statShape);

  const { out, xhat, rstd } = noGrad(() => tidy(() => {
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
  }));

  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const result = record(out, op, inputs, (g) => tidy(() => {
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
  }));
  if (!result.node) {
    xhat.dispose();
    rstd.dispose();
  }
  return result;
}
