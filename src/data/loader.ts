// The training loader: multi-crop batches made ahead of time in worker threads. A batch's content
// depends only on (seed, epoch, batch index), never on worker count, prefetch depth or timing, so a
// run resumed from `state()` sees exactly the batches an uninterrupted run would have.
import { Worker } from 'node:worker_threads';
import { channelStats, checkDataset, type Dataset } from './dataset.js';
import { DataError } from './errors.js';
import { BatchMaker, batchesPerEpoch, viewBatch, type Batch, type BatchHeader, type BatchPlan } from './batch.js';
import { resolveMultiCrop, type MultiCropOptions } from './multicrop.js';
import { checkSeed, seedWords } from './rng.js';

/** The data cursor a checkpoint stores: the next batch to be consumed, and what it is valid for. */
export interface LoaderState {
  epoch: number;
  batch: number;
  seed: number;
  batchSize: number;
  n: number;
}

export interface LoaderOptions {
  dataset: Dataset;
  batchSize: number;
  seed: number;
  crops: MultiCropOptions;
  /** Worker threads making batches (default 1); 0 makes them on the calling thread, on demand. */
  workers?: number;
  /** Batches requested ahead of the consumer (default 3). */
  prefetch?: number;
  /** Drop the short last batch of an epoch (default true, as DINO's loader). */
  dropLast?: boolean;
  shuffle?: boolean;
  /** Continue from a saved cursor. */
  resume?: LoaderState;
}

interface Job {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

export class Loader {
  readonly batchesPerEpoch: number;
  readonly batchSize: number;
  readonly seed: number;
  private readonly n: number;
  private readonly prefetch: number;
  private readonly pending = new Map<number, Promise<Batch>>();
  private readonly slots: Slot[] = [];
  private readonly inline: BatchMaker | null = null;
  private cursor: number;
  private issued: number;
  private failure: Error | null = null;
  private closed = false;

  constructor(opts: LoaderOptions) {
    const ds = checkDataset(opts.dataset);
    const src = ds.name ?? 'dataset';
    this.seed = checkSeed(opts.seed);
    this.batchSize = opts.batchSize;
    this.n = ds.n;
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0))
      throw new DataError(src, `batchSize must be a positive integer, got ${opts.batchSize}`);
    const dropLast = opts.dropLast ?? true;
    this.batchesPerEpoch = batchesPerEpoch(ds.n, opts.batchSize, dropLast);
    if (this.batchesPerEpoch === 0)
      throw new DataError(src, `${ds.n} images do not fill one batch of ${opts.batchSize}`);
    const workers = opts.workers ?? 1;
    this.prefetch = Math.max(1, opts.prefetch ?? 3);
    const plan: BatchPlan = {
      n: ds.n,
      channels: ds.channels,
      height: ds.height,
      width: ds.width,
      batchSize: opts.batchSize,
      dropLast,
      shuffle: opts.shuffle ?? true,
      seed: seedWords(this.seed),
      crops: resolveMultiCrop(opts.crops, ds.channels, () => channelStats(ds)),
    };
    this.cursor = this.resumeAt(opts.resume, src);
    this.issued = this.cursor;
    if (workers <= 0) {
      this.inline = new BatchMaker(plan, ds.images, ds.labels);
      return;
    }
    let images = ds.images;
    if (!(images.buffer instanceof SharedArrayBuffer)) {
      images = new Uint8Array(new SharedArrayBuffer(ds.images.length));
      images.set(ds.images);
    }
    for (let w = 0; w < workers; w++) {
      const worker = new Worker(new URL('./loader-worker.js', import.meta.url), {
        workerData: {
          plan,
          images: images.buffer,
          imagesOffset: images.byteOffset,
          imagesLength: images.length,
          labels: ds.labels,
        },
      });
      const slot: Slot = { worker, jobs: new Map() };
      // Referenced only while it owes batches, so an idle loader never keeps the process alive.
      worker.unref();
      worker.on('message', (m: { id: number; header?: BatchHeader; buffer?: ArrayBuffer; error?: string }) => {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        if (slot.jobs.size === 0) worker.unref();
        if (m.error) job.reject(new Error(`loader worker: ${m.error}`));
        else job.resolve(viewBatch(m.header!, m.buffer!));
      });
      const die = (e: Error): void => this.fail(new Error(`loader worker ${w} died: ${e.message}`));
      worker.on('error', die);
      worker.on('exit', (code) => this.closed || die(new Error(`exit code ${code}`)));
      this.slots.push(slot);
    }
  }

  private resumeAt(r: LoaderState | undefined, src: string): number {
    if (!r) return 0;
    const want = { seed: this.seed, batchSize: this.batchSize, n: this.n };
    for (const k of ['seed', 'batchSize', 'n'] as const) {
      if (r[k] !== want[k])
        throw new DataError(src, `resume state was saved with ${k}=${r[k]}, this loader has ${k}=${want[k]}`);
    }
    if (!(
      Number.isInteger(r.epoch) &&
      r.epoch >= 0 &&
      Number.isInteger(r.batch) &&
      r.batch >= 0 &&
      r.batch < this.batchesPerEpoch
    )) {
      throw new DataError(
        src,
        `resume cursor epoch ${r.epoch} batch ${r.batch} is outside [0, ${this.batchesPerEpoch}) batches per epoch`,
      );
    }
    return r.epoch * this.batchesPerEpoch + r.batch;
  }

  /** The cursor of the next batch `next()` returns; save it with a checkpoint. */
  state(): LoaderState {
    return {
      epoch: Math.floor(this.cursor / this.batchesPerEpoch),
      batch: this.cursor % this.batchesPerEpoch,
      seed: this.seed,
      batchSize: this.batchSize,
      n: this.n,
    };
  }

  /** The batch at the cursor; advances the cursor and keeps `prefetch` batches in the making. */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('loader is closed');
    if (this.failure) throw this.failure;
    const seq = this.cursor++;
    if (this.inline) {
      const { header, buffer } = this.inline.make(Math.floor(seq / this.batchesPerEpoch), seq % this.batchesPerEpoch);
      return viewBatch(header, buffer);
    }
    this.fill(seq);
    const p = this.pending.get(seq)!;
    this.pending.delete(seq);
    this.fill(this.cursor);
    return p;
  }

  /** The rest of the current epoch's batches. */
  async *epoch(): AsyncGenerator<Batch> {
    const e = this.state().epoch;
    while (this.state().epoch === e) yield await this.next();
  }

  private fill(from: number): void {
    this.issued = Math.max(this.issued, from);
    while (this.issued < from + this.prefetch) {
      const seq = this.issued++;
      const slot = this.slots[seq % this.slots.length];
      const p = new Promise<Batch>((resolve, reject) => slot.jobs.set(seq, { resolve, reject }));
      // A failed prefetch is reported by the next() that asks for it, not as an unhandled rejection.
      p.catch(() => {});
      this.pending.set(seq, p);
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage({
        id: seq,
        epoch: Math.floor(seq / this.batchesPerEpoch),
        batch: seq % this.batchesPerEpoch,
      });
    }
  }

  private fail(e: Error): void {
    if (this.failure || this.closed) return;
    this.failure = e;
    for (const s of this.slots) {
      for (const j of s.jobs.values()) j.reject(e);
      s.jobs.clear();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('loader closed');
    for (const s of this.slots) {
      for (const j of s.jobs.values()) j.reject(err);
      s.jobs.clear();
    }
    this.pending.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
