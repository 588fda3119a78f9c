// Diagnostics of a DINO network during or after training: backbone features of a dataset, weighted
// k-NN on them (DINO's protocol), and the unique-prototype count of the head.
import type { Backend } from '../backend/backend.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { EvalLoader, firstImages, type Dataset } from '../data/index.js';
import { countUniquePrototypes, knnClassify, type HostMatrix } from '../eval/index.js';
import type { DinoNetwork } from './network.js';
import type { EvalData } from './run-data.js';

export interface Embedded {
  features: HostMatrix;
  labels: Int32Array;
}

/**
 * Backbone features of the first `max` images of `ds` (eval mode, no augmentation), normalised with
 * `mean` / `std`: the training images' statistics (run-data.ts), never those of `ds` itself.
 */
export async function embedDataset(
  net: DinoNetwork,
  ds: Dataset,
  opts: { mean: number[]; std: number[]; max?: number; batchSize?: number },
): Promise<Embedded> {
  const data = firstImages(ds, opts.max ?? ds.n);
  const n = data.n;
  const loader = new EvalLoader({ dataset: data, batchSize: opts.batchSize ?? 256, mean: opts.mean, std: opts.std });
  const wasTraining = net.training;
  net.eval();
  const chunks: Float32Array[] = [];
  const labels = new Int32Array(n);
  let dim = 0,
    off = 0;
  try {
    for (const b of loader) {
      const f = noGrad(() =>
        tidy(() => net.features(tensor(b.images, [b.size, data.channels, loader.size, loader.size], net.backend))),
      );
      dim = f.shape[1];
      chunks.push((await f.data()) as Float32Array);
      f.dispose();
      labels.set(b.labels, off);
      off += b.size;
    }
  } finally {
    net.train(wasTraining);
  }
  const features = new Float32Array(n * dim);
  let o = 0;
  for (const c of chunks) {
    features.set(c, o);
    o += c.length;
  }
  return { features: { data: features, shape: [n, dim] }, labels };
}

export interface NetworkReport {
  /** NaN when k-NN was not asked for. */
  knnTop1: number;
  uniquePrototypes: Record<string, number>;
}

/** k-NN top-1 (k = 20, T = 0.07) of the backbone features on a run's bank and test images, and unique prototypes at each ε. */
export async function evaluateNetwork(
  net: DinoNetwork,
  data: Pick<EvalData, 'train' | 'test' | 'mean' | 'std'>,
  be: Backend,
  opts: { knn?: boolean; trainMax?: number; testMax?: number; eps?: number[] } = {},
): Promise<NetworkReport> {
  let knnTop1 = NaN;
  if (opts.knn ?? true) {
    const tr = await embedDataset(net, data.train, { max: opts.trainMax ?? 10000, mean: data.mean, std: data.std });
    const te = await embedDataset(net, data.test, { max: opts.testMax ?? 2000, mean: data.mean, std: data.std });
    knnTop1 = (
      await knnClassify(tr.features, tr.labels, te.features, te.labels, { k: 20, temperature: 0.07, backend: be })
    )[0].top1;
  }
  const protos = await countUniquePrototypes(net.head.last_layer.weight_v, {
    eps: opts.eps ?? [0.025, 0.1],
    rule: 'greedy',
  });
  const uniquePrototypes: Record<string, number> = {};
  for (const e of protos.perEps) uniquePrototypes[String(e.eps)] = e.greedy!.unique;
  return { knnTop1, uniquePrototypes };
}
