// Multi-head self-attention on a fused qkv projection (kernels: attention, attentionGrad,
// attentionProbs): the scores, softmax and weighted sum of values in one kernel call each way,
// reading q, k and v in place and writing the heads already merged, so a ViT block needs no head
// split/merge copies.
import { ShapeError, type Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType } from '../shape.js';
import type { AttentionParams } from '../../backend/backend.js';

function attentionParams(op: string, qkv: Tensor, heads: number, scale?: number): AttentionParams {
  assertDType(op, qkv, 'f32');
  if (qkv.rank !== 3) throw new ShapeError(op, `qkv must be [batch, tokens, 3·dim], got [${qkv.shape}]`);
  if (!Number.isInteger(heads) || heads < 1) throw new ShapeError(op, `heads must be a positive integer, got ${heads}`);
  const [B, T, C] = qkv.shape;
  if (C % (3 * heads) !== 0)
    throw new ShapeError(op, `the last dim of qkv [${qkv.shape}] is not 3 × ${heads} heads × a head size`);
  const headDim = C / (3 * heads);
  const s = scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(s)) throw new ShapeError(op, `scale must be finite, got ${s}`);
  return { batch: B, tokens: T, heads, headDim, scale: s };
}

/**
 * qkv [B, T, 3·D] (the qkv Linear's output: q, k, v each [heads, D / heads] per token) →
 * [B, T, D] = softmax(scale · q·kᵀ)·v per head, heads concatenated. scale defaults to
 * 1/√(D / heads). Gradients flow into qkv. Between the passes the op keeps what the backend asks
 * for (Backend.attentionSavedLength: the softmax on wasm, one log-sum-exp per row on WebGPU).
 */
export function attention(qkv: Tensor, heads: number, scale?: number): Tensor {
  const op = 'attention';
  const p = attentionParams(op, qkv, heads, scale);
  const be = qkv.backend;
  const out = empty([p.batch, p.tokens, p.heads * p.headDim], be);
  const saved = empty([be.attentionSavedLength(p)], be);
  if (out.size > 0) be.attention(qkv.storage, out.storage, saved.storage, p);
  const result = record(out, op, [qkv], (g) => {
    const dqkv = empty(qkv.shape, be);
    if (dqkv.size > 0) be.attentionGrad(qkv.storage, out.storage, saved.storage, g.storage, dqkv.storage, p);
    return [dqkv];
  });
  if (!result.node) saved.dispose();
  return result;
}

/**
 * The attention maps of attention(qkv, heads, scale): [B, heads, T, T] = softmax(scale · q·kᵀ) per
 * head, for looking at (no gradient flows back).
 */
export function attentionProbs(qkv: Tensor, heads: number, scale?: number): Tensor {
  const p = attentionParams('attentionProbs', qkv, heads, scale);
  const probs = empty([p.batch, p.heads, p.tokens, p.tokens], qkv.backend);
  if (probs.size > 0 && p.headDim > 0) qkv.backend.attentionProbs(qkv.storage, probs.storage, p);
  return probs;
}
