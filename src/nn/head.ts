// The DINO projection head (facebookresearch/dino's DINOHead): an MLP with GELU to a bottleneck,
// L2 normalisation, then a weight-normalised linear layer whose K rows are the prototypes.
import type { Backend } from '../backend/backend.js';
import { Module, ModuleList } from './module.js';
import { Linear } from './layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { full } from '../tensor/create.js';
import { gelu } from '../tensor/ops/elementwise.js';
import { linear } from '../tensor/ops/matmul.js';
import { l2Normalize, weightNorm } from '../tensor/ops/norm.js';
import { BatchNorm } from './batchnorm.js';
import { Generator } from '../tensor/ops/random.js';
import { vmfLogits } from '../ssl/vmf.js';

export interface DINOHeadConfig {
  inDim: number;
  outDim: number;
  hiddenDim?: number;
  bottleneckDim?: number;
  nlayers?: number;
  /** BatchNorm after each hidden layer (DINO's ResNet recipe). */
  useBn?: boolean;
  /** Freeze weight_g at 1 (prototypes stay unit-norm). */
  normLastLayer?: boolean;
}

/** weight_norm(Linear(bottleneck, K, bias=False)) with PyTorch's parameter names. */
export class WeightNormLinear extends Module {
  readonly weight_g: Tensor;
  readonly weight_v: Tensor;
  /**
   * DINO-vMF: add each prototype's vMF log-normaliser log C_p(‖w_k‖) to its logit (inputs must be
   * unit-norm). Set by the trainer for --vmf; holds no parameter, so state dicts are unchanged.
   */
  vmf = false;
  constructor(be: Backend, inDim: number, outDim: number, g: Generator, normLastLayer: boolean) {
    super(be);
    const bound = 1 / Math.sqrt(inDim); // nn.Linear's default init, as DINO leaves the last layer
    this.weight_g = this.addParam('weight_g', full([outDim, 1], 1, be));
    this.weight_v = this.addParam('weight_v', g.rand([outDim, inDim], be, -bound, bound));
    if (normLastLayer) this.weight_g.requiresGrad = false;
  }

  /** The effective weight g·v/‖v‖ (rows are the prototypes, scaled by g). */
  weight(): Tensor {
    return weightNorm(this.weight_v, this.weight_g);
  }

  forward(x: Tensor): Tensor {
    return this.vmf ? vmfLogits(x, this.weight()) : linear(x, this.weight());
  }
}

export class DINOHead extends Module {
  /** nn.Sequential's indices; with nlayers = 1 DINO's mlp is the bare Linear (mlp.weight, mlp.bias). */
  readonly mlp: ModuleList | Linear;
  readonly last_layer: WeightNormLinear;
  /** The MLP in order, GELUs included (read by the ONNX export, which writes the same sequence). */
  readonly layers: (Linear | BatchNorm | 'gelu')[] = [];

  constructor(be: Backend, cfg: DINOHeadConfig, g: Generator) {
    super(be);
    const hidden = cfg.hiddenDim ?? 2048,
      bottleneck = cfg.bottleneckDim ?? 256,
      n = Math.max(1, cfg.nlayers ?? 3);
    if (n === 1) {
      this.mlp = this.addChild('mlp', new Linear(be, cfg.inDim, bottleneck, { generator: g }));
      this.layers.push(this.mlp);
    } else {
      const seq = (this.mlp = this.addChild('mlp', new ModuleList(be)));
      // Indices match nn.Sequential's: GELU modules take an index but hold no parameters.
      const push = (m: Linear | BatchNorm | 'gelu') => {
        if (m === 'gelu') seq.skip();
        else seq.push(m);
        this.layers.push(m);
      };
      push(new Linear(be, cfg.inDim, hidden, { generator: g }));
      if (cfg.useBn) push(new BatchNorm(be, hidden));
      push('gelu');
      for (let i = 0; i < n - 2; i++) {
        push(new Linear(be, hidden, hidden, { generator: g }));
        if (cfg.useBn) push(new BatchNorm(be, hidden));
        push('gelu');
      }
      push(new Linear(be, hidden, bottleneck, { generator: g }));
    }
    this.last_layer = this.addChild(
      'last_layer',
      new WeightNormLinear(be, bottleneck, cfg.outDim, g, cfg.normLastLayer ?? true),
    );
  }

  /** The bottleneck features after L2 normalisation, [B, bottleneck]. */
  embed(x: Tensor): Tensor {
    let h = x;
    for (let i = 0; i < this.layers.length; i++) {
      const m = this.layers[i];
      // Fuse Linear + GELU into one matmul epilogue when the next layer is the GELU.
      if (m instanceof Linear && this.layers[i + 1] === 'gelu') {
        h = m.forward(h, 'gelu');
        i++;
      } else if (m === 'gelu') h = gelu(h);
      else h = m.forward(h);
    }
    return l2Normalize(h, -1);
  }

  /** Logits against the K prototypes, [B, K]. */
  forward(x: Tensor): Tensor {
    return this.last_layer.forward(this.embed(x));
  }

  /** L2-normalised prototypes [K, bottleneck] (the rows of weight_v over their norms). */
  prototypes(): Tensor {
    return l2Normalize(this.last_layer.weight_v, -1);
  }
}

/** The prototype matrix alone: logits = normalize(features) · (g·v/‖v‖)ᵀ. */
export class PrototypeHead extends Module {
  readonly last_layer: WeightNormLinear;
  constructor(be: Backend, inDim: number, outDim: number, g: Generator, normLastLayer: boolean) {
    super(be);
    this.last_layer = this.addChild('last_layer', new WeightNormLinear(be, inDim, outDim, g, normLastLayer));
  }

  /** The unit vectors the prototypes score (--prototypes em fits its mixture over them). */
  embed(x: Tensor): Tensor {
    return l2Normalize(x, -1);
  }

  forward(x: Tensor): Tensor {
    return this.last_layer.forward(this.embed(x));
  }
}
