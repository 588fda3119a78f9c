// Linear probe on frozen features (DINO's eval_linear.py without its image augmentation): one
// linear layer trained with cross-entropy against integer labels, SGD with momentum (DINO's
// default, lr 0.001·batch/256, cosine annealing to 0 stepped per epoch) or the engine's AdamW.
// Cross-entropy takes a one-hot target built on the host per batch; everything else stays on the
// device, and the loss is read back once per epoch.
import type { Backend } from '../backend/backend.js';
import { keep, noGrad, ShapeError, tidy, type Tensor } from '../tensor/tensor.js';
import { tensor, zeros } from '../tensor/create.js';
import { backward, param } from '../tensor/autograd.js';
import { add, mul, sub } from '../tensor/ops/elementwise.js';
import { sum, mean } from '../tensor/ops/reduce.js';
import { crossEntropy } from '../tensor/ops/softmax.js';
import { linear } from '../tensor/ops/matmul.js';
import { gatherRows } from '../tensor/ops/layout.js';
import { topk } from '../tensor/ops/neighbours.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { Generator } from '../tensor/ops/random.js';
import { AdamW } from '../tensor/ops/optim.js';
import { reshape } from '../tensor/ops/view.js';
import { permutation, Rng } from '../data/rng.js';
import { asMatrix, checkLabels, classCount, positiveInt, type HostMatrix } from './common.js';

export interface LinearProbeOptions {
  numClasses?: number;
  epochs?: number;
  batchSize?: number;
  /** Peak learning rate (default DINO's 0.001 · batchSize / 256). */
  lr?: number;
  optimizer?: 'sgd' | 'adamw';
  /** SGD momentum (default 0.9; torch semantics: buf = m·buf + g, no dampening). */
  momentum?: number;
  /** Applied to weight and bias alike, as torch does for model.parameters() (default 0). */
  weightDecay?: number;
  /** cosine: lr·(1 + cos(π·epoch/epochs))/2 per epoch (CosineAnnealingLR, eta_min 0); default cosine. */
  schedule?: 'cosine' | 'constant';
  /** Seeds the initial weights and the per-epoch shuffles (default 0). */
  seed?: number;
  shuffle?: boolean;
  /** normal: N(0, 0.01²) weights, zero bias (DINO's LinearClassifier); or explicit [C·D] / [C] values. */
  init?: 'normal' | 'zeros' | { weight: ArrayLike<number>; bias: ArrayLike<number> };
  /** L2-normalise features first (default false: DINO probes the raw features). */
  normalize?: boolean;
  backend?: Backend;
}

export interface LinearProbeResult {
  top1: number;
  top5: number;
  predictions: Int32Array;
  /** Mean training cross-entropy of each epoch (over the samples, at the weights of the moment). */
  epochLoss: Float64Array;
  /** Learning rate used in each epoch. */
  lrs: Float64Array;
  /** Final weight [C, D] row-major and bias [C]. */
  weight: Float32Array;
  bias: Float32Array;
}

export function epochLr(base: number, epoch: number, epochs: number, schedule: 'cosine' | 'constant'): number {
  return schedule === 'constant' ? base : (base * (1 + Math.cos((Math.PI * epoch) / epochs))) / 2;
}

/** One torch.optim.SGD step; returns the new parameter tensors (the old ones are disposed). */
function sgdStep(params: Tensor[], bufs: (Tensor | null)[], lr: number, momentum: number, wd: number): Tensor[] {
  return params.map((p, i) => {
    const g = p.grad;
    if (!g) return p;
    const next = noGrad(() =>
      tidy(() => {
        const d = wd !== 0 ? add(g, mul(p, wd)) : g;
        let step = d;
        if (momentum !== 0) {
          const prev = bufs[i];
          const buf = prev ? add(mul(prev, momentum), d) : add(d, 0);
          prev?.dispose();
          bufs[i] = keep(buf);
          step = buf;
        }
        return sub(p, mul(step, lr));
      }),
    );
    p.dispose();
    return param(next, p.name);
  });
}

/** Trains a linear classifier on frozen train features and reports top-1/top-5 on the test ones. */
export async function linearProbe(
  trainFeatures: Tensor | HostMatrix,
  trainLabels: ArrayLike<number>,
  testFeatures: Tensor | HostMatrix,
  testLabels: ArrayLike<number>,
  opts: LinearProbeOptions = {},
): Promise<LinearProbeResult> {
  const op = 'linearProbe';
  const tr = asMatrix(op, trainFeatures, opts.backend);
  const te = asMatrix(op, testFeatures, opts.backend ?? tr.t.backend);
  const be = tr.t.backend;
  const owned: Tensor[] = [];
  if (tr.owned) owned.push(tr.t);
  if (te.owned) owned.push(te.t);
  let W: Tensor | null = null,
    b: Tensor | null = null;
  const bufs: (Tensor | null)[] = [null, null];
  let adam: AdamW | null = null;
  try {
    const [N, D] = tr.t.shape;
    const [M, D2] = te.t.shape;
    if (D !== D2) throw new ShapeError(op, `train features have ${D} dims, test features ${D2}`);
    if (te.t.backend !== be) throw new ShapeError(op, 'train and test features are on different backends');
    const C = positiveInt(op, 'numClasses', opts.numClasses ?? classCount(trainLabels, testLabels));
    const ytr = checkLabels(op, trainLabels, N, C, 'trainLabels');
    const yte = checkLabels(op, testLabels, M, C, 'testLabels');
    if (N === 0) throw new ShapeError(op, 'no training rows');
    const epochs = positiveInt(op, 'epochs', opts.epochs ?? 100);
    const batchSize = positiveInt(op, 'batchSize', opts.batchSize ?? 256);
    const lr = opts.lr ?? (0.001 * batchSize) / 256;
    const momentum = opts.momentum ?? 0.9,
      wd = opts.weightDecay ?? 0;
    const optimizer = opts.optimizer ?? 'sgd',
      schedule = opts.schedule ?? 'cosine';
    if (!(lr >= 0) || !(momentum >= 0 && momentum < 1) || !(wd >= 0))
      throw new ShapeError(op, `bad lr ${lr}, momentum ${momentum} or weightDecay ${wd}`);
    if (optimizer !== 'sgd' && optimizer !== 'adamw') throw new ShapeError(op, `unknown optimizer '${optimizer}'`);
    if (schedule !== 'cosine' && schedule !== 'constant') throw new ShapeError(op, `unknown schedule '${schedule}'`);
    const seed = opts.seed ?? 0;
    const normalize = opts.normalize ?? false;
    const { xtr, xte } = noGrad(() => ({
      xtr: normalize ? l2Normalize(tr.t, 1) : reshape(tr.t, tr.t.shape),
      xte: normalize ? l2Normalize(te.t, 1) : reshape(te.t, te.t.shape),
    }));
    owned.push(xtr, xte);

    const init = opts.init ?? 'normal';
    if (init === 'normal') W = new Generator(seed).randn([C, D], be, 0, 0.01);
    else if (init === 'zeros') W = zeros([C, D], be);
    else {
      if (init.weight.length !== C * D || init.bias.length !== C)
        throw new ShapeError(op, `init needs ${C * D} weights and ${C} biases`);
      W = tensor(init.weight, [C, D], be);
    }
    b = typeof init === 'object' ? tensor(init.bias, [C], be) : zeros([C], be);
    W = param(W, 'weight');
    b = param(b, 'bias');
    if (optimizer === 'adamw') adam = new AdamW([W, b], { lr, weightDecay: wd });

    const epochLoss = new Float64Array(epochs),
      lrs = new Float64Array(epochs);
    for (let epoch = 0; epoch < epochs; epoch++) {
      const lrE = epochLr(lr, epoch, epochs, schedule);
      lrs[epoch] = lrE;
      const order =
        (opts.shuffle ?? true)
          ? permutation(N, new Rng([seed, epoch, 0x11e4]))
          : Int32Array.from({ length: N }, (_, i) => i);
      let lossSum = zeros([], be);
      for (let s = 0; s < N; s += batchSize) {
        const idx = order.subarray(s, Math.min(N, s + batchSize));
        const n = idx.length;
        const onehot = new Float32Array(n * C);
        for (let r = 0; r < n; r++) onehot[r * C + ytr[idx[r]]] = 1;
        const w = W!,
          bb = b!;
        const batchSum = tidy(() => {
          const xb = noGrad(() => gatherRows(xtr, idx));
          const target = tensor(onehot, [n, C], be);
          const ce = crossEntropy(target, linear(xb, w, bb));
          backward(mean(ce));
          return noGrad(() => sum(ce));
        });
        const next = add(lossSum, batchSum);
        lossSum.dispose();
        batchSum.dispose();
        lossSum = next;
        if (adam) {
          for (const g of adam.groups) g.lr = lrE;
          adam.step();
          adam.zeroGrad();
        } else {
          [W, b] = sgdStep([w, bb], bufs, lrE, momentum, wd);
        }
      }
      epochLoss[epoch] = (await lossSum.item()) / N;
      lossSum.dispose();
    }

    const k5 = Math.min(5, C);
    const w = W,
      bb = b;
    const top = noGrad(() => tidy(() => topk(linear(xte, w, bb), k5)));
    let idx: Int32Array;
    try {
      idx = (await top.indices.data()) as Int32Array;
    } finally {
      top.values.dispose();
      top.indices.dispose();
    }
    const predictions = new Int32Array(M);
    let c1 = 0,
      c5 = 0;
    for (let r = 0; r < M; r++) {
      predictions[r] = idx[r * k5];
      if (idx[r * k5] === yte[r]) c1++;
      for (let j = 0; j < k5; j++) if (idx[r * k5 + j] === yte[r]) c5++;
    }
    return {
      top1: M > 0 ? c1 / M : NaN,
      top5: M > 0 ? c5 / M : NaN,
      predictions,
      epochLoss,
      lrs,
      weight: Float32Array.from(await W.data()),
      bias: Float32Array.from(await b.data()),
    };
  } finally {
    adam?.dispose();
    for (const t of [...owned, W, b, ...bufs]) t?.dispose();
  }
}
