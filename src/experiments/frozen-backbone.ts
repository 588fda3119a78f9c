// The frozen setting on learned features: a trained backbone, loaded and frozen, under the same
// prototypes-only head, learning rate and schedule as the PCA-64 runs. On PCA features the prototypes
// partially collapse and in full training they do not; this setting tells the features apart from
// the optimisation (a head that moves fast on features that stand still).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import type { TrainConfig } from '../train/config.js';

export function frozenBackboneConfig(file: string): Partial<TrainConfig> {
  if (!existsSync(file)) throw new Error(`experiments: --frozen_backbone ${file}: no such file`);
  let arch: string | undefined;
  try {
    arch = readSafetensorsMetadata(file).arch;
  } catch (e) {
    throw new Error(`experiments: --frozen_backbone ${file}: ${(e as Error).message}`);
  }
  // The network must be built before the weights are matched against it, so the file names its arch.
  if (!arch)
    throw new Error(
      `experiments: --frozen_backbone ${file} does not name its architecture; ` +
        'write it with `protodino export CHECKPOINT --to backbone`',
    );
  // Absolute, so a run's stored config means the same file from any working directory.
  return { arch: arch as TrainConfig['arch'], init_from: resolve(file), freeze_backbone: true };
}
