// Normalisations: layerNorm (kernels: layerNorm/layerNormGrad), the residual add fused into it
// (addLayerNorm), and l2Normalize and weightNorm
// composed from elementwise and reduce kernels with hand-written backward rules (one tape node
// each, and finite gradients for an all-zero row under l2Normalize, as in torch).
import { noGrad, ShapeError, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, normalizeAxis, numel, sameShape } from '../shape.js';
import { reshape } from './view.js';
import { add, div, greaterEqual, maximum, mul, sqrt, sub } from './elementwise.js';
import { sumTo } from './sum-to.js';
import { sum, sumSquares } from './reduce.js';

export interface LayerNormOptions {
  /** gamma, shape [normalizedSize]. */
  weight?: Tensor | null;
  /** beta, shape [normalizedSize]. */
  bias?: Tensor | null;
  eps?: number;
}

/** The checked arguments of a layer norm over the last axis of x. */
interface NormArgs {
  weight: Tensor | null;
  bias: Tensor | null;
  eps: number;
  cols: number;
  rows: number;
}

function normArgs(op: string, x: Tensor, normalizedSize: number, opts: LayerNormOptions): NormArgs {
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
  const cols = normalizedSize;
  const rows = x.size === 0 ? numel(x.shape.slice(0, -1)) : x.size / cols;
  return { weight, bias, eps, cols, rows };
}

/** Records out = layerNorm(x) (mean and rstd from its forward) and frees them when nothing records. */
function recordLayerNorm(x: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, args: NormArgs): Tensor {
  const { weight, bias, cols, rows } = args;
  const be = x.backend;
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const result = record(out, 'layerNorm', inputs, (g, pending) => {
    // x's gradient summed so far (in a ViT, the residual stream's from the next residual add) is
    // added by the kernel as it writes dx: the values of the gradient add it replaces, bit for bit.
    const dres = x.requiresGrad && cols > 0 ? pending(0) : null;
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
        dres?.storage ?? null,
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

/** (x − mean) / sqrt(var + eps) · weight + bias over the last axis, whose size must be normalizedSize. */
export function layerNorm(x: Tensor, normalizedSize: number, opts: LayerNormOptions = {}): Tensor {
  const args = normArgs('layerNorm', x, normalizedSize, opts);
  const { weight, bias, eps, cols, rows } = args;
  const be = x.backend;
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
  return recordLayerNorm(x, out, mean, rstd, args);
}

/**
 * The rows of a that repeat down x's when a broadcasts to x only over leading dims (a position
 * embedding [1, T, D] added to [B, T, D]); null for any other broadcast.
 */
function repeatedRows(x: Tensor, a: Tensor): number | null {
  if (a.rank > x.rank || a.rank === 0) return null;
  const pad = [...new Array<number>(x.rank - a.rank).fill(1), ...a.shape];
  let j = 0;
  while (j < x.rank - 1 && pad[j] === 1 && x.shape[j] !== 1) j++;
  for (let d = j; d < x.rank; d++) if (pad[d] !== x.shape[d]) return null;
  return numel(pad.slice(j, -1));
}

/**
 * A residual add and the layer norm after it: sum = x + a and out = layerNorm(sum), from one kernel
 * (the bits of add then layerNorm). a is x's shape, or broadcasts to it over leading dims only; any
 * other broadcast runs the two ops. For autograd they are the two nodes they replace, an add of
 * (x, a) and a layerNorm of sum, so gradients flow and are summed exactly as before: sum's gradient
 * is the sum of what its later users (the next residual add) and the norm hand back, in the engine's
 * order, and the add's backward passes it to both x and a.
 */
export function addLayerNorm(
  x: Tensor,
  a: Tensor,
  normalizedSize: number,
  opts: LayerNormOptions = {},
): { sum: Tensor; out: Tensor } {
  const op = 'addLayerNorm';
  assertSameBackend(op, x, a);
  assertDType(op, a, 'f32', 'residual');
  const aRows = repeatedRows(x, a);
  if (aRows === null) {
    const sum = add(x, a);
    return { sum, out: layerNorm(sum, normalizedSize, opts) };
  }
  const args = normArgs(op, x, normalizedSize, opts);
  const { weight, bias, eps, cols, rows } = args;
  const be = x.backend;
  const sum = empty(x.shape, be);
  const out = empty(x.shape, be);
  const mean = empty([rows], be);
  const rstd = empty([rows], be);
  if (x.size > 0)
    be.addLayerNorm(
      x.storage,
      a.storage,
      aRows,
      sum.storage,
      weight?.storage ?? null,
      bias?.storage ?? null,
      out.storage,
      mean.storage,
      rstd.storage,
      rows,
      cols,
      eps,
    );
  // The add node's rule is add's own (src/tensor/ops/elementwise.ts).
  const s = record(sum, 'add', [x, a], (g) => [sumTo(g, x.shape), sumTo(g, a.shape)]);
  return { sum: s, out: recordLayerNorm(s, out, mean, rstd, args) };
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
