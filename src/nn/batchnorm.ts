// BatchNorm over the channel axis of [N, C] or [N, C, H, W] (nn.BatchNorm1d / nn.BatchNorm2d) with
// PyTorch's parameter and buffer names, num_batches_tracked included, so torch state dicts load
// strictly by name.
import type { Backend } from '../backend/backend.js';
import { Module } from './module.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { full, zeros } from '../tensor/create.js';
import { add } from '../tensor/ops/elementwise.js';
import { batchNorm } from '../tensor/ops/batchnorm.js';

export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  /**
   * torch keeps an int64; here it is f32 so it counts on the device with the elementwise kernels and
   * checkpoints stay all-F32 (exact up to 2^24 batches; torch's load_state_dict casts it back). It
   * only matters to torch with momentum=None, which DINO never uses.
   */
  readonly num_batches_tracked: Tensor;

  constructor(
    be: Backend,
    readonly numFeatures: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super(be);
    this.weight = this.addParam('weight', full([numFeatures], 1, be));
    this.bias = this.addParam('bias', zeros([numFeatures], be));
    this.running_mean = this.addBuffer('running_mean', zeros([numFeatures], be));
    this.running_var = this.addBuffer('running_var', full([numFeatures], 1, be));
    this.num_batches_tracked = this.addBuffer('num_batches_tracked', zeros([], be));
  }

  /**
   * Training: batch statistics, running statistics updated; eval: running statistics. `fuse` adds a
   * residual and/or applies a ReLU in the same kernels (relu(bn(x) + residual)).
   */
  forward(x: Tensor, fuse: { residual?: Tensor | null; relu?: boolean } = {}): Tensor {
    const y = batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.running_mean,
      runningVar: this.running_var,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
      residual: fuse.residual,
      relu: fuse.relu,
    });
    if (this.training) {
      noGrad(() =>
        tidy(() => {
          const n = add(this.num_batches_tracked, 1);
          this.backend.unary('affine', n.storage, this.num_batches_tracked.storage, 1, 1, 0);
        }),
      );
    }
    return y;
  }
}
