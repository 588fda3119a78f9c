// Plain batches for k-NN and linear probes: every image once, in dataset order, normalised and
// optionally resized; no augmentation, no shuffling. Cheap enough to run on the calling thread.
import { channelStats, checkDataset, imageBytes, type Dataset } from './dataset.js';
import { DataError } from './errors.js';
import { resizeChw } from './resize.js';
import { normalizeInto } from './transforms.js';

export interface EvalLoaderOptions {
  dataset: Dataset;
  batchSize: number;
  /** Per-channel normalisation; default computed from the dataset. Pass the training set's to match training. */
  mean?: number[];
  std?: number[];
  /** Output side (square); default the dataset's own size (then it must be square). */
  size?: number;
}

export interface EvalBatch {
  index: number;
  size: number;
  /** [size, C, S, S] */
  images: Float32Array;
  labels: Int32Array;
  indices: Int32Array;
}

export class EvalLoader implements Iterable<EvalBatch> {
  readonly length: number;
  readonly size: number;
  readonly mean: number[];
  readonly std: number[];
  private readonly ds: Dataset;
  private readonly work: Float32Array;

  constructor(private readonly opts: EvalLoaderOptions) {
    const ds = (this.ds = checkDataset(opts.dataset));
    const src = ds.name ?? 'dataset';
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0))
      throw new DataError(src, `batchSize must be a positive integer, got ${opts.batchSize}`);
    if (opts.size === undefined && ds.height !== ds.width)
      throw new DataError(src, `images are ${ds.height}x${ds.width}; give size to resize them square`);
    this.size = opts.size ?? ds.height;
    if (!(Number.isInteger(this.size) && this.size > 0))
      throw new DataError(src, `size must be a positive integer, got ${this.size}`);
    const stats = opts.mean && opts.std ? { mean: opts.mean, std: opts.std } : channelStats(ds);
    this.mean = opts.mean ?? stats.mean;
    this.std = opts.std ?? stats.std;
    if (this.mean.length !== ds.channels || this.std.length !== ds.channels || !this.std.every((s) => s > 0)) {
      throw new DataError(src, `mean/std need ${ds.channels} values with std > 0`);
    }
    this.length = Math.ceil(ds.n / opts.batchSize);
    this.work = new Float32Array(ds.channels * this.size * this.size);
  }

  batch(index: number): EvalBatch {
    if (!(Number.isInteger(index) && index >= 0 && index < this.length))
      throw new RangeError(`eval batch ${index} is outside [0, ${this.length})`);
    const { ds, size: S, work } = this;
    const C = ds.channels;
    const start = index * this.opts.batchSize;
    const size = Math.min(this.opts.batchSize, ds.n - start);
    const per = imageBytes(ds);
    const images = new Float32Array(size * C * S * S);
    const labels = new Int32Array(size);
    const indices = new Int32Array(size);
    for (let j = 0; j < size; j++) {
      const i = start + j;
      const src = ds.images.subarray(i * per, (i + 1) * per);
      if (S === ds.height && S === ds.width) for (let p = 0; p < per; p++) work[p] = src[p] / 255;
      else {
        resizeChw(src, C, ds.height, ds.width, S, S, work);
        for (let p = 0; p < work.length; p++) work[p] /= 255;
      }
      normalizeInto(work, C, S * S, this.mean, this.std, images, j * C * S * S);
      labels[j] = ds.labels[i];
      indices[j] = i;
    }
    return { index, size, images, labels, indices };
  }

  *[Symbol.iterator](): Iterator<EvalBatch> {
    for (let i = 0; i < this.length; i++) yield this.batch(i);
  }
}
