// protodino: the library API.
export { createBackend, CREATE_BACKEND_OPTIONS, WasmBackend, WebGPUBackend } from './backend/index.js';
export { WasmOutOfMemoryError } from './backend/wasm/out-of-memory.js';
export type { CreateBackendOptions } from './backend/index.js';
export type { Backend, Storage, DType, MemoryStats } from './backend/backend.js';
export { BackendError } from './backend/backend.js';
export * from './tensor/index.js';

// models
export { Module, ModuleList } from './nn/module.js';
export { Linear, LayerNorm, Mlp, dropPath } from './nn/layers.js';
export { VisionTransformer, VIT_PRESETS, type ViTConfig } from './nn/vit.js';
export { ResNet, RESNET_PRESETS } from './nn/resnet.js';
export { BatchNorm } from './nn/batchnorm.js';
export { DINOHead, PrototypeHead, WeightNormLinear, type DINOHeadConfig } from './nn/head.js';
export { PCAProjection } from './nn/pca.js';

// objectives
export {
  centeredTeacher,
  dinoCrossEntropy,
  dinoLoss,
  PROBABILITY_TOLERANCE,
  sinkhornKnopp,
  updateCenter,
  type DinoLossOptions,
} from './ssl/dino.js';
export { DINOLoss, type DINOLossConfig } from './ssl/dino-loss.js';
export {
  koleoLoss,
  koleoProtoLoss,
  kozachenkoLeonenkoConstant,
  meMaxLoss,
  type KoleoForm,
} from './ssl/regularizers.js';

// training
export { train, DivergenceError, type TrainResult, type TrainHooks } from './train/trainer.js';
export {
  DEFAULTS as TRAIN_DEFAULTS,
  parseTrainArgs,
  validate as validateTrainConfig,
  ConfigError,
  type TrainConfig,
} from './train/config.js';
export { cosineScheduler, teacherTempSchedule } from './util/schedules.js';
export { CheckpointError, readCheckpoint, saveCheckpoint, restoreCheckpoint } from './train/checkpoint.js';
export { readSafetensors, writeSafetensors, SafetensorsError } from './io/safetensors.js';
export { buildNetwork, DinoNetwork } from './train/network.js';
export { embedDataset, evaluateNetwork } from './train/evaluate.js';

// evaluation and diagnostics
export * from './eval/index.js';

// data and interchange
export * from './data/index.js';
export { readPth, writePth, findDinoHead, PthError } from './io/pth/index.js';
export { exportCheckpointToPth, dinoCheckpointObject } from './io/export-dino.js';
export { importDinoPth, ImportError, type ImportedWeights } from './io/import-dino.js';
