// Normalisations: layerNorm (kernels: layerNorm/layerNormGrad), and l2Normalize and weightNorm
// composed from elementwise and reduce kernels with hand-written backward rules (one tape node
// each, and finite gradients for an all-zero row under l2Normalize, as in torch).
import { noGrad, ShapeError, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, normalizeAxis, numel, sameShape } from '../shape.js';
import { reshape } from './view.js';
import { div, greaterEqual, maximum, mul, sqrt, sub } from './elementwise.js';
import { sum, sumSquares } from './reduce.js';

export interface LayerNormOptions {
  /** gamma, shape [normalizedSize]. */
  weight?: Tensor | null;
  /** beta, shape [normalizedSize]. */
  bias?: Tensor | null;
  eps?: number;
}

/** (x − mean) / sqrt(var + eps) · weight + bias over the last axis, whose size must be normalizedSize. */
export function layerNorm(x: Tensor, normalizedSize: number, opts: LayerNormOptions = {}): Tensor {
  const op = 'layerNorm';
  const weight = opts.weight ?? null;
  const bias = opts.bias ?? null;
  const eps = opts.eps ?? 1e-5;
  assertDType(op, x, 'f32');
  if (x.rank === 0 || x.shape[x.rank - 1] !== normalizedSize) {
    throw new ShapeError(op, `the last dim of [${x.shape}] must equal normalizedSize ${normalizedSize}`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(op, `eps must be a finite number ≥ 0, got ${eps}`);
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (!p) continue;
    assertSameBackend(op, x, p);
    assertDType(op, p, 'f32', name);
    if (!sameShape(p.shape, [normalizedSize]))
      throw new ShapeError(op, `${name} has shape [${p.shape}], expected [${normalizedSize}]`);
  }
  const be = x.backend;
  const cols = normalizedSize;
  const rows = x.size === 0 ? numel(x.shape.slice(0, -1)) : x.size / cols;
  const out = empty(x.shape, be);
  const mean = empty([rows], be);
  const rstd = empty([rows], be);
  if (x.size > 0)
    be.layerNorm(
      x.storage,
      weight?.storage ?? null,
      bias?.storage ?? null,
      out.storage,
      mean.storage,
      rstd.storage,
      rows,
      cols,
      eps,
    );
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const result = record(out, op, inputs, (g) => {
    const dx = empty(x.shape, be);
    const dgamma = weight?.requiresGrad ? empty([cols], be) : null;
    const dbeta = bias?.requiresGrad ? empty([cols], be) : null;
    if (cols > 0) {
      be.layerNormGrad(
        x.storage,
        weight?.storage ?? null,
        mean.storage,
        rstd.storage,
        g.storage,
        dx.storage,
        dgamma?.storage ?? null,
        dbeta?.storage ?? null,
        rows,
        cols,
      );
    }
    const grads: (Tensor | null)[] = [x.requiresGrad ? dx : null];
    if (weight) grads.push(dgamma);
    if (bias) grads.push(dbeta);
    return grads;
  });
  if (!result.node) {
    mean.dispose();
    rstd.dispose();
  }
  return result;
}

/** x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize with p = 2). Any axis. */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  const op = 'l2Normalize';
  assertDType(op, x, 'f32');
  const a = normalizeAxis(op, axis, x.rank);
  if (!(eps > 0)) throw new ShapeError(op, `eps must be > 0, got ${eps}`);
  const { out, norm, denom } = noGrad(() => {
    const ss = sumSquares(x, a, true);
    const n = sqrt(ss);
    ss.dispose();
    const d = maximum(n, eps);
    return { out: div(x, d), norm: n, denom: d };
  });
  const result = record(out, op, [x], (g) => {
    // dx = (g − y · Σ g·y) / d where the norm is above eps; below it d is the constant eps: dx = g / eps
    const s = sum(mul(g, out), a, true);
    const sm = mul(s, greaterEqual(norm, eps));
    return [div(sub(g, mul(out, sm)), denom)];
  });
  if (!result.node) {
    norm.dispose();
    denom.dispose();
  }
  return result;
}

/**
 * w = g · v / ‖v‖ with the norm over every dim of v but the first (torch.nn.utils.weight_norm with
 * dim = 0; for a Linear weight [out, in], one norm per output row). g has out elements, shaped
 * [out] or [out, 1, ...]. A zero row of v gives NaN, as in torch (there is no eps).
 */
export function weightNorm(v: Tensor, g: Tensor): Tensor {
  const op = 'weightNorm';
  assertSameBackend(op, v, g);
  assertDType(op, v, 'f32', 'v');
  assertDType(op, g, 'f32', 'g');
  if (v.rank < 2) throw new ShapeError(op, `v must have rank ≥ 2 ([out, in, ...]), got [${v.shape}]`);
  const rows = v.shape[0];
  if (g.rank < 1 || g.shape[0] !== rows || numel(g.shape) !== rows || g.rank > v.rank) {
    throw new ShapeError(op, `g must have shape [${rows}] or [${rows}, 1, ...] for v [${v.shape}], got [${g.shape}]`);
  }
  const cols = v.size / Math.max(1, rows);
  const { w, y, k } = noGrad(() => {
    const v2 = reshape(v, [rows, cols]);
    const g2 = reshape(g, [rows, 1]);
    const ss = sumSquares(v2, 1, true);
    const n = sqrt(ss);
    ss.dispose();
    const y2 = div(v2, n);
    const k2 = div(g2, n);
    n.dispose();
    const w2 = mul(y2, g2);
    const wv = reshape(w2, v.shape);
    for (const t of [v2, g2, w2]) t.dispose();
    return { w: wv, y: y2, k: k2 };
  });
  const result = record(w, op, [v, g], (dw) => {
    const dw2 = reshape(dw, [rows, cols]);
    // dg = Σ dw·y per row; dv = (g/‖v‖) · (dw − y · Σ dw·y)
    const s = sum(mul(dw2, y), 1, true);
    const dv = v.requiresGrad ? reshape(mul(sub(dw2, mul(y, s)), k), v.shape) : null;
    const dg = g.requiresGrad ? reshape(s, g.shape) : null;
    return [dv, dg];
  });
  if (!result.node) {
    y.dispose();
    k.dispose();
  }
  return result;
}
