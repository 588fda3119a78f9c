// A protodino ViT as ONNX nodes: the patch embedding as the stride-p Conv it stands for, the CLS
// token expanded to the batch, the learned position embedding at the training grid, pre-norm blocks
// (LayerNormalization, multi-head attention from MatMul/Softmax/Reshape/Transpose, an erf-GELU MLP,
// residual Adds), the final LayerNorm and the CLS token out.
import type { VisionTransformer } from '../../nn/vit.js';
import type { Graph, Weights } from './graph.js';
import { gelu, layerNorm, linear } from './layers.js';

type Block = VisionTransformer['blocks'][number];

/** softmax(q·kᵀ/√Dh)·v per head on [N, T, D] tokens, heads merged back to [N, T, D], then proj. */
function attention(g: Graph, x: string, b: Block, name: string, w: Weights, idx: string[]): string {
  const { dim: D, numHeads: H } = b.attn;
  const Dh = D / H;
  const qkv = linear(g, x, b.attn.qkv, `${name}.qkv`, w, 3);
  // The engine reads q, k, v from qkv laid out [N, T, 3, H, Dh] (timm's order); so does this.
  const split = g.node('Reshape', [qkv, g.ints(`${name}.qkv_shape`, [0, 0, 3, H, Dh])], {}, `${name}.qkv_split`);
  const heads = g.node('Transpose', [split], { perm: [2, 0, 3, 1, 4] }, `${name}.qkv_heads`); // [3, N, H, T, Dh]
  const [q, k, v] = ['q', 'k', 'v'].map((s, i) => g.node('Gather', [heads, idx[i]], { axis: 0 }, `${name}.${s}`));
  const kT = g.node('Transpose', [k], { perm: [0, 1, 3, 2] }, `${name}.kT`);
  const scores = g.node(
    'Mul',
    [g.node('MatMul', [q, kT], {}, `${name}.qk`), g.scalar(`${name}.scale`, 1 / Math.sqrt(Dh))],
    {},
    `${name}.scores`,
  );
  const probs = g.node('Softmax', [scores], { axis: -1 }, `${name}.probs`);
  const o = g.node('MatMul', [probs, v], {}, `${name}.heads_out`); // [N, H, T, Dh]
  const merged = g.node(
    'Reshape',
    [g.node('Transpose', [o], { perm: [0, 2, 1, 3] }, `${name}.tokens_heads`), g.ints(`${name}.out_shape`, [0, 0, D])],
    {},
    `${name}.merged`,
  );
  return linear(g, merged, b.attn.proj, `${name}.proj`, w, 3);
}

/**
 * The CLS features [N, D] of normalised images `x` [N, C, S, S], S the training crop size: the
 * position embedding is the one trained, so the graph takes no other size (the engine would
 * resize it bicubically).
 */
export function vitGraph(g: Graph, vit: VisionTransformer, x: string, prefix: string, w: Weights): string {
  const { patchSize: p, embedDim: D } = vit.config;
  const pe = vit.patch_embed.proj;
  const idx = [0, 1, 2].map((i) => g.ints(`index${i}`, [i], []));
  const conv = g.node(
    'Conv',
    [
      x,
      g.weight(`${prefix}patch_embed.proj.weight`, pe.weight.shape, w(pe.weight)),
      g.weight(`${prefix}patch_embed.proj.bias`, pe.bias.shape, w(pe.bias)),
    ],
    { kernel_shape: [p, p], strides: [p, p] },
    `${prefix}patch_embed.proj`,
  );
  // [N, D, gh, gw] → [N, D, T] → [N, T, D], patches in row-major order as the engine's patchify.
  const flat = g.node(
    'Reshape',
    [conv, g.ints(`${prefix}patch_embed.shape`, [0, D, -1])],
    {},
    `${prefix}patch_embed.flat`,
  );
  const tokens = g.node('Transpose', [flat], { perm: [0, 2, 1] }, `${prefix}patch_embed.tokens`);
  const batch = g.node('Shape', [x], { start: 0, end: 1 }, 'batch_size');
  const clsShape = g.node(
    'Concat',
    [batch, g.ints(`${prefix}cls_token.shape`, [1, D])],
    { axis: 0 },
    `${prefix}cls_shape`,
  );
  const cls = g.node(
    'Expand',
    [g.weight(`${prefix}cls_token`, vit.cls_token.shape, w(vit.cls_token)), clsShape],
    {},
    `${prefix}cls_tokens`,
  );
  let h = g.node('Concat', [cls, tokens], { axis: 1 }, `${prefix}tokens`);
  h = g.node(
    'Add',
    [h, g.weight(`${prefix}pos_embed`, vit.pos_embed.shape, w(vit.pos_embed))],
    {},
    `${prefix}embedded`,
  );
  vit.blocks.forEach((b, i) => {
    const n = `${prefix}blocks.${i}`;
    const a = attention(g, layerNorm(g, h, b.norm1, `${n}.norm1`, w), b, `${n}.attn`, w, idx);
    h = g.node('Add', [h, a], {}, `${n}.residual1`);
    const m1 = gelu(
      g,
      linear(g, layerNorm(g, h, b.norm2, `${n}.norm2`, w), b.mlp.fc1, `${n}.mlp.fc1`, w, 3),
      `${n}.mlp.gelu`,
    );
    h = g.node('Add', [h, linear(g, m1, b.mlp.fc2, `${n}.mlp.fc2`, w, 3)], {}, `${n}.residual2`);
  });
  h = layerNorm(g, h, vit.norm, `${prefix}norm`, w);
  return g.node('Gather', [h, idx[0]], { axis: 1 }, `${prefix}cls`);
}
