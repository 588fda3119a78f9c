// Seeded held-out splits (e.g. a validation set for k-NN or linear-probe model selection).
import { DataError } from './errors.js';
import { indicesByClass, subset, type Dataset } from './dataset.js';
import { checkSeed, permutation, Rng, seedWords } from './rng.js';

export interface SplitOptions {
  seed: number;
  /** Held-out share of the dataset, in (0, 1). Exactly one of fraction / count. */
  fraction?: number;
  /** Held-out image count. */
  count?: number;
  /** Keep class proportions (default true): per-class shares by largest remainder, summing exactly to count. */
  stratified?: boolean;
}

export interface SplitResult {
  train: Dataset;
  heldOut: Dataset;
  trainIndices: Int32Array;
  heldOutIndices: Int32Array;
}

export function heldOutSplit(ds: Dataset, opts: SplitOptions): SplitResult {
  checkSeed(opts.seed);
  const src = ds.name ?? 'dataset';
  if ((opts.fraction === undefined) === (opts.count === undefined))
    throw new DataError(src, 'give exactly one of fraction and count');
  const count = opts.count ?? Math.round((opts.fraction as number) * ds.n);
  if (!(Number.isInteger(count) && count >= 0 && count <= ds.n))
    throw new DataError(src, `held-out count ${count} is outside [0, ${ds.n}]`);
  const seed = seedWords(opts.seed);
  const held: number[] = [];
  if (opts.stratified ?? true) {
    const byClass = indicesByClass(ds);
    const exact = byClass.map((m) => (m.length * count) / Math.max(1, ds.n));
    const take = exact.map(Math.floor);
    let left = count - take.reduce((a, b) => a + b, 0);
    const order = exact.map((e, c) => c).sort((a, b) => exact[b] - take[b] - (exact[a] - take[a]) || a - b);
    for (const c of order) {
      if (left === 0) break;
      if (take[c] < byClass[c].length) {
        take[c]++;
        left--;
      }
    }
    byClass.forEach((members, c) => {
      const perm = permutation(members.length, new Rng([0x5b117, ...seed, c]));
      for (let k = 0; k < take[c]; k++) held.push(members[perm[k]]);
    });
  } else {
    const perm = permutation(ds.n, new Rng([0x5b117, ...seed, -1]));
    for (let k = 0; k < count; k++) held.push(perm[k]);
  }
  const heldOutIndices = Int32Array.from(held).sort();
  const isHeld = new Uint8Array(ds.n);
  for (const i of heldOutIndices) isHeld[i] = 1;
  const trainIndices = new Int32Array(ds.n - count);
  for (let i = 0, k = 0; i < ds.n; i++) if (!isHeld[i]) trainIndices[k++] = i;
  return {
    train: subset(ds, trainIndices, `${src}@train`),
    heldOut: subset(ds, heldOutIndices, `${src}@heldout`),
    trainIndices,
    heldOutIndices,
  };
}
