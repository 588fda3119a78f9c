// Basic layers: Linear, LayerNorm, Mlp (fc1 → GELU → fc2), DropPath. Names follow PyTorch/timm.
import type { Backend } from '../backend/backend.js';
import { Module } from './module.js';
import type { Tensor } from '../tensor/tensor.js';
import { full, zeros } from '../tensor/create.js';
import { linear } from '../tensor/ops/matmul.js';
import { addLayerNorm, layerNorm } from '../tensor/ops/norm.js';
import { Generator } from '../tensor/ops/random.js';
import { mul } from '../tensor/ops/elementwise.js';
import { reshape } from '../tensor/ops/view.js';

export type Init = 'trunc_normal' | 'torch_default';

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    be: Backend,
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; init?: Init; generator: Generator },
  ) {
    super(be);
    const g = opts.generator;
    const bound = 1 / Math.sqrt(inFeatures);
    // DINO's _init_weights: trunc_normal(std=.02) and zero bias; PyTorch's default: U(±1/√fan_in).
    this.weight = this.addParam(
      'weight',
      opts.init === 'torch_default'
        ? g.rand([outFeatures, inFeatures], be, -bound, bound)
        : g.truncatedNormal([outFeatures, inFeatures], be, { std: 0.02 }),
    );
    this.bias =
      opts.bias === false
        ? null
        : this.addParam(
            'bias',
            opts.init === 'torch_default' ? g.rand([outFeatures], be, -bound, bound) : zeros([outFeatures], be),
          );
  }

  forward(x: Tensor, activation: 'none' | 'gelu' = 'none'): Tensor {
    return linear(x, this.weight, this.bias, activation);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    be: Backend,
    readonly size: number,
    readonly eps = 1e-6,
  ) {
    super(be);
    this.weight = this.addParam('weight', full([size], 1, be));
    this.bias = this.addParam('bias', zeros([size], be));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.size, { weight: this.weight, bias: this.bias, eps: this.eps });
  }

  /** The residual add x + a and this norm of it, from one kernel (addLayerNorm). */
  forwardAdd(x: Tensor, a: Tensor): { sum: Tensor; out: Tensor } {
    return addLayerNorm(x, a, this.size, { weight: this.weight, bias: this.bias, eps: this.eps });
  }
}

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(be: Backend, dim: number, hidden: number, g: Generator) {
    super(be);
    this.fc1 = this.addChild('fc1', new Linear(be, dim, hidden, { generator: g }));
    this.fc2 = this.addChild('fc2', new Linear(be, hidden, dim, { generator: g }));
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x, 'gelu'));
  }
}

/**
 * Stochastic depth on a residual branch: each sample's branch is dropped with probability p and the
 * kept ones scaled by 1/(1−p) (timm's drop_path). Identity in eval mode or at p = 0.
 */
export function dropPath(x: Tensor, p: number, training: boolean, g: Generator): Tensor {
  if (p === 0 || !training) return x;
  const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
  const keep = g.bernoulli(shape, x.backend, 1 - p);
  const scale = mul(keep, 1 / (1 - p));
  keep.dispose();
  return mul(x, scale);
}

export { reshape };
