// Student/teacher networks for DINO: a backbone (ViT, or a fixed PCA projection) and a head (the
// DINO MLP head, or the prototype matrix alone on L2-normalised features).
import type { Backend } from '../backend/backend.js';
import { Module } from '../nn/module.js';
import { VisionTransformer, VIT_PRESETS } from '../nn/vit.js';
import { DINOHead, PrototypeHead } from '../nn/head.js';
import { PCAProjection } from '../nn/pca.js';
import { ResNet } from '../nn/resnet.js';
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { Generator } from '../tensor/ops/random.js';
import type { TrainConfig } from './config.js';

export type Backbone = VisionTransformer | ResNet | PCAProjection;
export type Head = DINOHead | PrototypeHead;

export class DinoNetwork extends Module {
  /**
   * `generator` initialised the weights and keeps drawing the drop-path masks while training, so
   * its state belongs in a checkpoint.
   */
  constructor(
    be: Backend,
    readonly backbone: Backbone,
    readonly head: Head,
    readonly frozenBackbone: boolean,
    readonly generator: Generator,
  ) {
    super(be);
    this.addChild('backbone', backbone);
    this.addChild('head', head);
    if (frozenBackbone) {
      for (const p of backbone.parameters()) p.requiresGrad = false;
      backbone.eval(); // a frozen representation: BatchNorm uses (and keeps) its running statistics
    }
  }

  override train(mode = true): this {
    super.train(mode);
    if (this.frozenBackbone) this.backbone.eval();
    return this;
  }

  features(x: Tensor): Tensor {
    return this.frozenBackbone ? noGrad(() => this.backbone.forward(x)) : this.backbone.forward(x);
  }

  forward(x: Tensor): Tensor {
    return this.head.forward(this.features(x));
  }
}

/**
 * Builds one network as a config trains it; the same seed gives the same weights (student and
 * teacher start equal). `dropPathRate` is the student's; DINO's teacher has none. An iBOT run's
 * ViT carries the mask token, a parameter of its state dict.
 */
export function buildNetwork(
  cfg: TrainConfig,
  be: Backend,
  channels: number,
  seed: number,
  dropPathRate = cfg.drop_path_rate,
): DinoNetwork {
  const g = new Generator(seed);
  let backbone: Backbone;
  let dim: number;
  if (cfg.arch === 'pca') {
    backbone = new PCAProjection(be, channels * cfg.global_crops_size ** 2, cfg.pca_dim);
    dim = cfg.pca_dim;
  } else if (cfg.arch.startsWith('resnet')) {
    const net = new ResNet(be, { arch: cfg.arch, inChans: channels }, g);
    backbone = net;
    dim = net.embedDim;
  } else {
    const preset = VIT_PRESETS[cfg.arch];
    backbone = new VisionTransformer(
      be,
      {
        imgSize: cfg.global_crops_size,
        patchSize: cfg.patch_size,
        inChans: channels,
        ...preset,
        dropPathRate,
      },
      g,
    );
    dim = preset.embedDim;
    if (cfg.ibot) (backbone as VisionTransformer).enableMaskToken();
  }
  const head = cfg.prototypes_only
    ? new PrototypeHead(be, dim, cfg.out_dim, g, cfg.norm_last_layer)
    : new DINOHead(
        be,
        {
          inDim: dim,
          outDim: cfg.out_dim,
          hiddenDim: cfg.hidden_dim,
          bottleneckDim: cfg.bottleneck_dim,
          nlayers: cfg.head_layers,
          normLastLayer: cfg.norm_last_layer,
          useBn: cfg.use_bn_in_head,
        },
        g,
      );
  return new DinoNetwork(be, backbone, head, cfg.freeze_backbone || cfg.arch === 'pca', g);
}
