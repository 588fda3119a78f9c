// Vision Transformer as in facebookresearch/dino's vision_transformer.py: patch embedding, CLS token,
// learned position embedding (bicubic-interpolated for other crop sizes), pre-norm blocks with
// multi-head self-attention (qkv bias) and a GELU MLP, final LayerNorm (eps 1e-6).
import type { Backend } from '../backend/backend.js';
import { Module, ModuleList } from './module.js';
import { Linear, LayerNorm, Mlp, dropPath } from './layers.js';
import { ShapeError, type Tensor } from '../tensor/tensor.js';
import { add, affine, mul } from '../tensor/ops/elementwise.js';
import { linear } from '../tensor/ops/matmul.js';
import { attention } from '../tensor/ops/attention.js';
import { concat, patchify, permute, slice } from '../tensor/ops/layout.js';
import { broadcastTo, reshape } from '../tensor/ops/view.js';
import { resizeBicubic } from '../tensor/ops/resize.js';
import { Generator } from '../tensor/ops/random.js';
import { zeros } from '../tensor/create.js';

export interface ViTConfig {
  imgSize: number;
  patchSize: number;
  inChans: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio?: number;
  dropPathRate?: number;
}

export const VIT_PRESETS: Record<string, Omit<ViTConfig, 'imgSize' | 'patchSize' | 'inChans'>> = {
  /** Sized for a 2-core CPU: a few minutes per epoch on Fashion-MNIST. */
  vit_cpu: { embedDim: 64, depth: 4, numHeads: 4 },
  vit_tiny: { embedDim: 192, depth: 12, numHeads: 3 },
  vit_small: { embedDim: 384, depth: 12, numHeads: 6 },
};

class PatchEmbed extends Module {
  readonly proj: ConvWeights;
  constructor(
    be: Backend,
    readonly patchSize: number,
    inChans: number,
    embedDim: number,
    g: Generator,
  ) {
    super(be);
    this.proj = this.addChild('proj', new ConvWeights(be, embedDim, inChans, patchSize, g));
  }

  /** [B, C, H, W] → [B, N, D]: the stride-p convolution as patchify + one matmul. */
  forward(x: Tensor): Tensor {
    const p = this.patchSize;
    const patches = patchify(x, p);
    const w = reshape(this.proj.weight, [this.proj.weight.shape[0], -1]);
    return linear(patches, w, this.proj.bias);
  }
}

/** The weight and bias of a Conv2d (PyTorch's default init), applied by PatchEmbed as a matmul. */
class ConvWeights extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(be: Backend, out: number, inChans: number, k: number, g: Generator) {
    super(be);
    const bound = 1 / Math.sqrt(inChans * k * k);
    this.weight = this.addParam('weight', g.rand([out, inChans, k, k], be, -bound, bound));
    this.bias = this.addParam('bias', g.rand([out], be, -bound, bound));
  }
}

class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(
    be: Backend,
    readonly dim: number,
    readonly numHeads: number,
    g: Generator,
  ) {
    super(be);
    if (dim % numHeads !== 0) throw new ShapeError('Attention', `dim ${dim} is not divisible by ${numHeads} heads`);
    this.qkv = this.addChild('qkv', new Linear(be, dim, dim * 3, { generator: g }));
    this.proj = this.addChild('proj', new Linear(be, dim, dim, { generator: g }));
  }

  forward(x: Tensor): Tensor {
    // softmax(q·kᵀ/√Dh)·v per head, reading q, k, v in place from the qkv output [B, T, 3, H, Dh]
    // and writing the heads merged ([B, T, D]), as the output projection reads them.
    return this.proj.forward(attention(this.qkv.forward(x), this.numHeads, 1 / Math.sqrt(this.dim / this.numHeads)));
  }
}

class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  constructor(
    be: Backend,
    dim: number,
    heads: number,
    mlpRatio: number,
    readonly dropPath: number,
    private readonly g: Generator,
  ) {
    super(be);
    this.norm1 = this.addChild('norm1', new LayerNorm(be, dim));
    this.attn = this.addChild('attn', new Attention(be, dim, heads, g));
    this.norm2 = this.addChild('norm2', new LayerNorm(be, dim));
    this.mlp = this.addChild('mlp', new Mlp(be, dim, Math.round(dim * mlpRatio), g));
  }

  forward(x: Tensor): Tensor {
    return this.forwardNormed(x, this.norm1.forward(x), null).sum;
  }

  /**
   * The block on x given n = norm1(x); its output is sum, and with `next` also out = next(sum) from the
   * same kernel as the residual add (addLayerNorm), as the add before norm2 always is. The ops and
   * their order are the block's as written (`forward`): the same graph, the same random draws.
   */
  forwardNormed(x: Tensor, n: Tensor, next: LayerNorm | null): { sum: Tensor; out: Tensor | null } {
    const a = dropPath(this.attn.forward(n), this.dropPath, this.training, this.g);
    const { sum: x1, out: n2 } = this.norm2.forwardAdd(x, a);
    const m = dropPath(this.mlp.forward(n2), this.dropPath, this.training, this.g);
    return next ? next.forwardAdd(x1, m) : { sum: add(x1, m), out: null };
  }
}

export class VisionTransformer extends Module {
  readonly config: Required<ViTConfig>;
  readonly patch_embed: PatchEmbed;
  readonly cls_token: Tensor;
  readonly pos_embed: Tensor;
  readonly blocks: Block[] = [];
  readonly norm: LayerNorm;
  readonly numPatches: number;
  /** iBOT's learnable mask token [1, D], present after enableMaskToken(). */
  masked_embed: Tensor | null = null;

  constructor(be: Backend, cfg: ViTConfig, g: Generator) {
    super(be);
    this.config = { mlpRatio: 4, dropPathRate: 0, ...cfg };
    const { imgSize, patchSize, inChans, embedDim, depth, numHeads } = this.config;
    if (imgSize % patchSize !== 0)
      throw new ShapeError(
        'VisionTransformer',
        `image size ${imgSize} is not a multiple of the patch size ${patchSize}`,
      );
    this.numPatches = (imgSize / patchSize) ** 2;
    this.cls_token = this.addParam('cls_token', g.truncatedNormal([1, 1, embedDim], be, { std: 0.02 }));
    this.pos_embed = this.addParam(
      'pos_embed',
      g.truncatedNormal([1, this.numPatches + 1, embedDim], be, { std: 0.02 }),
    );
    this.patch_embed = this.addChild('patch_embed', new PatchEmbed(be, patchSize, inChans, embedDim, g));
    const blocks = new ModuleList(be);
    this.addChild('blocks', blocks);
    for (let i = 0; i < depth; i++) {
      const dp = depth > 1 ? (this.config.dropPathRate * i) / (depth - 1) : 0; // stochastic depth decay rule
      this.blocks.push(blocks.push(new Block(be, embedDim, numHeads, this.config.mlpRatio, dp, g)));
    }
    this.norm = this.addChild('norm', new LayerNorm(be, embedDim));
  }

  /**
   * Adds iBOT's `masked_embed` (zeros, as iBOT initialises it) as the last parameter, so student and
   * teacher built alike keep matching parameter orders. Idempotent.
   */
  enableMaskToken(): Tensor {
    if (!this.masked_embed)
      this.masked_embed = this.addParam('masked_embed', zeros([1, this.config.embedDim], this.backend));
    return this.masked_embed;
  }

  get embedDim(): number {
    return this.config.embedDim;
  }

  /** pos_embed for an h x w image: the patch part bicubic-resized when the grid differs. */
  private positionEmbedding(h: number, w: number): Tensor {
    const p = this.config.patchSize;
    const gh = Math.floor(h / p),
      gw = Math.floor(w / p);
    const n0 = Math.round(Math.sqrt(this.numPatches));
    if (gh === n0 && gw === n0) return this.pos_embed;
    const D = this.config.embedDim;
    const cls = slice(this.pos_embed, [0, 0, 0], [1, 1, D]);
    const grid = permute(
      reshape(slice(this.pos_embed, [0, 1, 0], [1, this.numPatches, D]), [1, n0, n0, D]),
      [0, 3, 1, 2],
    );
    const resized = resizeBicubic(grid, [gh, gw]); // [1, D, gh, gw]
    const patches = reshape(permute(resized, [0, 2, 3, 1]), [1, gh * gw, D]);
    return concat([cls, patches], 1);
  }

  /**
   * Tokens after the final norm: [B, 1 + N, D]. mask: [B, N] of 0/1 (1 = masked) replaces those
   * patch embeddings by masked_embed before the position embedding is added, as iBOT does.
   */
  forwardTokens(x: Tensor, mask?: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.config.inChans) {
      throw new ShapeError('VisionTransformer', `expects [B, ${this.config.inChans}, H, W] images, got [${x.shape}]`);
    }
    const [B, , H, W] = x.shape;
    let tokens = this.patch_embed.forward(x); // [B, N, D]
    if (mask) {
      if (!this.masked_embed)
        throw new ShapeError('VisionTransformer', 'a patch mask needs the mask token: call enableMaskToken() first');
      const N = tokens.shape[1];
      if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== N)
        throw new ShapeError('VisionTransformer', `mask [${mask.shape}] must be [${B}, ${N}]`);
      const m = reshape(mask, [B, N, 1]);
      tokens = add(mul(tokens, affine(m, -1, 1)), mul(m, this.masked_embed));
    }
    const cls = broadcastTo(this.cls_token, [B, 1, this.config.embedDim]);
    // Every residual add of the stream is followed by a layer norm (the first block's norm1 after the
    // position embedding, norm2 inside a block, the next block's norm1 or the final norm after it):
    // each pair is one addLayerNorm kernel.
    const x0 = concat([cls, tokens], 1);
    const pos = this.positionEmbedding(H, W);
    const first = this.blocks.length > 0 ? this.blocks[0].norm1 : this.norm;
    let { sum: h, out: n } = first.forwardAdd(x0, pos);
    for (let i = 0; i < this.blocks.length; i++) {
      const next = i + 1 < this.blocks.length ? this.blocks[i + 1].norm1 : this.norm;
      const r = this.blocks[i].forwardNormed(h, n, next);
      h = r.sum;
      n = r.out!;
    }
    return n;
  }

  /** The CLS features [B, D]. */
  forward(x: Tensor): Tensor {
    const t = this.forwardTokens(x);
    const [B, , D] = t.shape;
    return reshape(slice(t, [0, 0, 0], [B, 1, D]), [B, D]);
  }
}
