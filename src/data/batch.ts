// One training batch as a single ArrayBuffer (so a worker hands it over by transfer, not copy):
// crop 0 [B,C,G,G], crop 1 [B,C,G,G], local crops [B,C,L,L] each, then labels and dataset indices.
// Its content is a function of (seed, epoch, batch index) only.
import { MultiCrop, type ResolvedMultiCrop } from './multicrop.js';
import { permutation, Rng } from './rng.js';

export interface BatchPlan {
  n: number;
  channels: number;
  height: number;
  width: number;
  batchSize: number;
  dropLast: boolean;
  shuffle: boolean;
  seed: [number, number];
  crops: ResolvedMultiCrop;
}

export interface BatchHeader {
  epoch: number;
  batch: number;
  /** Images in this batch (batchSize except a kept short last batch). */
  size: number;
  channels: number;
  cropSizes: number[];
}

export interface Batch extends BatchHeader {
  /** crops[k]: [size, C, S_k, S_k] */
  crops: Float32Array[];
  /** The two global crops back to back, [2·size, C, G, G] (DINO concatenates views of one resolution). */
  globals: Float32Array;
  /** All local crops back to back, [L·size, C, S, S]. */
  locals: Float32Array;
  labels: Int32Array;
  /** Dataset indices of the images. */
  indices: Int32Array;
  buffer: ArrayBuffer;
}

export function batchesPerEpoch(n: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Views over a batch buffer laid out by makeBatch. */
export function viewBatch(h: BatchHeader, buffer: ArrayBuffer): Batch {
  const crops: Float32Array[] = [];
  let off = 0;
  for (const S of h.cropSizes) {
    const len = h.size * h.channels * S * S;
    crops.push(new Float32Array(buffer, off * 4, len));
    off += len;
  }
  const gLen = crops.slice(0, 2).reduce((a, c) => a + c.length, 0);
  const globals = new Float32Array(buffer, 0, gLen);
  const locals = new Float32Array(buffer, gLen * 4, off - gLen);
  const labels = new Int32Array(buffer, off * 4, h.size);
  const indices = new Int32Array(buffer, (off + h.size) * 4, h.size);
  return { ...h, crops, globals, locals, labels, indices, buffer };
}

/** Makes batches of one dataset; one per thread (it owns scratch buffers and an epoch-order cache). */
export class BatchMaker {
  readonly perEpoch: number;
  private readonly crop: MultiCrop;
  private readonly orders = new Map<number, Int32Array>();

  constructor(
    readonly plan: BatchPlan,
    private readonly images: Uint8Array,
    private readonly labels: Int32Array,
  ) {
    this.perEpoch = batchesPerEpoch(plan.n, plan.batchSize, plan.dropLast);
    this.crop = new MultiCrop(plan.crops, plan);
  }

  /** The epoch's sample order: a seeded permutation (two cached: workers straddle epoch ends). */
  order(epoch: number): Int32Array {
    let p = this.orders.get(epoch);
    if (!p) {
      const { n, shuffle, seed } = this.plan;
      p = shuffle
        ? permutation(n, new Rng([0x5e9, seed[0], seed[1], epoch]))
        : Int32Array.from({ length: n }, (_, i) => i);
      if (this.orders.size >= 2) this.orders.delete(this.orders.keys().next().value as number);
      this.orders.set(epoch, p);
    }
    return p;
  }

  make(epoch: number, batch: number): { header: BatchHeader; buffer: ArrayBuffer } {
    const { n, batchSize, channels: C, height: H, width: W, seed } = this.plan;
    if (!(Number.isInteger(batch) && batch >= 0 && batch < this.perEpoch))
      throw new RangeError(`batch ${batch} is outside [0, ${this.perEpoch})`);
    const start = batch * batchSize;
    const size = Math.min(batchSize, n - start);
    const cropSizes = this.crop.cropSizes;
    const floats = cropSizes.reduce((a, S) => a + size * C * S * S, 0);
    const header: BatchHeader = { epoch, batch, size, channels: C, cropSizes };
    const buffer = new ArrayBuffer((floats + 2 * size) * 4);
    const b = viewBatch(header, buffer);
    const order = this.order(epoch);
    const per = C * H * W;
    for (let j = 0; j < size; j++) {
      const i = order[start + j];
      b.indices[j] = i;
      b.labels[j] = this.labels[i];
      this.crop.apply(this.images, i * per, i, seed, epoch, b.crops, j);
    }
    return { header, buffer };
  }
}
