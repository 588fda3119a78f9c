// Multi-head self-attention on a fused qkv projection (kernels: attention, attentionGrad): the
// scores, softmax and weighted sum of values in one kernel call each way, reading q, k and v in
// place and writing the heads already merged, so a ViT block needs no head split/merge copies.
import { ShapeError, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType } from '../shape.js';

/**
 * qkv [B, T, 3·D] (the qkv Linear's output: q, k, v each [heads, D / heads] per token) →
 * [B, T, D] = softmax(scale · q·kᵀ)·v per head, heads concatenated. scale defaults to
 * 1/√(D / heads). Gradients flow into qkv.
 */
export function attention(qkv: Tensor, heads: number, scale?: number): Tensor {
  const op = 'attention';
  assertDType(op, qkv, 'f32');
  if (qkv.rank !== 3) throw new ShapeError(op, `qkv must be [batch, tokens, 3·dim], got [${qkv.shape}]`);
  if (!Number.isInteger(heads) || heads < 1) throw new ShapeError(op, `heads must be a positive integer, got ${heads}`);
  const [B, T, C] = qkv.shape;
  if (C % (3 * heads) !== 0)
    throw new ShapeError(op, `the last dim of qkv [${qkv.shape}] is not 3 × ${heads} heads × a head size`);
  const headDim = C / (3 * heads);
  const s = scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(s)) throw new ShapeError(op, `scale must be finite, got ${s}`);
  const p = { batch: B, tokens: T, heads, headDim, scale: s };
  const be = qkv.backend;
  const out = empty([B, T, heads * headDim], be);
  const probs = empty([B, heads, T, T], be);
  if (out.size > 0) be.attention(qkv.storage, out.storage, probs.storage, p);
  const result = record(out, op, [qkv], (g) => {
    const dqkv = empty(qkv.shape, be);
    if (dqkv.size > 0) be.attentionGrad(qkv.storage, probs.storage, g.storage, dqkv.storage, p);
    return [dqkv];
  });
  if (!result.node) probs.dispose();
  return result;
}
