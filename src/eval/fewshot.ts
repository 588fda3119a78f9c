// Few-shot evaluation on frozen features: n-way k-shot episodes drawn with a seeded generator, a
// nearest-centroid ("prototype") classifier on L2-normalised features (SimpleShot: the class mean
// of the support rows, queries go to the closest mean by Euclidean distance, or by cosine), and
// the mean accuracy over episodes ± 1.96·std/√episodes. Episodes are batched on the device.
import type { Backend } from '../backend/backend.js';
import { noGrad, ShapeError, tidy, type Tensor } from '../tensor/tensor.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { gatherRows } from '../tensor/ops/layout.js';
import { reshape } from '../tensor/ops/view.js';
import { mean, sumSquares, argmax } from '../tensor/ops/reduce.js';
import { matmul } from '../tensor/ops/matmul.js';
import { mul, sub } from '../tensor/ops/elementwise.js';
import { Rng } from '../data/rng.js';
import { asMatrix, meanCi95, positiveInt, type HostMatrix } from './common.js';

export interface EpisodeOptions {
  nWay?: number;
  kShot?: number;
  /** Query rows per class (default 15). */
  nQuery?: number;
  /** Default 600. */
  episodes?: number;
  seed?: number;
}

/** Row indices of one episode, class-major: support[c·kShot + s], query[c·nQuery + q] belong to classes[c]. */
export interface Episode {
  classes: Int32Array;
  support: Int32Array;
  query: Int32Array;
}

export interface FewShotOptions extends EpisodeOptions {
  /** Use these episodes instead of sampling (all must have the same nWay/kShot/nQuery). */
  episodeList?: Episode[];
  /** euclidean (default): argmin ‖q − c‖; cosine: argmax q·c/‖c‖. */
  metric?: 'euclidean' | 'cosine';
  /** Episodes per device batch (default 100). */
  chunkEpisodes?: number;
  backend?: Backend;
}

export interface FewShotResult {
  nWay: number;
  kShot: number;
  nQuery: number;
  episodes: number;
  /** Mean episode accuracy (fraction), population std over episodes and the 95% half-width. */
  accuracy: number;
  std: number;
  ci95: number;
  episodeAccuracy: Float64Array;
}

/** Picks `n` distinct entries of `pool` (partial Fisher–Yates on a copy). */
function pick(pool: readonly number[], n: number, rng: Rng): number[] {
  const a = [...pool];
  for (let t = 0; t < n; t++) {
    const j = t + rng.int(a.length - t);
    [a[t], a[j]] = [a[j], a[t]];
  }
  return a.slice(0, n);
}

/**
 * Episodes over the classes having at least kShot + nQuery rows; episode e draws from its own
 * stream keyed by (seed, e), so any episode can be regenerated alone.
 */
export function sampleEpisodes(labels: ArrayLike<number>, opts: EpisodeOptions = {}): Episode[] {
  const op = 'sampleEpisodes';
  const nWay = positiveInt(op, 'nWay', opts.nWay ?? 5);
  const kShot = positiveInt(op, 'kShot', opts.kShot ?? 1);
  const nQuery = positiveInt(op, 'nQuery', opts.nQuery ?? 15);
  const count = positiveInt(op, 'episodes', opts.episodes ?? 600);
  const seed = opts.seed ?? 0;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0) throw new ShapeError(op, `labels[${i}] = ${l} is not a class index`);
    let list = byClass.get(l);
    if (!list) byClass.set(l, (list = []));
    list.push(i);
  }
  const eligible = [...byClass.keys()].filter((c) => byClass.get(c)!.length >= kShot + nQuery).sort((a, b) => a - b);
  if (eligible.length < nWay) {
    throw new ShapeError(
      op,
      `${nWay}-way needs ${nWay} classes with ≥ ${kShot + nQuery} rows each, only ${eligible.length} have`,
    );
  }
  const out: Episode[] = [];
  for (let e = 0; e < count; e++) {
    const rng = new Rng([seed, e, 0xfe57]);
    const classes = pick(eligible, nWay, rng);
    const support = new Int32Array(nWay * kShot),
      query = new Int32Array(nWay * nQuery);
    classes.forEach((c, ci) => {
      const rows = pick(byClass.get(c)!, kShot + nQuery, rng);
      support.set(rows.slice(0, kShot), ci * kShot);
      query.set(rows.slice(kShot), ci * nQuery);
    });
    out.push({ classes: Int32Array.from(classes), support, query });
  }
  return out;
}

/** Nearest-centroid few-shot accuracy over episodes (sampled from `labels`, or given). */
export async function fewShotEval(
  features: Tensor | HostMatrix,
  labels: ArrayLike<number>,
  opts: FewShotOptions = {},
): Promise<FewShotResult> {
  const op = 'fewShotEval';
  const eps = opts.episodeList ?? sampleEpisodes(labels, opts);
  if (eps.length === 0) throw new ShapeError(op, 'no episodes');
  const nWay = eps[0].classes.length;
  const kShot = eps[0].support.length / nWay,
    nQuery = eps[0].query.length / nWay;
  const metric = opts.metric ?? 'euclidean';
  if (metric !== 'euclidean' && metric !== 'cosine') throw new ShapeError(op, `unknown metric '${metric}'`);
  const chunk = positiveInt(op, 'chunkEpisodes', opts.chunkEpisodes ?? 100);
  const { t: x, owned } = asMatrix(op, features, opts.backend);
  const [N, D] = x.shape;
  if (labels.length !== N) throw new ShapeError(op, `labels has ${labels.length} entries for ${N} feature rows`);
  for (const [e, ep] of eps.entries()) {
    if (
      ep.classes.length !== nWay ||
      ep.support.length !== nWay * kShot ||
      ep.query.length !== nWay * nQuery ||
      !Number.isInteger(kShot) ||
      kShot < 1 ||
      !Number.isInteger(nQuery) ||
      nQuery < 1
    ) {
      throw new ShapeError(
        op,
        `episode ${e} does not have the shape of episode 0 (${nWay}-way ${kShot}-shot, ${nQuery} queries)`,
      );
    }
    for (const i of [...ep.support, ...ep.query])
      if (!(i >= 0 && i < N)) throw new ShapeError(op, `episode ${e} uses row ${i}, outside [0, ${N})`);
    ep.classes.forEach((c, ci) => {
      const bad = [
        ...ep.support.subarray(ci * kShot, (ci + 1) * kShot),
        ...ep.query.subarray(ci * nQuery, (ci + 1) * nQuery),
      ].find((i) => labels[i] !== c);
      if (bad !== undefined)
        throw new ShapeError(op, `episode ${e}: row ${bad} has label ${labels[bad]}, not its class ${c}`);
    });
  }
  const xn = noGrad(() => l2Normalize(x, 1));
  const acc = new Float64Array(eps.length);
  const nq = nWay * nQuery;
  try {
    for (let e0 = 0; e0 < eps.length; e0 += chunk) {
      const E = Math.min(chunk, eps.length - e0);
      const sIdx = new Int32Array(E * nWay * kShot),
        qIdx = new Int32Array(E * nq);
      for (let e = 0; e < E; e++) {
        sIdx.set(eps[e0 + e].support, e * nWay * kShot);
        qIdx.set(eps[e0 + e].query, e * nq);
      }
      const pred = noGrad(() =>
        tidy(() => {
          const s = reshape(gatherRows(xn, sIdx), [E * nWay, kShot, D]);
          const cen = reshape(mean(s, 1), [E, nWay, D]);
          const c = metric === 'cosine' ? l2Normalize(cen, -1) : cen;
          const q = reshape(gatherRows(xn, qIdx), [E, nq, D]);
          const dots = matmul(q, c, { transB: true }); // [E, nq, nWay]
          // argmin ‖q − c‖² = argmax 2·q·c − ‖c‖² (‖q‖ is the same for every class).
          const score = metric === 'cosine' ? dots : sub(mul(dots, 2), reshape(sumSquares(c, 2), [E, 1, nWay]));
          return argmax(score, -1);
        }),
      );
      let p: Int32Array;
      try {
        p = (await pred.data()) as Int32Array;
      } finally {
        pred.dispose();
      }
      for (let e = 0; e < E; e++) {
        let right = 0;
        for (let r = 0; r < nq; r++) if (p[e * nq + r] === Math.floor(r / nQuery)) right++;
        acc[e0 + e] = right / nq;
      }
    }
  } finally {
    xn.dispose();
    if (owned) x.dispose();
  }
  const { mean: m, std, ci95 } = meanCi95(acc);
  return { nWay, kShot, nQuery, episodes: eps.length, accuracy: m, std, ci95, episodeAccuracy: acc };
}
