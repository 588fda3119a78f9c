import { DataError } from './errors.js';

/**
 * A fixed-size labelled image set, images stored as u8 in [N, C, H, W] order (CHW per image, the
 * order the trainer's tensors use). Readers back `images` with a SharedArrayBuffer so loader
 * workers read it in place, without a copy per worker.
 */
export interface Dataset {
  /** N·C·H·W bytes, image i at offset i·C·H·W. */
  images: Uint8Array;
  /** N labels, each in [0, classes.length). */
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  classes: string[];
  /** Where it came from, for messages (a path or a dataset name). */
  name?: string;
}

/** Per-channel mean/std of pixel values scaled to [0, 1], as torchvision's Normalize takes them. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

/** Published statistics of the usual datasets (training split). */
export const DATASET_STATS: Record<string, ChannelStats> = {
  'fashion-mnist': { mean: [0.286], std: [0.353] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
};

/** Bytes that loader workers can share. */
export function sharedBytes(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

export function imageBytes(ds: Pick<Dataset, 'channels' | 'height' | 'width'>): number {
  return ds.channels * ds.height * ds.width;
}

/** Structural checks every reader ends with, and the loaders start with. */
export function checkDataset(ds: Dataset): Dataset {
  const src = ds.name ?? 'dataset';
  for (const k of ['n', 'channels', 'height', 'width'] as const) {
    if (!Number.isInteger(ds[k]) || ds[k] < (k === 'n' ? 0 : 1))
      throw new DataError(src, `${k} must be a positive integer, got ${ds[k]}`);
  }
  if (ds.channels !== 1 && ds.channels !== 3) throw new DataError(src, `channels must be 1 or 3, got ${ds.channels}`);
  if (ds.images.length !== ds.n * imageBytes(ds)) {
    throw new DataError(src, `images hold ${ds.images.length} bytes, expected n·C·H·W = ${ds.n * imageBytes(ds)}`);
  }
  if (ds.labels.length !== ds.n) throw new DataError(src, `${ds.labels.length} labels for ${ds.n} images`);
  const k = ds.classes.length;
  for (let i = 0; i < ds.n; i++) {
    const l = ds.labels[i];
    if (l < 0 || l >= k) throw new DataError(src, `label ${l} of item ${i} is outside the ${k} classes`);
  }
  return ds;
}

/** The first `max` images (all of them when there are no more), without a copy when nothing is cut. */
export function firstImages(ds: Dataset, max: number): Dataset {
  const n = Math.min(max, ds.n);
  return n < ds.n
    ? subset(
        ds,
        Array.from({ length: n }, (_, i) => i),
      )
    : ds;
}

/** The images at `indices`, in that order, as a new dataset (shared-memory backed). */
export function subset(ds: Dataset, indices: ArrayLike<number>, name?: string): Dataset {
  const sz = imageBytes(ds);
  const images = sharedBytes(indices.length * sz);
  const labels = new Int32Array(indices.length);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (!(i >= 0 && i < ds.n)) throw new DataError(ds.name ?? 'dataset', `subset index ${i} is outside [0, ${ds.n})`);
    images.set(ds.images.subarray(i * sz, (i + 1) * sz), j * sz);
    labels[j] = ds.labels[i];
  }
  return { ...ds, images, labels, n: indices.length, name: name ?? ds.name };
}

/** Images per class, indexed by label. */
export function classCounts(ds: Pick<Dataset, 'labels' | 'classes'>): number[] {
  const c = new Array<number>(ds.classes.length).fill(0);
  for (const l of ds.labels) c[l]++;
  return c;
}

/** Indices of each class, in dataset order. */
export function indicesByClass(ds: Pick<Dataset, 'labels' | 'classes'>): number[][] {
  const out: number[][] = ds.classes.map(() => []);
  ds.labels.forEach((l, i) => out[l].push(i));
  return out;
}

/** Mean/std per channel over every pixel, in [0, 1] units (float64 sums: N·H·W reaches 10^8). */
export function channelStats(ds: Dataset): ChannelStats {
  const { n, channels: C } = ds;
  const hw = ds.height * ds.width;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < C; c++) {
    const hist = new Float64Array(256);
    for (let i = 0; i < n; i++) {
      const base = (i * C + c) * hw;
      for (let p = 0; p < hw; p++) hist[ds.images[base + p]]++;
    }
    let s = 0;
    let s2 = 0;
    for (let v = 0; v < 256; v++) {
      s += hist[v] * v;
      s2 += hist[v] * v * v;
    }
    const count = Math.max(1, n * hw);
    const m = s / count;
    mean.push(m / 255);
    std.push(Math.sqrt(Math.max(0, s2 / count - m * m)) / 255);
  }
  return { mean, std };
}
