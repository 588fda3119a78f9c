// Unique-prototype counting, the partial-prototype-collapse measurement of Govindarajan et al.
// (arXiv 2410.14060): after L2 normalisation two prototypes are "the same" when their Euclidean
// distance is below ε, i.e. their cosine exceeds 1 − ε²/2. With metric 'cosine' ε is 1 − cosine
// instead (the cosine exceeds 1 − ε): the convention some papers' thresholds are written in.
//
// Never K × K, on the device or the host. One nearestNeighbor pass (blocked in the kernel) gives
// every prototype's closest other one: a prototype whose neighbour is farther than the largest ε
// pairs with nothing and is its own group under both rules, so only the remaining "candidates" are
// compared pairwise, in row blocks × column chunks of at most maxTileElements similarities read
// back one tile at a time. Only the lower triangle (j < i) is needed: both rules look at each pair
// once, and the greedy rule decides row i from the rows before it.
import type { Backend } from '../backend/backend.js';
import { noGrad, ShapeError, type Tensor } from '../tensor/tensor.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { nearestNeighbor } from '../tensor/ops/neighbours.js';
import { gatherRows, slice } from '../tensor/ops/layout.js';
import { matmul } from '../tensor/ops/matmul.js';
import { sumSquares } from '../tensor/ops/reduce.js';
import { sqrt } from '../tensor/ops/elementwise.js';
import { asMatrix, positiveInt, type HostMatrix } from './common.js';

export type UniqueRule = 'greedy' | 'components' | 'both';
/** What ε measures: Euclidean distance between unit prototypes (the paper's), or 1 − cosine. */
export type EpsMetric = 'euclidean' | 'cosine';
export const EPS_METRICS: readonly EpsMetric[] = ['euclidean', 'cosine'];
/** The ε values reports and the experiment grid sweep, from the paper's 0.025 to a loose 0.5. */
export const SWEEP_EPS: readonly number[] = [0.025, 0.05, 0.1, 0.25, 0.5];

/** The cosine above which two prototypes are the same at ε under `metric`. */
export function cosineThreshold(eps: number, metric: EpsMetric = 'euclidean'): number {
  return metric === 'cosine' ? 1 - eps : 1 - (eps * eps) / 2;
}

export interface UniquePrototypesOptions {
  /**
   * Threshold(s) on the Euclidean distance between the L2-normalised (unit) prototypes, not on a
   * cosine: ‖a − b‖ < ε ⇔ cos(a, b) > 1 − ε²/2, a cosine gap of ε²/2 (ε = 0.025, the paper's
   * default, is a cosine above 0.9996875; ε = 0.1 one above 0.995).
   */
  eps?: number | number[];
  /** What ε measures (default euclidean). */
  metric?: EpsMetric;
  /** greedy: scan in index order, keep a prototype ε-far from every kept one; components: the
   *  connected components of the "closer than ε" graph (single linkage). Default both. */
  rule?: UniqueRule;
  /** Needed when the prototypes are a host matrix. */
  backend?: Backend;
  /** Bins of the nearest-neighbour cosine histogram, equal width over [-1, 1] (default 40). */
  bins?: number;
  /** Largest similarity tile computed and read back at once (default 2^22, 16 MiB of f32). */
  maxTileElements?: number;
  /** Rows per block (default 256, lowered to fit maxTileElements). */
  blockRows?: number;
  /** Also return each prototype's group (UniqueGroups.labels); default false. */
  labels?: boolean;
}

/** Groups under one rule: each unique prototype and how many prototypes it stands for. */
export interface UniqueGroups {
  unique: number;
  /** Group sizes, descending (ties by representative index); they sum to K. */
  groupSizes: Int32Array;
  /** The prototype standing for each group, in the order of groupSizes: the kept prototype
   *  (greedy) or the component's lowest index (components). */
  representatives: Int32Array;
  /**
   * With { labels: true }: for each of the K prototypes, the index of its group in groupSizes /
   * representatives (so labels[representatives[g]] === g).
   */
  labels?: Int32Array;
}

export interface UniqueAtEps {
  eps: number;
  /** 1 − ε²/2 (euclidean) or 1 − ε (cosine): pairs with a larger cosine are the same prototype. */
  cosineThreshold: number;
  /** Each non-kept prototype joins the group of its most similar earlier kept one. */
  greedy?: UniqueGroups;
  components?: UniqueGroups;
}

export interface UniquePrototypesResult {
  prototypes: number;
  dim: number;
  /** What the ε of perEps measure. */
  metric: EpsMetric;
  perEps: UniqueAtEps[];
  /** L2 norms of the raw rows, before normalisation. */
  norms: Float32Array;
  /** Cosine of each prototype to its nearest other one (nearestNeighbor, self excluded). */
  nearest: {
    cosine: Float32Array;
    index: Int32Array;
    /** bins + 1 edges over [-1, 1]; bin b is [edges[b], edges[b+1]), the last one closed. */
    edges: Float64Array;
    counts: Int32Array;
  };
  /** How the pairwise pass was cut up (no tile ever exceeds maxTileElements). */
  tiling: { candidates: number; blockRows: number; blockCols: number; tiles: number; maxTileElements: number };
}

/** Slack on the candidate filter: the neighbour search and the tiles may round differently. */
const CANDIDATE_MARGIN = 1e-4;

interface EpsState {
  thr: number;
  kept: Uint8Array | null;
  /** Best kept earlier neighbour per row of the current block (greedy). */
  bestSim: Float32Array | null;
  bestIdx: Int32Array | null;
  assign: Int32Array | null;
  parent: Int32Array | null;
  size: Int32Array | null;
}

function find(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

function union(parent: Int32Array, size: Int32Array, a: number, b: number): void {
  let ra = find(parent, a),
    rb = find(parent, b);
  if (ra === rb) return;
  if (size[ra] < size[rb]) [ra, rb] = [rb, ra];
  parent[rb] = ra;
  size[ra] += size[rb];
}

/**
 * Sizes descending, representatives ascending among equal sizes. repOf: each prototype's
 * representative, when labels are asked for.
 */
function sortedGroups(reps: number[], sizes: number[], repOf: Int32Array | null): UniqueGroups {
  const order = reps.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a] || reps[a] - reps[b]);
  const out: UniqueGroups = {
    unique: reps.length,
    groupSizes: Int32Array.from(order, (i) => sizes[i]),
    representatives: Int32Array.from(order, (i) => reps[i]),
  };
  if (repOf) {
    const groupOfRep = new Map<number, number>();
    out.representatives.forEach((r, g) => groupOfRep.set(r, g));
    out.labels = Int32Array.from(repOf, (r) => groupOfRep.get(r)!);
  }
  return out;
}

function histogram(values: Float32Array, bins: number): { edges: Float64Array; counts: Int32Array } {
  const edges = Float64Array.from({ length: bins + 1 }, (_, b) => -1 + (2 * b) / bins);
  const counts = new Int32Array(bins);
  for (const v of values) {
    if (!Number.isFinite(v)) continue; // a single prototype has no neighbour
    counts[Math.min(bins - 1, Math.max(0, Math.floor(((v + 1) / 2) * bins)))]++;
  }
  return { edges, counts };
}

/**
 * Counts unique prototypes of a [K, D] matrix (a DINO head's last layer, weight-normalised or
 * not) at one or more ε, under the greedy and/or connected-components rule, plus the raw row
 * norms and the nearest-neighbour cosine histogram. Memory is O(K·D + maxTileElements).
 * ε is a Euclidean distance between the prototypes scaled to unit length, not a cosine: two are
 * the same when ‖a/‖a‖ − b/‖b‖‖ < ε, i.e. when their cosine exceeds 1 − ε²/2 (a gap of ε²/2).
 * With { labels: true } each rule's groups also give every prototype's group index.
 * Cosines are float32, so a pair decides reliably when |d² − ε²| ≫ 1e-6·√D: fine for the
 * paper's ε = 0.025 at D = 256, not for ε much below 1e-2. A zero row is unique (cosine 0).
 */
export async function countUniquePrototypes(
  prototypes: Tensor | HostMatrix,
  opts: UniquePrototypesOptions = {},
): Promise<UniquePrototypesResult> {
  const op = 'countUniquePrototypes';
  const epsList = Array.isArray(opts.eps) ? [...opts.eps] : [opts.eps ?? 0.025];
  if (epsList.length === 0) throw new ShapeError(op, 'eps is an empty list');
  for (const e of epsList)
    if (!(e > 0 && Number.isFinite(e))) throw new ShapeError(op, `eps must be positive and finite, got ${e}`);
  const metric = opts.metric ?? 'euclidean';
  if (!EPS_METRICS.includes(metric)) throw new ShapeError(op, `unknown eps metric '${metric}'`);
  const rule = opts.rule ?? 'both';
  if (!['greedy', 'components', 'both'].includes(rule)) throw new ShapeError(op, `unknown rule '${rule}'`);
  const bins = positiveInt(op, 'bins', opts.bins ?? 40);
  const maxTile = positiveInt(op, 'maxTileElements', opts.maxTileElements ?? 1 << 22);
  const { t: raw, owned } = asMatrix(op, prototypes, opts.backend);
  const [K, D] = raw.shape;
  if (K === 0) {
    if (owned) raw.dispose();
    throw new ShapeError(op, 'needs at least one prototype');
  }
  const wantLabels = opts.labels === true;
  const doGreedy = rule !== 'components',
    doComp = rule !== 'greedy';
  const toFree: Tensor[] = owned ? [raw] : [];
  try {
    const { x, nn, normT } = noGrad(() => {
      const ss = sumSquares(raw, 1);
      const n = sqrt(ss);
      ss.dispose();
      const xn = l2Normalize(raw, 1);
      return { x: xn, nn: nearestNeighbor(xn, undefined, { excludeSelf: true }), normT: n };
    });
    toFree.push(x, normT, nn.values, nn.indices);
    const norms = (await normT.data()) as Float32Array;
    const nnCos = (await nn.values.data()) as Float32Array;
    const nnIdx = (await nn.indices.data()) as Int32Array;

    const states: EpsState[] = epsList.map((e) => ({
      thr: cosineThreshold(e, metric),
      kept: null,
      bestSim: null,
      bestIdx: null,
      assign: null,
      parent: null,
      size: null,
    }));
    const thrMin = Math.min(...states.map((s) => s.thr));
    const candList: number[] = [];
    for (let i = 0; i < K; i++) if (nnCos[i] > thrMin - CANDIDATE_MARGIN) candList.push(i);
    const cand = Int32Array.from(candList);
    const Kc = cand.length;
    const B = Math.max(
      1,
      Math.min(
        opts.blockRows === undefined ? 256 : positiveInt(op, 'blockRows', opts.blockRows),
        Math.floor(Math.sqrt(maxTile)),
      ),
    );
    const C = Math.max(B, Math.floor(maxTile / B));
    const tiling = { candidates: Kc, blockRows: B, blockCols: C, tiles: 0, maxTileElements: 0 };

    for (const s of states) {
      if (doGreedy) {
        s.kept = new Uint8Array(Kc);
        s.bestSim = new Float32Array(B);
        s.bestIdx = new Int32Array(B);
        s.assign = new Int32Array(Kc).fill(-1);
      }
      if (doComp) {
        s.parent = Int32Array.from({ length: Kc }, (_, i) => i);
        s.size = new Int32Array(Kc).fill(1);
      }
    }

    // Pair (row r of the block = candidate i, candidate j < i) with cosine c ≥ thrMin.
    const pair = (r: number, i: number, j: number, c: number) => {
      for (const s of states) {
        if (!(c > s.thr)) continue;
        if (s.parent) union(s.parent, s.size!, i, j);
        if (s.kept && s.kept[j] && c > s.bestSim![r]) {
          s.bestSim![r] = c;
          s.bestIdx![r] = j;
        }
      }
    };

    if (Kc > 0) {
      const xc = noGrad(() => gatherRows(x, cand));
      toFree.push(xc);
      for (let b0 = 0; b0 < Kc; b0 += B) {
        const b1 = Math.min(Kc, b0 + B),
          rows = b1 - b0;
        for (const s of states) {
          if (s.bestSim) {
            s.bestSim.fill(-Infinity);
            s.bestIdx!.fill(-1);
          }
        }
        const xr = noGrad(() => slice(xc, [b0, 0], [rows, D]));
        try {
          // Column chunks of [0, b1); the last one holds the diagonal block and is scanned row by
          // row so that the greedy decisions of earlier rows in this block are known in time.
          const lastStart = Math.max(0, b1 - C);
          const starts: number[] = [];
          for (let c0 = 0; c0 < lastStart; c0 += C) starts.push(c0);
          starts.push(lastStart);
          for (let ci = 0; ci < starts.length; ci++) {
            const c0 = starts[ci],
              c1 = ci + 1 < starts.length ? starts[ci + 1] : b1,
              cols = c1 - c0;
            const tileT = noGrad(() => {
              const xcol = slice(xc, [c0, 0], [cols, D]);
              const m = matmul(xr, xcol, { transB: true });
              xcol.dispose();
              return m;
            });
            tiling.tiles++;
            tiling.maxTileElements = Math.max(tiling.maxTileElements, rows * cols);
            let tile: Float32Array;
            try {
              tile = (await tileT.data()) as Float32Array;
            } finally {
              tileT.dispose();
            }
            const last = ci === starts.length - 1;
            for (let r = 0; r < rows; r++) {
              const i = b0 + r,
                off = r * cols;
              const end = last ? i - c0 : cols;
              for (let jj = 0; jj < end; jj++) {
                const c = tile[off + jj];
                if (c > thrMin) pair(r, i, c0 + jj, c);
              }
              if (!last) continue;
              for (const s of states) {
                if (!s.kept) continue;
                if (s.bestIdx![r] < 0) s.kept[i] = 1;
                else s.assign![i] = s.bestIdx![r];
              }
            }
          }
        } finally {
          xr.dispose();
        }
      }
    }

    const isCand = new Uint8Array(K);
    for (const i of cand) isCand[i] = 1;
    const singles: number[] = [];
    for (let i = 0; i < K; i++) if (!isCand[i]) singles.push(i);
    const perEps: UniqueAtEps[] = states.map((s, e) => {
      const out: UniqueAtEps = { eps: epsList[e], cosineThreshold: s.thr };
      if (s.kept) {
        const sizes = new Int32Array(Kc);
        for (let i = 0; i < Kc; i++) sizes[s.kept[i] ? i : s.assign![i]]++;
        const reps = [...singles],
          sz = singles.map(() => 1);
        for (let i = 0; i < Kc; i++)
          if (s.kept[i]) {
            reps.push(cand[i]);
            sz.push(sizes[i]);
          }
        let repOf: Int32Array | null = null;
        if (wantLabels) {
          repOf = Int32Array.from({ length: K }, (_, i) => i); // non-candidates stand alone
          for (let i = 0; i < Kc; i++) repOf[cand[i]] = cand[s.kept[i] ? i : s.assign![i]];
        }
        out.greedy = sortedGroups(reps, sz, repOf);
      }
      if (s.parent) {
        const lowest = new Int32Array(Kc).fill(-1);
        for (let i = 0; i < Kc; i++) {
          const root = find(s.parent, i);
          if (lowest[root] < 0) lowest[root] = i;
        }
        const reps = [...singles],
          sz = singles.map(() => 1);
        for (let i = 0; i < Kc; i++)
          if (s.parent[i] === i) {
            reps.push(cand[lowest[i]]);
            sz.push(s.size![i]);
          }
        let repOf: Int32Array | null = null;
        if (wantLabels) {
          repOf = Int32Array.from({ length: K }, (_, i) => i);
          for (let i = 0; i < Kc; i++) repOf[cand[i]] = cand[lowest[find(s.parent, i)]];
        }
        out.components = sortedGroups(reps, sz, repOf);
      }
      return out;
    });
    return {
      prototypes: K,
      dim: D,
      metric,
      perEps,
      norms: Float32Array.from(norms),
      nearest: { cosine: Float32Array.from(nnCos), index: Int32Array.from(nnIdx), ...histogram(nnCos, bins) },
      tiling,
    };
  } finally {
    for (const t of toFree) t.dispose();
  }
}
