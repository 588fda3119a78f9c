// Prototype usage over a dataset: how many prototypes are ever a sample's argmax, and the marginal
// latent-class distribution (the dataset mean of the per-sample softmax) with its entropy. A
// collapsed or under-used head shows as few used prototypes and a low-entropy marginal.
import { noGrad, ShapeError, Tensor } from '../tensor/tensor.js';
import { softmax } from '../tensor/ops/softmax.js';
import { sum, argmax } from '../tensor/ops/reduce.js';
import { mul } from '../tensor/ops/elementwise.js';
import { slice } from '../tensor/ops/layout.js';
import { entropyNats, positiveInt } from './common.js';

export interface PrototypeUsageOptions {
  /** What the rows hold: logits (softmax taken here) or probabilities (used as given). Default logits. */
  input?: 'logits' | 'probs';
  /** Softmax temperature for logits (e.g. the teacher's 0.04); default 1. */
  temperature?: number;
  /** Rows per batch when a single [N, K] tensor is given (default 1024). */
  batchSize?: number;
}

export interface PrototypeUsage {
  samples: number;
  prototypes: number;
  /** Prototypes that are the argmax of at least one sample. */
  used: number;
  /** How often each prototype is the argmax (first maximum on ties). */
  argmaxCounts: Int32Array;
  /** Mean over samples of the per-sample distribution (accumulated in float64). */
  marginal: Float64Array;
  /** Entropy of the marginal in nats, and as a fraction of its maximum log K (NaN for K = 1). */
  entropy: number;
  entropyFraction: number;
  /** exp(entropy): the number of equally used prototypes with the same entropy. */
  perplexity: number;
}

type Batches = Tensor | Iterable<Tensor> | AsyncIterable<Tensor>;

async function* batchesOf(src: Batches, batchSize: number): AsyncGenerator<{ t: Tensor; owned: boolean }> {
  if (src instanceof Tensor) {
    const n = src.rank === 2 ? src.shape[0] : 0;
    if (n <= batchSize) {
      yield { t: src, owned: false };
      return;
    }
    for (let b = 0; b < n; b += batchSize)
      yield { t: noGrad(() => slice(src, [b, 0], [Math.min(batchSize, n - b), -1])), owned: true };
    return;
  }
  for await (const t of src as AsyncIterable<Tensor>) yield { t, owned: false };
}

/**
 * Usage statistics of K prototypes over a dataset, from [N, K] rows of teacher logits or
 * probabilities: one tensor (cut into batches here) or any (async) iterable of [n, K] batches
 * (for datasets that never fit at once; batches are not disposed here).
 */
export async function prototypeUsage(src: Batches, opts: PrototypeUsageOptions = {}): Promise<PrototypeUsage> {
  const op = 'prototypeUsage';
  const input = opts.input ?? 'logits';
  if (input !== 'logits' && input !== 'probs')
    throw new ShapeError(op, `input must be 'logits' or 'probs', got '${input}'`);
  const temp = opts.temperature ?? 1;
  if (!(temp > 0 && Number.isFinite(temp))) throw new ShapeError(op, `temperature must be positive, got ${temp}`);
  const batchSize = positiveInt(op, 'batchSize', opts.batchSize ?? 1024);
  let K = -1,
    N = 0;
  let counts = new Int32Array(0),
    acc = new Float64Array(0);
  for await (const { t, owned } of batchesOf(src, batchSize)) {
    try {
      if (t.rank !== 2 || t.dtype !== 'f32')
        throw new ShapeError(op, `batches must be f32 [n, K], got ${t.dtype} [${t.shape}]`);
      if (K < 0) {
        K = t.shape[1];
        if (K < 1) throw new ShapeError(op, 'needs at least one prototype');
        counts = new Int32Array(K);
        acc = new Float64Array(K);
      } else if (t.shape[1] !== K) {
        throw new ShapeError(op, `batch has ${t.shape[1]} prototypes, earlier ones ${K}`);
      }
      const n = t.shape[0];
      if (n === 0) continue;
      const { am, colSum } = noGrad(() => {
        let p = t;
        if (input === 'logits') {
          const z = temp === 1 ? t : mul(t, 1 / temp);
          p = softmax(z, -1);
          if (z !== t) z.dispose();
        }
        const r = { am: argmax(t, -1), colSum: sum(p, 0) };
        if (p !== t) p.dispose();
        return r;
      });
      try {
        const idx = (await am.data()) as Int32Array;
        const cs = await colSum.data();
        for (let i = 0; i < n; i++) counts[idx[i]]++;
        for (let k = 0; k < K; k++) acc[k] += cs[k];
      } finally {
        am.dispose();
        colSum.dispose();
      }
      N += n;
    } finally {
      if (owned) t.dispose();
    }
  }
  if (N === 0) throw new ShapeError(op, 'no samples');
  const marginal = acc.map((v) => v / N);
  let used = 0;
  for (const c of counts) if (c > 0) used++;
  const entropy = entropyNats(marginal);
  return {
    samples: N,
    prototypes: K,
    used,
    argmaxCounts: counts,
    marginal,
    entropy,
    entropyFraction: K > 1 ? entropy / Math.log(K) : NaN,
    perplexity: Math.exp(entropy),
  };
}
