import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import * as pd from '../../src/tensor/index.js';
import { countUniquePrototypes, type UniqueGroups } from '../../src/eval/index.js';
import { conformance } from '../helpers/backends.js';
import { rng } from '../helpers/check.js';
import { evalBackends, rejects } from './helpers.js';

const EPS = 0.025;
const D = 8;

/** Unit vector in the plane (e_a, e_b) at chord distance `chord` from e_a. */
function rot(a: number, b: number, chord: number, scale = 1): number[] {
  const th = 2 * Math.asin(chord / 2);
  const v = new Array<number>(D).fill(0);
  v[a] = Math.cos(th) * scale;
  v[b] = Math.sin(th) * scale;
  return v;
}

/**
 * 16 prototypes with known groups at ε = 0.025 (distances after normalisation):
 * exact duplicates (0 = e0, 1 = 3·e0), near duplicates ε/3 away (3 near 0, 5 near 2), lone basis
 * vectors, and two chains with steps of 0.7ε (so the two ends lie ≈ 1.4ε apart): 6–7–8 listed from
 * one end, and 9–10–11 listed middle first.
 */
const HAND: number[][] = [
  rot(0, 2, 0),
  rot(0, 2, 0, 3),
  rot(1, 3, 0),
  rot(0, 2, EPS / 3),
  rot(3, 1, 0),
  rot(1, 3, EPS / 3),
  rot(4, 5, 0),
  rot(4, 5, 0.7 * EPS),
  rot(4, 5, 2 * Math.sin(2 * Math.asin(0.35 * EPS))),
  rot(6, 7, 0.7 * EPS),
  rot(6, 7, 0),
  rot(6, 7, 2 * Math.sin(2 * Math.asin(0.35 * EPS))),
  rot(0, 1, 0, -1),
  rot(7, 6, 0),
  rot(2, 0, 0),
  rot(5, 4, 0),
];

function groups(g: UniqueGroups | undefined, sizes: number[], reps: number[], what: string): void {
  assert.ok(g, `${what}: present`);
  assert.is(g!.unique, sizes.length, `${what}: unique count`);
  assert.equal(Array.from(g!.groupSizes), sizes, `${what}: group sizes`);
  assert.equal(Array.from(g!.representatives), reps, `${what}: representatives`);
}

/** Naive float64 reference over all pairs (test only): greedy and union-find component sizes. */
function naive(x: Float32Array, k: number, d: number, eps: number) {
  const u = new Float64Array(k * d);
  for (let i = 0; i < k; i++) {
    let s = 0;
    for (let l = 0; l < d; l++) s += x[i * d + l] ** 2;
    const n = Math.sqrt(s);
    for (let l = 0; l < d; l++) u[i * d + l] = x[i * d + l] / n;
  }
  // ‖u_i − u_j‖² = 2 − 2·u_i·u_j for unit rows.
  const dist2 = (i: number, j: number) => {
    let s = 0;
    for (let l = 0, a = i * d, b = j * d; l < d; l++) s += u[a + l] * u[b + l];
    return 2 - 2 * s;
  };
  const e2 = eps * eps;
  const kept: number[] = [];
  const size = new Map<number, number>();
  for (let i = 0; i < k; i++) {
    let best = -1,
      bestD = Infinity;
    for (const j of kept) {
      const dd = dist2(i, j);
      if (dd < e2 && dd < bestD) [best, bestD] = [j, dd];
    }
    if (best < 0) {
      kept.push(i);
      size.set(i, 1);
    } else size.set(best, size.get(best)! + 1);
  }
  const parent = Int32Array.from({ length: k }, (_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) if (dist2(i, j) < e2) parent[find(i)] = find(j);
  const comp = new Map<number, number>();
  for (let i = 0; i < k; i++) comp.set(find(i), (comp.get(find(i)) ?? 0) + 1);
  const desc = (a: number[]) => a.sort((p, q) => q - p);
  return { greedy: desc([...size.values()]), components: desc([...comp.values()]) };
}

/**
 * K = 8192 prototypes of D = 64: 1200 random directions each repeated (exact copies at random
 * scales and noisy copies ≈ 0.004–0.006 away), and chains of 8 points 0.6ε / 0.8ε apart in random
 * order;
 * the rows are shuffled so groups straddle blocks.
 */
function largeCase(k: number, d: number): Float32Array {
  const nBases = 1200,
    nChains = 149;
  const r = rng(77);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const unit = () => {
    const v = Array.from({ length: d }, gauss);
    const n = Math.hypot(...v);
    return v.map((a) => a / n);
  };
  const rows: number[][] = [];
  const bases = Array.from({ length: nBases }, unit);
  while (rows.length < k - 8 * nChains) {
    const i = rows.length,
      b = bases[(i * 7919) % bases.length];
    const noise = [0, 0, 0.004, 0.006][i % 4];
    const scale = 0.5 + 1.5 * r();
    rows.push(b.map((a) => scale * (a + (noise * gauss()) / Math.sqrt(d))));
  }
  // Steps alternate 0.6ε and 0.8ε so that no greedy assignment is a tie between two kept points.
  const step = [2 * Math.asin(0.3 * EPS), 2 * Math.asin(0.4 * EPS)];
  const angle = (t: number) => Math.floor(t / 2) * (step[0] + step[1]) + (t % 2) * step[0];
  for (let c = 0; c < nChains; c++) {
    const a = unit(),
      w = unit();
    const dot = a.reduce((s, v, l) => s + v * w[l], 0);
    const o = w.map((v, l) => v - dot * a[l]);
    const on = Math.hypot(...o);
    const order = [0, 1, 2, 3, 4, 5, 6, 7].sort(() => r() - 0.5);
    for (const t of order) rows.push(a.map((v, l) => Math.cos(angle(t)) * v + (Math.sin(angle(t)) * o[l]) / on));
  }
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  return Float32Array.from(rows.flat());
}

/** Sizes as "size×count" pairs: a readable fingerprint of thousands of groups. */
function tally(sizes: ArrayLike<number>): string {
  const m = new Map<number, number>();
  for (let i = 0; i < sizes.length; i++) m.set(sizes[i], (m.get(sizes[i]) ?? 0) + 1);
  return [...m]
    .sort((a, b) => b[0] - a[0])
    .map(([s, c]) => `${s}×${c}`)
    .join(' ');
}

let largeRef: { x: Float32Array; ref: ReturnType<typeof naive> } | undefined;
const LK = 8192,
  LD = 64;

async function hand(be: Backend) {
  const x = pd.tensor(HAND.flat(), [HAND.length, D], be);
  try {
    return await countUniquePrototypes(x, { eps: [EPS, EPS / 2] });
  } finally {
    x.dispose();
  }
}

conformance(
  'eval/unique',
  (test, be) => {
    test('hand-built groups: exact and near duplicates, chains where greedy and components differ', async () => {
      const live = be().memory().liveBuffers;
      const r = await hand(be());
      assert.is(be().memory().liveBuffers, live, 'no storage left behind');
      assert.is(r.prototypes, 16);
      assert.is(r.perEps.length, 2);
      const [a, b] = r.perEps;
      assert.is(a.eps, EPS);
      assert.ok(Math.abs(a.cosineThreshold - (1 - (EPS * EPS) / 2)) < 1e-15);
      // greedy keeps 0 (with 1, 3), 2 (with 5), 4, 6 (with 7), 8 (1.4ε from kept 6), 9 (with 10, 11), 12–15
      groups(a.greedy, [3, 3, 2, 2, 1, 1, 1, 1, 1, 1], [0, 9, 2, 6, 4, 8, 12, 13, 14, 15], 'ε greedy');
      // components join the chain 6–7–8 as well
      groups(a.components, [3, 3, 3, 2, 1, 1, 1, 1, 1], [0, 6, 9, 2, 4, 12, 13, 14, 15], 'ε components');
      // at ε/2 the 0.7ε chain steps are too long; the ε/3 near duplicates still join
      const ones = (n: number) => new Array<number>(n).fill(1);
      const rest = [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
      groups(b.greedy, [3, 2, ...ones(11)], [0, 2, ...rest], 'ε/2 greedy');
      groups(b.components, [3, 2, ...ones(11)], [0, 2, ...rest], 'ε/2 components');
      assert.is(r.tiling.candidates, 11, 'only prototypes with a neighbour within ε are compared pairwise');
    });

    test("labels: each prototype's group, indexing groupSizes and representatives", async () => {
      const host = { data: Float32Array.from(HAND.flat()), shape: [16, D] as const };
      const r = await countUniquePrototypes(host, { eps: [EPS, EPS / 2], labels: true, backend: be() });
      const [a, b] = r.perEps;
      // greedy reps 0, 9, 2, 6, 4, 8, 12–15 and component reps 0, 6, 9, 2, 4, 12–15 (the test above)
      assert.equal(Array.from(a.greedy!.labels!), [0, 0, 2, 0, 4, 2, 3, 3, 5, 1, 1, 1, 6, 7, 8, 9]);
      assert.equal(Array.from(a.components!.labels!), [0, 0, 3, 0, 4, 3, 1, 1, 1, 2, 2, 2, 5, 6, 7, 8]);
      for (const g of [a.greedy!, a.components!, b.greedy!, b.components!]) {
        const counts = new Array<number>(g.unique).fill(0);
        for (const l of g.labels!) counts[l]++;
        assert.equal(counts, Array.from(g.groupSizes));
        g.representatives.forEach((rep, i) => assert.is(g.labels![rep], i));
      }
      const tiled = await countUniquePrototypes(host, { eps: EPS, labels: true, maxTileElements: 9, backend: be() });
      assert.equal(tiled.perEps[0], a, 'the same labels in 3 × 3 tiles');
      const plain = await countUniquePrototypes(host, { eps: EPS, backend: be() });
      assert.is(plain.perEps[0].greedy!.labels, undefined, 'labels only when asked for');
    });

    test('norms, nearest-neighbour cosines and their histogram', async () => {
      const r = await hand(be());
      const norms = HAND.map((v) => Math.hypot(...v));
      for (let i = 0; i < 16; i++)
        assert.ok(Math.abs(r.norms[i] - norms[i]) < 1e-6, `norm ${i}: ${r.norms[i]} vs ${norms[i]}`);
      assert.ok(Math.abs(r.norms[1] - 3) < 1e-6);
      const u = HAND.map((v) => v.map((a) => a / Math.hypot(...v)));
      for (let i = 0; i < 16; i++) {
        let best = -Infinity;
        for (let j = 0; j < 16; j++)
          if (j !== i)
            best = Math.max(
              best,
              u[i].reduce((s, a, l) => s + a * u[j][l], 0),
            );
        assert.ok(
          Math.abs(r.nearest.cosine[i] - best) < 1e-6,
          `nearest cosine ${i}: ${r.nearest.cosine[i]} vs ${best}`,
        );
        const j = r.nearest.index[i];
        assert.ok(j !== i && j >= 0 && j < 16, `nearest index ${i}`);
      }
      assert.is(r.nearest.edges.length, 41);
      assert.is(r.nearest.edges[0], -1);
      assert.is(r.nearest.edges[40], 1);
      assert.is(
        r.nearest.counts.reduce((s, c) => s + c, 0),
        16,
      );
      const expect = new Array<number>(40).fill(0);
      for (const c of r.nearest.cosine) expect[Math.min(39, Math.floor(((c + 1) / 2) * 40))]++;
      assert.equal(Array.from(r.nearest.counts), expect);
      // 0/1/3, 2/5 and the two chains have a neighbour above 0.95; the five lone vectors do not
      assert.is(r.nearest.counts[39], 11);
    });

    test('one rule at a time, host input, tiny tiles, tiny sets', async () => {
      const full = await hand(be());
      const host = { data: Float32Array.from(HAND.flat()), shape: [16, D] as const };
      const g = await countUniquePrototypes(host, { eps: EPS, rule: 'greedy', backend: be() });
      assert.is(g.perEps[0].components, undefined);
      assert.equal(g.perEps[0].greedy, full.perEps[0].greedy);
      const c = await countUniquePrototypes(host, { eps: EPS, rule: 'components', backend: be() });
      assert.is(c.perEps[0].greedy, undefined);
      assert.equal(c.perEps[0].components, full.perEps[0].components);
      // 3-row blocks against 3-column chunks: many tiles, chunks that split blocks' prefixes
      const t = await countUniquePrototypes(host, { eps: [EPS, EPS / 2], maxTileElements: 9, backend: be() });
      assert.is(t.tiling.blockRows, 3);
      assert.is(t.tiling.blockCols, 3);
      assert.is(t.tiling.maxTileElements, 9);
      // 11 candidates in blocks ending at 3, 6, 9, 11: 1 + 2 + 3 + 4 column chunks
      assert.is(t.tiling.tiles, 10);
      assert.equal(t.perEps, full.perEps);
      const one = await countUniquePrototypes({ data: new Float32Array([1, 2]), shape: [1, 2] }, { backend: be() });
      assert.is(one.perEps[0].greedy!.unique, 1);
      assert.is(one.perEps[0].components!.unique, 1);
      assert.is(
        one.nearest.counts.reduce((s, v) => s + v, 0),
        0,
        'a lone prototype has no neighbour',
      );
      const two = await countUniquePrototypes(
        { data: new Float32Array([1, 2, 2, 4]), shape: [2, 2] },
        { backend: be() },
      );
      assert.equal(Array.from(two.perEps[0].greedy!.groupSizes), [2]);
      assert.equal(Array.from(two.perEps[0].components!.groupSizes), [2]);
      await rejects(countUniquePrototypes(host, { eps: -1, backend: be() }), /eps/);
      await rejects(countUniquePrototypes(host, {}), /backend/);
      await rejects(
        countUniquePrototypes({ data: new Float32Array(0), shape: [0, 4] }, { backend: be() }),
        /at least one/,
      );
    });

    test('K = 8192, D = 64 in bounded tiles matches a naive float64 count', async () => {
      largeRef ??= (() => {
        const x = largeCase(LK, LD);
        return { x, ref: naive(x, LK, LD, EPS) };
      })();
      const { x, ref } = largeRef;
      assert.ok(ref.greedy.length !== ref.components.length, 'the case separates the two rules');
      const t = pd.tensor(x, [LK, LD], be());
      const limit = 1 << 18;
      let r;
      try {
        r = await countUniquePrototypes(t, { eps: EPS, maxTileElements: limit });
      } finally {
        t.dispose();
      }
      assert.is(r.tiling.blockRows, 256);
      assert.is(r.tiling.blockCols, 1024);
      assert.ok(
        r.tiling.maxTileElements <= limit,
        `largest tile ${r.tiling.maxTileElements} elements (K² = ${LK * LK})`,
      );
      assert.ok(r.tiling.tiles >= LK / 256, `${r.tiling.tiles} tiles`);
      const single = ref.components.filter((s) => s === 1).length;
      assert.is(r.tiling.candidates, LK - single, 'candidates: the prototypes in groups of two or more');
      assert.is(tally(r.perEps[0].greedy!.groupSizes), tally(ref.greedy), 'greedy group sizes (size×count)');
      assert.is(tally(r.perEps[0].components!.groupSizes), tally(ref.components), 'component sizes (size×count)');
    });
  },
  evalBackends(),
);
