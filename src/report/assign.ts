// What the final teacher does with real images: it is rebuilt from the checkpoint, run over the
// first N evaluation images, and each image goes to its argmax prototype. Logits are read back one
// batch at a time and reduced on the host, so memory is O(N + batch·K), never N·K.
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { channelStats, EvalLoader, loadCifar10, loadFashionMNIST, loadIdxDataset, loadImageFolder, longTail, subset, type Dataset } from '../data/index.js';
import { existsSync } from 'node:fs';
import { DEFAULTS, type TrainConfig } from '../train/config.js';
import { buildNetwork, type DinoNetwork } from '../train/network.js';
import type { LoadedCheckpoint } from '../train/checkpoint.js';

export interface Assignments {
  /** The images the teacher saw (the first n of the evaluation split). */
  dataset: Dataset;
  /** Argmax prototype of each image. */
  argmax: Int32Array;
  /** Its logit. */
  score: Float32Array;
  /** Images per prototype, length K. */
  counts: Int32Array;
}

/** The training set exactly as the trainer built it (its statistics normalise the inputs). */
async function trainingSet(cfg: TrainConfig): Promise<Dataset> {
  let ds: Dataset;
  switch (cfg.dataset) {
    case 'fashion-mnist': ds = await loadFashionMNIST({ split: 'train', ...(cfg.data_path ? { dir: cfg.data_path } : {}) }); break;
    case 'idx': ds = await loadIdxDataset({ images: join(cfg.data_path, 'train-images-idx3-ubyte.gz'), labels: join(cfg.data_path, 'train-labels-idx1-ubyte.gz') }); break;
    case 'cifar10': ds = await loadCifar10({ dir: cfg.data_path, split: 'train' }); break;
    case 'folder': ds = await loadImageFolder({ root: cfg.data_path, size: cfg.global_crops_size }); break;
  }
  if (cfg.long_tail > 1) ds = longTail(ds, { ratio: cfg.long_tail, seed: cfg.seed }).dataset;
  if (cfg.subset > 0 && cfg.subset < ds.n) ds = subset(ds, Array.from({ length: cfg.subset }, (_, i) => i));
  return ds;
}

/** Held-out images where the dataset has a test split; the training images otherwise. */
async function evalSet(cfg: TrainConfig, train: Dataset): Promise<Dataset> {
  switch (cfg.dataset) {
    case 'fashion-mnist': return loadFashionMNIST({ split: 'test', ...(cfg.data_path ? { dir: cfg.data_path } : {}) });
    case 'cifar10': return loadCifar10({ dir: cfg.data_path, split: 'test' });
    case 'idx': {
      const img = join(cfg.data_path, 't10k-images-idx3-ubyte.gz'), lab = join(cfg.data_path, 't10k-labels-idx1-ubyte.gz');
      return existsSync(img) && existsSync(lab) ? loadIdxDataset({ images: img, labels: lab }) : train;
    }
    case 'folder': return train;
  }
}

function sub(tensors: LoadedCheckpoint['tensors'], prefix: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** The checkpoint's teacher, live on `be`, in eval mode. The caller disposes it. */
export function rebuildTeacher(ck: LoadedCheckpoint, be: Backend, channels: number): DinoNetwork {
  const cfg = { ...DEFAULTS, ...(ck.meta.config as Partial<TrainConfig>) };
  const net = buildNetwork(cfg, be, channels, cfg.seed, 0);
  try {
    net.loadStateDict(sub(ck.tensors, 'teacher.'));
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net.eval();
}

export async function teacherAssignments(ck: LoadedCheckpoint, be: Backend, maxImages: number): Promise<Assignments> {
  const cfg = { ...DEFAULTS, ...(ck.meta.config as Partial<TrainConfig>) };
  const train = await trainingSet(cfg);
  const stats = channelStats(train);
  const full = await evalSet(cfg, train);
  const n = Math.min(maxImages, full.n);
  const dataset = n < full.n ? subset(full, Array.from({ length: n }, (_, i) => i)) : full;
  const loader = new EvalLoader({ dataset, batchSize: 128, mean: stats.mean, std: stats.std, size: cfg.global_crops_size });
  const net = rebuildTeacher(ck, be, dataset.channels);
  const argmax = new Int32Array(n), score = new Float32Array(n);
  let K = 0, off = 0;
  try {
    for (const b of loader) {
      const out = noGrad(() => tidy(() => net.forward(tensor(b.images, [b.size, dataset.channels, loader.size, loader.size], be))));
      K = out.shape[1];
      const logits = (await out.data()) as Float32Array;
      out.dispose();
      for (let r = 0; r < b.size; r++) {
        let best = 0, bestV = -Infinity;
        for (let k = 0; k < K; k++) {
          const v = logits[r * K + k];
          if (v > bestV) { bestV = v; best = k; }
        }
        argmax[off + r] = best;
        score[off + r] = bestV;
      }
      off += b.size;
    }
  } finally {
    net.dispose();
  }
  const counts = new Int32Array(K);
  for (const a of argmax) counts[a]++;
  return { dataset, argmax, score, counts };
}
