// Long-tailed variants of balanced datasets (the iNaturalist stand-in): exponential class imbalance,
// as in Cao et al.'s LDAM code that long-tailed CIFAR/Fashion-MNIST benchmarks use.
import { DataError } from './errors.js';
import { indicesByClass, subset, type Dataset } from './dataset.js';
import { checkSeed, permutation, Rng, seedWords } from './rng.js';

/**
 * Per-class sizes: class c keeps floor(nMax · ratio^(−c/(C−1))), so class 0 keeps nMax and the last
 * class nMax/ratio (the imbalance ratio is largest/smallest).
 */
export function longTailCounts(nMax: number, numClasses: number, ratio: number): number[] {
  if (!(Number.isInteger(nMax) && nMax > 0)) throw new RangeError(`nMax must be a positive integer, got ${nMax}`);
  if (!(Number.isInteger(numClasses) && numClasses > 0))
    throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  if (!(ratio >= 1 && Number.isFinite(ratio))) throw new RangeError(`imbalance ratio must be >= 1, got ${ratio}`);
  if (numClasses === 1) return [nMax];
  // The epsilon keeps exact products (6000 / 100 = 60) from flooring to 59 through rounding error.
  return Array.from({ length: numClasses }, (_, c) =>
    Math.max(1, Math.floor(nMax * Math.pow(ratio, -c / (numClasses - 1)) + 1e-9)),
  );
}

export interface LongTailOptions {
  ratio: number;
  seed: number;
  /** Size of the largest class (class 0); default: the smallest class size, so every class can supply its share. */
  nMax?: number;
}

export interface LongTailResult {
  dataset: Dataset;
  /** Images kept per class. */
  counts: number[];
  /** The kept images' indices in the source dataset, ascending. */
  indices: Int32Array;
}

/** A seeded long-tailed subset: within each class a seeded random choice, kept in dataset order. */
export function longTail(ds: Dataset, opts: LongTailOptions): LongTailResult {
  checkSeed(opts.seed);
  const byClass = indicesByClass(ds);
  const nMax = opts.nMax ?? Math.min(...byClass.map((l) => l.length));
  const counts = longTailCounts(nMax, ds.classes.length, opts.ratio);
  const kept: number[] = [];
  byClass.forEach((members, c) => {
    if (members.length < counts[c]) {
      throw new DataError(
        ds.name ?? 'dataset',
        `class ${c} (${ds.classes[c]}) has ${members.length} images, the long tail asks for ${counts[c]}`,
      );
    }
    const perm = permutation(members.length, new Rng([0x10c7a1, ...seedWords(opts.seed), c]));
    for (let k = 0; k < counts[c]; k++) kept.push(members[perm[k]]);
  });
  const indices = Int32Array.from(kept).sort();
  return { dataset: subset(ds, indices, `${ds.name ?? 'dataset'}@longtail${opts.ratio}`), counts, indices };
}
