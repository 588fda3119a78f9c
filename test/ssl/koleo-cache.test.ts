// KoLeo-proto's candidate cache (src/ssl/koleo-cache.ts) on every backend: refresh steps are the
// exact loss bit for bit, steps in between search the cached candidates (checked against a float64
// reference, value and finite-difference gradient), the refresh's staleness measurements, and the
// save/load round trip that resume relies on.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULTS, parseTrainArgs } from '../../src/train/config.js';
import { conformance } from '../helpers/backends.js';
import { gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { noGrad, tidy } from '../../src/tensor/index.js';
import { koleoProtoLoss } from '../../src/ssl/regularizers.js';
import { KoleoProtoCache } from '../../src/ssl/koleo-cache.js';
import { leakFree } from './fixtures.js';

const EPS = 1e-8;

function normalised(x: ArrayLike<number>, k: number, d: number): Float64Array {
  const out = new Float64Array(k * d);
  for (let i = 0; i < k; i++) {
    let s = 0;
    for (let l = 0; l < d; l++) s += x[i * d + l] ** 2;
    const n = Math.max(Math.sqrt(s), EPS);
    for (let l = 0; l < d; l++) out[i * d + l] = x[i * d + l] / n;
  }
  return out;
}

/** KoLeo over x [k, d] with each row's neighbour the best of its candidates (float64). */
function cachedKoleoRef(x: ArrayLike<number>, cand: number[], k: number, d: number, m: number): number {
  const xn = normalised(x, k, d);
  let total = 0;
  for (let i = 0; i < k; i++) {
    let best = -1,
      bv = -Infinity;
    for (const j of cand.slice(i * m, i * m + m)) {
      if (j < 0) continue;
      let s = 0;
      for (let l = 0; l < d; l++) s += xn[i * d + l] * xn[j * d + l];
      if (s > bv || (s === bv && j < best)) {
        bv = s;
        best = j;
      }
    }
    let ss = 0;
    for (let l = 0; l < d; l++) ss += (xn[i * d + l] - xn[best * d + l] + EPS) ** 2;
    total += Math.log(Math.sqrt(ss) + EPS);
  }
  return -total / k;
}

conformance('ssl: KoLeo-proto candidate cache', (test, be) => {
  test(
    'refresh steps equal the exact loss; cached steps search the candidates; stats at the next refresh',
    leakFree(async () => {
      const [K, D, m] = [45, 7, 3];
      const data = Float32Array.from(randArray(K * D, 3));
      const w = pd.tensor(data, [K, D], be());
      const cache = new KoleoProtoCache(3, m);
      const exact = tidy(() => noGrad(() => koleoProtoLoss(w)));
      const at0 = tidy(() => noGrad(() => koleoProtoLoss(w, EPS, { cache, step: 0 })));
      assert.is(await at0.item(), await exact.item(), 'refresh step: the exact loss, bit for bit');
      assert.is(cache.builtAt, 0);
      const cand = await read(cache.candidates!);
      assert.equal(cache.candidates!.shape, [K, m]);
      // Unchanged prototypes: every true neighbour is a candidate, so the cached step is exact too.
      const at1 = tidy(() => noGrad(() => koleoProtoLoss(w, EPS, { cache, step: 1 })));
      assert.is(await at1.item(), await exact.item(), 'cached step with unchanged prototypes');
      // Moved prototypes: the cached step uses the old candidates.
      const moved = Float32Array.from(data, (v, e) => v + 0.4 * Math.sin(e * 1.7));
      const w2 = pd.tensor(moved, [K, D], be());
      const at2 = tidy(() => noGrad(() => koleoProtoLoss(w2, EPS, { cache, step: 2 })));
      assert.ok(
        Math.abs((await at2.item()) - cachedKoleoRef(moved, cand, K, D, m)) < 1e-5,
        'cached step vs the float64 reference',
      );
      assert.is(await cache.takeStats(), null, 'no refresh since the first, no stats');
      const at3 = tidy(() => noGrad(() => koleoProtoLoss(w2, EPS, { cache, step: 3 })));
      const exact2 = tidy(() => noGrad(() => koleoProtoLoss(w2)));
      assert.is(await at3.item(), await exact2.item(), 'second refresh: exact');
      const stats = (await cache.takeStats())!;
      assert.ok(stats, 'the refresh measured the old candidates');
      assert.is(stats.step, 3);
      assert.is(stats.builtAt, 0);
      assert.is(stats.koleoExact, await exact2.item());
      assert.ok(
        Math.abs(stats.koleoCached - (await at2.item())) < 1e-6,
        "the stale candidates give the cached step's value",
      );
      // The share the float64 reference finds, up to near-ties.
      const w2n = pd.l2Normalize(w2, -1, EPS);
      const ex = pd.nearestNeighbor(w2n);
      const exIdx = await read(ex.indices);
      const xn = normalised(moved, K, D);
      let same = 0;
      for (let i = 0; i < K; i++) {
        let best = -1,
          bv = -Infinity;
        for (const j of cand.slice(i * m, i * m + m)) {
          let s = 0;
          for (let l = 0; l < D; l++) s += xn[i * D + l] * xn[j * D + l];
          if (s > bv) {
            bv = s;
            best = j;
          }
        }
        if (best === exIdx[i]) same++;
      }
      assert.ok(Math.abs(stats.agree - same / K) <= 2 / K, `agreement ${stats.agree} vs ${same / K}`);
      assert.ok(stats.agree < 1 && stats.agree > 0, `the moved prototypes make some candidates stale (${stats.agree})`);
      assert.is(await cache.takeStats(), null, 'stats are taken once');

      // Round trip through host state, as a checkpoint does.
      const saved = (await cache.hostState())!;
      const again = new KoleoProtoCache(3, m);
      again.load(saved, be());
      assert.is(again.builtAt, 3);
      assert.equal(await read(again.candidates!), await read(cache.candidates!));
      assert.throws(
        () => again.load({ ...saved, data: saved.data.map(() => K) }, be()),
        /not a prototype index below 45/,
      );
      assert.throws(() => new KoleoProtoCache(3, m + 1).load(saved, be()), /does not fit 4 candidates/);
      for (const t of [w, w2, w2n, exact, at0, at1, at2, at3, exact2, ex.values, ex.indices]) t.dispose();
      cache.dispose();
      again.dispose();
    }),
  );

  test('cached KoLeo-proto: gradient against finite differences of the float64 reference', async () => {
    const [K, D, m] = [12, 5, 2];
    const x = randArray(K * D, 9);
    // Candidates from moved prototypes, so some rows' true neighbour is missing from their list.
    const cache = new KoleoProtoCache(4, m);
    const old = pd.tensor(
      Float32Array.from(x, (v, e) => v + 0.5 * Math.cos(e)),
      [K, D],
      be(),
    );
    tidy(() => noGrad(() => koleoProtoLoss(old, EPS, { cache, step: 0 }))).dispose();
    const cand = await read(cache.candidates!);
    await gradCheck(
      be(),
      (w) => koleoProtoLoss(w, EPS, { cache, step: 1 }),
      (w) => Float64Array.of(cachedKoleoRef(w, cand, K, D, m)),
      [{ shape: [K, D], data: x }],
      { what: 'cached KoLeo-proto' },
    );
    old.dispose();
    cache.dispose();
  });
});

const flags = suite('KoLeo-proto candidate cache flags');
flags('validated with clear errors; off by default', () => {
  assert.is(DEFAULTS.koleo_proto_exact_every, 0);
  const on = parseTrainArgs([
    '--koleo_proto',
    '0.1',
    '--koleo_proto_exact_every',
    '50',
    '--koleo_proto_candidates',
    '8',
  ]);
  assert.is(on.koleo_proto_exact_every, 50);
  assert.is(on.koleo_proto_candidates, 8);
  assert.throws(
    () => parseTrainArgs(['--koleo_proto_exact_every', '50']),
    /--koleo_proto_exact_every: \(50\) caches KoLeo-proto's neighbours: it needs --koleo_proto > 0/,
  );
  assert.throws(
    () => parseTrainArgs(['--koleo_proto', '0.1', '--koleo_proto_exact_every', '-1']),
    /--koleo_proto_exact_every: must be a non-negative integer/,
  );
  assert.throws(
    () => parseTrainArgs(['--koleo_proto', '0.1', '--koleo_proto_candidates', '0']),
    /--koleo_proto_candidates: must be an integer in \[1, 4096\], got 0/,
  );
  assert.throws(
    () =>
      parseTrainArgs([
        '--koleo_proto',
        '0.1',
        '--koleo_proto_exact_every',
        '10',
        '--out_dim',
        '16',
        '--koleo_proto_candidates',
        '16',
      ]),
    /--koleo_proto_candidates: \(16\) must be below --out_dim \(16\): a prototype has 15 others/,
  );
});
flags.run();
