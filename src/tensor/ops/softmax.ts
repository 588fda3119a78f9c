// softmax, logSoftmax and crossEntropy between distributions (kernels: softmax/softmaxGrad).
// The kernels work on rows of a contiguous [rows, cols] view, so the axis must be the last one (or
// be followed only by size-1 dims). Another axis would need a transposing copy; that is left to the
// caller (permute the axis last first) so these ops stay one kernel call each way.
import { noGrad, ShapeError, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, normalizeAxis, numel, sameShape } from '../shape.js';
import { reshape } from './view.js';
import { mul } from './elementwise.js';
import { sum } from './reduce.js';

interface Rows {
  axis: number;
  rows: number;
  cols: number;
}

function rowsOf(op: string, x: Tensor, axis: number): Rows {
  assertDType(op, x, 'f32');
  const a = normalizeAxis(op, axis, x.rank);
  if (numel(x.shape.slice(a + 1)) !== 1) {
    throw new ShapeError(
      op,
      `works along the last axis only; axis ${axis} of [${x.shape}] is followed by larger dims (move it last first)`,
    );
  }
  return { axis: a, rows: numel(x.shape.slice(0, a)), cols: x.shape[a] };
}

function softmaxOp(op: string, x: Tensor, axis: number, log: boolean): Tensor {
  const { rows, cols } = rowsOf(op, x, axis);
  const out = empty(x.shape, x.backend);
  if (out.size > 0) x.backend.softmax(x.storage, out.storage, rows, cols, log);
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, x.backend);
    if (dx.size > 0) x.backend.softmaxGrad(out.storage, g.storage, dx.storage, rows, cols, log);
    return [dx];
  });
}

/** exp(x − max) / Σ exp(x − max) along `axis` (the last, see above). */
export const softmax = (x: Tensor, axis = -1) => softmaxOp('softmax', x, axis, false);

/** x − max − log Σ exp(x − max) along `axis` (the last, see above). */
export const logSoftmax = (x: Tensor, axis = -1) => softmaxOp('logSoftmax', x, axis, true);

/**
 * −Σ p · logSoftmax(logits) along `axis`, per row: the result drops that axis and is not averaged.
 * p need not sum to 1; both arguments get gradients (detach p for a fixed target distribution).
 */
export function crossEntropy(targetProbs: Tensor, logits: Tensor, axis = -1): Tensor {
  const op = 'crossEntropy';
  assertSameBackend(op, targetProbs, logits);
  assertDType(op, targetProbs, 'f32', 'targetProbs');
  if (!sameShape(targetProbs.shape, logits.shape)) {
    throw new ShapeError(
      op,
      `targetProbs [${targetProbs.shape}] and logits [${logits.shape}] must have the same shape`,
    );
  }
  const { axis: a, rows, cols } = rowsOf(op, logits, axis);
  const be = logits.backend;
  const ls = empty(logits.shape, be);
  if (ls.size > 0) be.softmax(logits.storage, ls.storage, rows, cols, true);
  const out = noGrad(() => {
    const prod = mul(targetProbs, ls);
    const s = sum(prod, a);
    prod.dispose();
    const r = mul(s, -1);
    s.dispose();
    return r;
  });
  const keptShape = logits.shape.map((d, i) => (i === a ? 1 : d));
  const result = record(out, op, [targetProbs, logits], (g) => {
    const negG = mul(reshape(g, keptShape), -1);
    // ∂/∂p = −g · logSoftmax(z)
    const gp = targetProbs.requiresGrad ? mul(ls, negG) : null;
    let gz: Tensor | null = null;
    if (logits.requiresGrad) {
      // ∂/∂z = g · (softmax(z) Σp − p): the log-softmax VJP of dy = −g·p
      const dy = mul(targetProbs, negG);
      gz = empty(logits.shape, be);
      if (gz.size > 0) be.softmaxGrad(ls.storage, dy.storage, gz.storage, rows, cols, true);
    }
    return [gp, gz];
  });
  if (!result.node) ls.dispose();
  return result;
}
