// What the final teacher does with real images: it is rebuilt from the checkpoint, run over the
// first N test images of its run (the images eval judges it on, normalised as training normalised
// them), and each image goes to its argmax prototype. Logits are read back one batch at a time and
// reduced on the host, so memory is O(N + batch·K), never N·K.
import type { Backend } from '../backend/backend.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { EvalLoader, firstImages, type Dataset } from '../data/index.js';
import { checkpointStats, evalData, networkFromCheckpoint, type RunCheckpoint } from '../train/run-data.js';

export interface Assignments {
  /** The images the teacher saw (the first n of the run's test split). */
  dataset: Dataset;
  /** Argmax prototype of each image. */
  argmax: Int32Array;
  /** Its logit. */
  score: Float32Array;
  /** Images per prototype, length K. */
  counts: Int32Array;
}

export async function teacherAssignments(run: RunCheckpoint, be: Backend, maxImages: number): Promise<Assignments> {
  const data = await evalData(run.cfg, { longTail: 1, stats: checkpointStats(run.ck) });
  const dataset = firstImages(data.test, maxImages);
  const n = dataset.n;
  const loader = new EvalLoader({ dataset, batchSize: 128, mean: data.mean, std: data.std });
  const net = networkFromCheckpoint(run, be, dataset.channels, 'teacher').eval();
  const argmax = new Int32Array(n),
    score = new Float32Array(n);
  let K = 0,
    off = 0;
  try {
    for (const b of loader) {
      const out = noGrad(() =>
        tidy(() => net.forward(tensor(b.images, [b.size, dataset.channels, loader.size, loader.size], be))),
      );
      K = out.shape[1];
      const logits = (await out.data()) as Float32Array;
      out.dispose();
      for (let r = 0; r < b.size; r++) {
        let best = 0,
          bestV = -Infinity;
        for (let k = 0; k < K; k++) {
          const v = logits[r * K + k];
          if (v > bestV) {
            bestV = v;
            best = k;
          }
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
