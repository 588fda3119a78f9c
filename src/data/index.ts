// Data: readers, long-tail subsampling, held-out splits, DINO multi-crop, training and eval loaders.
export { DataError } from './errors.js';
export {
  DATASET_STATS,
  channelStats,
  checkDataset,
  classCounts,
  indicesByClass,
  firstImages,
  subset,
  type ChannelStats,
  type Dataset,
} from './dataset.js';
export { DEFAULT_MAX_BYTES } from './files.js';
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  idxDataset,
  loadFashionMNIST,
  loadIdxDataset,
  parseIdx,
  readIdx,
  type IdxDatasetOptions,
} from './idx.js';
export {
  CIFAR10_CLASSES,
  cifarDataset,
  loadCifar10,
  parseCifarClasses,
  type CifarBatch,
  type CifarOptions,
} from './cifar.js';
export { loadImageFolder, type ImageFolderOptions } from './folder.js';
export { decodeImage, imageHeader, type ImageHeader } from './image.js';
export { longTail, longTailCounts, type LongTailOptions, type LongTailResult } from './longtail.js';
export { heldOutSplit, type SplitOptions, type SplitResult } from './split.js';
export {
  DINO_DEFAULTS,
  MultiCrop,
  resolveMultiCrop,
  type MultiCropOptions,
  type ResolvedMultiCrop,
} from './multicrop.js';
export { batchesPerEpoch, type Batch } from './batch.js';
export { Loader, type LoaderOptions, type LoaderState } from './loader.js';
export { EvalLoader, type EvalBatch, type EvalLoaderOptions } from './eval-loader.js';
