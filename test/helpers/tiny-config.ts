// The smallest training run the tests build on: batch 4, two 8-pixel local crops beside the 16-pixel
// global ones, a head of K = 32 prototypes over an 8-d bottleneck, quiet, no per-epoch evaluation and
// no last-layer freezing. Each test adds what it is about (architecture, data size, seed, schedule).
import type { TrainConfig } from '../../src/train/config.js';

export function tinyTrainConfig(overrides: Partial<TrainConfig>): Partial<TrainConfig> {
  return {
    batch_size: 4,
    local_crops_number: 2,
    global_crops_size: 16,
    local_crops_size: 8,
    out_dim: 32,
    hidden_dim: 16,
    bottleneck_dim: 8,
    freeze_last_layer: 0,
    eval_every_epoch: false,
    quiet: true,
    ...overrides,
  };
}
