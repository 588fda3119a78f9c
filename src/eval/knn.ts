// Weighted k-NN on frozen features, DINO's protocol (eval_knn.py, after Wu et al. 2018): features
// L2-normalised, cosine similarity of each test row to every train row, the k most similar vote
// for their class with weight exp(sim / T), classes ranked by summed votes. The similarities and
// the top-k run on the device in chunks of test rows; only [chunk, k] comes back.
import type { Backend } from '../backend/backend.js';
import { noGrad, ShapeError, type Tensor } from '../tensor/tensor.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { matmul } from '../tensor/ops/matmul.js';
import { topk } from '../tensor/ops/neighbours.js';
import { slice, transpose } from '../tensor/ops/layout.js';
import { reshape } from '../tensor/ops/view.js';
import { asMatrix, checkLabels, classCount, positiveInt, type HostMatrix } from './common.js';

export interface KnnOptions {
  /** Neighbour count(s); DINO reports 10, 20, 100, 200 (default 20). All share one top-k pass. */
  k?: number | number[];
  /** Vote temperature (default 0.07). */
  temperature?: number;
  /** Default: 1 + the largest label seen. */
  numClasses?: number;
  /** L2-normalise both feature sets first (default true, as DINO does). */
  normalize?: boolean;
  /** Test rows per similarity chunk (default: chunk × trainRows ≤ 2^22, at most 1024). */
  chunkRows?: number;
  /** Needed when features are host matrices. */
  backend?: Backend;
}

export interface KnnResult {
  k: number;
  /** Fractions of test rows (DINO prints them ×100). */
  top1: number;
  /** Label among the first min(5, k) ranked classes. */
  top5: number;
  /** Top-ranked class per test row (ties: lowest class index). */
  predictions: Int32Array;
}

/** The first `n` classes by votes, descending; equal votes rank the lower class index first. */
export function rankVotes(votes: Float64Array, n: number): number[] {
  const top: number[] = [];
  for (let r = 0; r < Math.min(n, votes.length); r++) {
    let best = -1;
    for (let c = 0; c < votes.length; c++) {
      if (top.includes(c)) continue;
      if (best < 0 || votes[c] > votes[best]) best = c;
    }
    top.push(best);
  }
  return top;
}

/** Weighted k-NN accuracy of test features against train features, one result per k. */
export async function knnClassify(
  trainFeatures: Tensor | HostMatrix,
  trainLabels: ArrayLike<number>,
  testFeatures: Tensor | HostMatrix,
  testLabels: ArrayLike<number>,
  opts: KnnOptions = {},
): Promise<KnnResult[]> {
  const op = 'knnClassify';
  const ks = Array.isArray(opts.k) ? [...opts.k] : [opts.k ?? 20];
  if (ks.length === 0) throw new ShapeError(op, 'k is an empty list');
  const T = opts.temperature ?? 0.07;
  if (!(T > 0 && Number.isFinite(T))) throw new ShapeError(op, `temperature must be positive, got ${T}`);
  const tr = asMatrix(op, trainFeatures, opts.backend);
  const te = asMatrix(op, testFeatures, opts.backend ?? tr.t.backend);
  const owned: Tensor[] = [];
  if (tr.owned) owned.push(tr.t);
  if (te.owned) owned.push(te.t);
  try {
    const [N, D] = tr.t.shape;
    const [M, D2] = te.t.shape;
    if (D !== D2) throw new ShapeError(op, `train features have ${D} dims, test features ${D2}`);
    if (tr.t.backend !== te.t.backend) throw new ShapeError(op, 'train and test features are on different backends');
    const C = opts.numClasses ?? classCount(trainLabels, testLabels);
    positiveInt(op, 'numClasses', C);
    const ytr = checkLabels(op, trainLabels, N, C, 'trainLabels');
    const yte = checkLabels(op, testLabels, M, C, 'testLabels');
    for (const k of ks) {
      positiveInt(op, 'k', k);
      if (k > N) throw new ShapeError(op, `k = ${k} exceeds the ${N} training rows`);
    }
    const kmax = Math.max(...ks);
    const chunk =
      opts.chunkRows === undefined
        ? Math.max(1, Math.min(1024, Math.floor((1 << 22) / Math.max(1, N))))
        : positiveInt(op, 'chunkRows', opts.chunkRows);
    const normalize = opts.normalize ?? true;
    const { trainT, test } = noGrad(() => {
      const a = normalize ? l2Normalize(tr.t, 1) : reshape(tr.t, tr.t.shape);
      const at = transpose(a); // [D, N]: the plain (untransposed) product per chunk
      a.dispose();
      return { trainT: at, test: normalize ? l2Normalize(te.t, 1) : reshape(te.t, te.t.shape) };
    });
    owned.push(trainT, test);
    const preds = ks.map(() => new Int32Array(M));
    const top1 = ks.map(() => 0),
      top5 = ks.map(() => 0);
    const votes = new Float64Array(C);
    for (let c0 = 0; c0 < M; c0 += chunk) {
      const m = Math.min(chunk, M - c0);
      const { values, indices } = noGrad(() => {
        const q = slice(test, [c0, 0], [m, D]);
        const sims = matmul(q, trainT);
        q.dispose();
        const r = topk(sims, kmax);
        sims.dispose();
        return r;
      });
      let vals: Float32Array, idx: Int32Array;
      try {
        vals = (await values.data()) as Float32Array;
        idx = (await indices.data()) as Int32Array;
      } finally {
        values.dispose();
        indices.dispose();
      }
      for (let r = 0; r < m; r++) {
        const row = c0 + r;
        ks.forEach((k, ki) => {
          votes.fill(0);
          for (let j = 0; j < k; j++) votes[ytr[idx[r * kmax + j]]] += Math.exp(vals[r * kmax + j] / T);
          const ranked = rankVotes(votes, Math.min(5, k));
          preds[ki][row] = ranked[0];
          if (ranked[0] === yte[row]) top1[ki]++;
          if (ranked.includes(yte[row])) top5[ki]++;
        });
      }
    }
    return ks.map((k, ki) => ({
      k,
      top1: M > 0 ? top1[ki] / M : NaN,
      top5: M > 0 ? top5[ki] / M : NaN,
      predictions: preds[ki],
    }));
  } finally {
    for (const t of owned) t.dispose();
  }
}
