// The online EM of --prototypes em (src/ssl/em-prototypes.ts). On every backend: the E-step against
// a naive float64 reference that forms the B×K×D differences the device code avoids, three updates
// against a float64 reference of the whole update (so the backends agree with each other through
// it), and the split of identical components. On wasm: a synthetic mixture of 8 well-separated
// clusters in 16 dimensions fitted with K = 32, the same from duplicated initial prototypes, and
// the checkpoint round trip of the state.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformance, selectedBackends, getBackend } from '../helpers/backends.js';
import { assertClose, randArray, rng } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { noGrad } from '../../src/tensor/index.js';
import { EM_MIN_WEIGHT, EM_SPLIT_EPS, EmPrototypes, type EmOptions } from '../../src/ssl/em-prototypes.js';
import { countUniquePrototypes } from '../../src/eval/unique.js';
import type { Backend } from '../../src/backend/backend.js';
import { leakFree } from './fixtures.js';

const OPTS: EmOptions = { eta: 0.05, varFloor: 1e-4, betaStart: 0.5, betaWarmup: 4, seed: 3 };

/** The state the reference carries: the four statistics, float64. */
interface RefState {
  K: number;
  D: number;
  count: Float64Array;
  sum: Float64Array;
  sumsq: Float64Array;
  usage: Float64Array;
}

function refParams(s: RefState, floor: number) {
  const { K, D } = s;
  const mean = new Float64Array(K * D),
    variance = new Float64Array(K * D),
    logW = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    logW[k] = Math.log(Math.max(s.usage[k], EM_MIN_WEIGHT));
    for (let d = 0; d < D; d++) {
      const i = k * D + d;
      mean[i] = s.sum[i] / s.count[k];
      variance[i] = Math.max(s.sumsq[i] / s.count[k] - mean[i] ** 2, floor);
    }
  }
  return { mean, variance, logW };
}

/** softmax_k(β·(log π_k + log N(x_b | μ_k, σ²_k))) from the differences x_b − μ_k themselves. */
function refResponsibilities(s: RefState, x: Float64Array, B: number, beta: number, floor: number): Float64Array {
  const { K, D } = s;
  const { mean, variance, logW } = refParams(s, floor);
  const r = new Float64Array(B * K);
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let k = 0; k < K; k++) {
      let q = 0;
      for (let d = 0; d < D; d++) {
        const v = variance[k * D + d];
        q += (x[b * D + d] - mean[k * D + d]) ** 2 / v + Math.log(v);
      }
      r[b * K + k] = beta * (logW[k] - q / 2);
      mx = Math.max(mx, r[b * K + k]);
    }
    let z = 0;
    for (let k = 0; k < K; k++) z += r[b * K + k] = Math.exp(r[b * K + k] - mx);
    for (let k = 0; k < K; k++) r[b * K + k] /= z;
  }
  return r;
}

function refUpdate(s: RefState, x: Float64Array, B: number, beta: number, o: EmOptions): void {
  const { K, D } = s;
  const r = refResponsibilities(s, x, B, beta, o.varFloor);
  const gamma = 1 - (1 - o.eta / K) ** B;
  for (let k = 0; k < K; k++) {
    let n = 0;
    for (let b = 0; b < B; b++) n += r[b * K + k];
    const rho = (1 - o.eta) ** n;
    s.count[k] = rho * s.count[k] + n;
    for (let d = 0; d < D; d++) {
      let s1 = 0,
        s2 = 0;
      for (let b = 0; b < B; b++) {
        s1 += r[b * K + k] * x[b * D + d];
        s2 += r[b * K + k] * x[b * D + d] ** 2;
      }
      s.sum[k * D + d] = rho * s.sum[k * D + d] + s1;
      s.sumsq[k * D + d] = rho * s.sumsq[k * D + d] + s2;
    }
    s.usage[k] = (1 - gamma) * s.usage[k] + (gamma * n) / B;
  }
}

/** A reference state with means spread around, moderate variances and unequal weights. */
function randomState(K: number, D: number, seed: number): RefState {
  const r = rng(seed);
  const count = Float64Array.from({ length: K }, () => 0.5 + 3 * r());
  const mean = randArray(K * D, seed + 1, -0.6, 0.6);
  const sum = mean.map((m, i) => m * count[Math.floor(i / D)]);
  const sumsq = mean.map((m, i) => (m * m + 0.05 + 0.2 * r()) * count[Math.floor(i / D)]);
  const w = Float64Array.from({ length: K }, () => 0.2 + r());
  const tot = w.reduce((a, b) => a + b);
  return { K, D, count, sum, sumsq, usage: w.map((v) => v / tot) };
}

function emFromState(be: Backend, s: RefState, o: EmOptions = OPTS): EmPrototypes {
  const em = noGrad(() => {
    const init = pd.tensor(new Float32Array(s.K * s.D).fill(1), [s.K, s.D], be);
    const e = new EmPrototypes(init, o);
    init.dispose();
    return e;
  });
  em.load({
    count: Float32Array.from(s.count),
    sum: Float32Array.from(s.sum),
    sumsq: Float32Array.from(s.sumsq),
    usage: Float32Array.from(s.usage),
    generator: { seed: o.seed, offset: 0 },
  });
  return em;
}

/** Round a float64 state through float32, as the device holds it. */
function f32(s: RefState): RefState {
  const r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  return { ...s, count: r(s.count), sum: r(s.sum), sumsq: r(s.sumsq), usage: r(s.usage) };
}

conformance('em-prototypes', (test, be) => {
  test(
    'E-step responsibilities match the B×K×D reference (odd sizes, annealed and not)',
    leakFree(async () => {
      for (const [B, K, D] of [
        [7, 5, 3],
        [13, 9, 17],
        [1, 2, 1],
      ]) {
        const s = f32(randomState(K, D, 10 + K));
        const em = emFromState(be(), s);
        const xs = randArray(B * D, 20 + B, -1, 1);
        const x = pd.tensor(Float32Array.from(xs), [B, D], be());
        for (const beta of [1, 0.3]) {
          const r = em.responsibilities(x, beta);
          assertClose(
            (await r.data()) as Float32Array,
            refResponsibilities(s, Float64Array.from(Float32Array.from(xs)), B, beta, OPTS.varFloor),
            { rtol: 2e-4, atol: 2e-6 },
            `responsibilities B=${B} K=${K} D=${D} β=${beta}`,
          );
          r.dispose();
        }
        x.dispose();
        em.dispose();
      }
    }),
  );

  test(
    'three online EM updates match the float64 reference of the update',
    leakFree(async () => {
      const [B, K, D] = [11, 6, 5];
      const s = f32(randomState(K, D, 7));
      const em = emFromState(be(), s);
      for (let t = 0; t < 3; t++) {
        const xs = Float64Array.from(Float32Array.from(randArray(B * D, 30 + t, -0.8, 0.8)));
        const x = pd.tensor(Float32Array.from(xs), [B, D], be());
        em.update(x, t);
        x.dispose();
        refUpdate(s, xs, B, em.beta(t), OPTS);
        assert.is(await em.takeSplitCount(), 0, 'no component was identical to another');
      }
      const p = refParams(s, OPTS.varFloor);
      const tol = { rtol: 1e-4, atol: 1e-5 };
      assertClose((await em.count.data()) as Float32Array, s.count, tol, 'soft counts');
      assertClose((await em.usage.data()) as Float32Array, s.usage, tol, 'weights');
      assertClose((await em.mean.data()) as Float32Array, p.mean, tol, 'means');
      assertClose((await em.variance.data()) as Float32Array, p.variance, tol, 'variances');
      em.dispose();
    }),
  );

  test(
    'a component that receives no mass keeps its statistics exactly',
    leakFree(async () => {
      const [K, D] = [3, 4];
      const s = f32(randomState(K, D, 5));
      // Component 2 sits far from the data with a tiny variance: its responsibility underflows to 0.
      for (let d = 0; d < D; d++) {
        s.sum[2 * D + d] = 50 * s.count[2];
        s.sumsq[2 * D + d] = (2500 + 1e-3) * s.count[2];
      }
      const em = emFromState(be(), f32(s));
      const before = (await em.sum.data()).slice(2 * D, 3 * D);
      const x = pd.tensor(Float32Array.from(randArray(8 * D, 9, -0.5, 0.5)), [8, D], be());
      em.update(x, 10);
      x.dispose();
      assert.equal(Array.from((await em.sum.data()).slice(2 * D, 3 * D)), Array.from(before));
      assert.is((await em.count.data())[2], Math.fround(s.count[2]));
      await em.takeSplitCount();
      em.dispose();
    }),
  );

  test(
    'identical components are split apart',
    leakFree(async () => {
      const [K, D] = [6, 4];
      const rows = randArray(3 * D, 41, -1, 1);
      // Rows 3, 4 and 5 repeat rows 0, 1 and 2.
      const init = pd.tensor(
        Float32Array.from({ length: K * D }, (_, i) => rows[i % (3 * D)]),
        [K, D],
        be(),
      );
      const em = noGrad(() => new EmPrototypes(init, { ...OPTS, betaWarmup: 0 }));
      init.dispose();
      // EM moves identical components identically, so only the split can separate the pairs.
      const x = pd.tensor(Float32Array.from(randArray(10 * D, 43, -1, 1)), [10, D], be());
      em.update(x, 0);
      x.dispose();
      assert.is(await em.takeSplitCount(), K, 'every component had an identical twin');
      const m = await em.mean.data();
      const unit = (k: number) => {
        const v = Array.from(m.slice(k * D, k * D + D));
        const n = Math.hypot(...v);
        return v.map((a) => a / n);
      };
      for (let k = 0; k < 3; k++) {
        const d = Math.hypot(...unit(k).map((a, i) => a - unit(k + 3)[i]));
        assert.ok(d > EM_SPLIT_EPS, `pair ${k}/${k + 3} still ${d} apart`);
      }
      em.dispose();
    }),
  );
});

// ---- wasm: the synthetic mixture --------------------------------------------------------------

const C = 8,
  DIM = 16,
  KP = 32,
  SPREAD = 0.05;
/** How close a prototype must come to every true mean (Euclidean, unit vectors). */
const FOUND = 0.06;

function unitRows(a: ArrayLike<number>, n: number, d: number): number[][] {
  return Array.from({ length: n }, (_, k) => {
    const v = Array.from({ length: d }, (_, j) => a[k * d + j]);
    const s = Math.hypot(...v);
    return v.map((x) => x / s);
  });
}

/** 8 random unit means in 16 dimensions; samples are normalize(mean + SPREAD·N(0, I)), classes in turn. */
function mixture(seed: number) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const means = unitRows(
    Array.from({ length: C * DIM }, () => gauss()),
    C,
    DIM,
  );
  const batch = (B: number) => {
    const out = new Float32Array(B * DIM);
    for (let i = 0; i < B; i++) {
      const v = means[i % C].map((m) => m + SPREAD * gauss());
      const s = Math.hypot(...v);
      for (let j = 0; j < DIM; j++) out[i * DIM + j] = v[j] / s;
    }
    return out;
  };
  return { means, batch };
}

async function fit(be: Backend, init: Float32Array, steps: number) {
  const { means, batch } = mixture(2);
  const t = pd.tensor(init, [KP, DIM], be);
  const em = noGrad(() => new EmPrototypes(t, { eta: 0.02, varFloor: 1e-4, betaStart: 0.2, betaWarmup: 300, seed: 0 }));
  t.dispose();
  let splits = 0;
  for (let s = 0; s < steps; s++) {
    const x = pd.tensor(batch(128), [128, DIM], be);
    em.update(x, s);
    x.dispose();
    splits += await em.takeSplitCount();
  }
  const protos = unitRows(await em.mean.data(), KP, DIM);
  const nearest = means.map((m) => Math.min(...protos.map((p) => Math.hypot(...p.map((a, i) => a - m[i])))));
  const unique = await countUniquePrototypes(em.mean, { eps: 0.025, rule: 'both' });
  return { em, nearest, unique: unique.perEps[0], splits };
}

const wasm = suite('em-prototypes synthetic mixture [wasm]');
let be: Backend;
wasm.before(async () => {
  be = await getBackend(selectedBackends().find((c) => c.name.startsWith('wasm')) ?? selectedBackends()[0]);
});

wasm('8 clusters in 16-d, K = 32: a prototype near every true mean, all 32 distinct at ε 0.025', async () => {
  const init = Float32Array.from(randArray(KP * DIM, 77, -0.25, 0.25));
  const { em, nearest, unique, splits } = await fit(be, init, 500);
  for (let c = 0; c < C; c++) assert.ok(nearest[c] < FOUND, `true mean ${c}: nearest prototype ${nearest[c]} away`);
  assert.is(unique.greedy!.unique, KP, 'greedy unique prototypes');
  assert.is(unique.components!.unique, KP, 'connected-component unique prototypes');
  assert.is(splits, 0, 'distinct initial prototypes needed no split');
  em.dispose();
});

wasm('prototypes initialised as 4 rows repeated 8 times separate and still find every cluster', async () => {
  const rows = randArray(4 * DIM, 78, -0.25, 0.25);
  const init = Float32Array.from({ length: KP * DIM }, (_, i) => rows[i % (4 * DIM)]);
  const { em, nearest, unique, splits } = await fit(be, init, 500);
  assert.ok(splits >= KP, `only ${splits} splits`);
  for (let c = 0; c < C; c++) assert.ok(nearest[c] < FOUND, `true mean ${c}: nearest prototype ${nearest[c]} away`);
  assert.is(unique.greedy!.unique, KP, 'greedy unique prototypes');
  em.dispose();
});

wasm('without annealing, the same start misses clusters (what β < 1 is for)', async () => {
  // Guards the annealing itself: if β were ignored, the test above could pass by luck of this seed.
  const { means, batch } = mixture(2);
  const t = pd.tensor(Float32Array.from(randArray(KP * DIM, 77, -0.25, 0.25)), [KP, DIM], be);
  const em = noGrad(() => new EmPrototypes(t, { eta: 0.02, varFloor: 1e-4, betaStart: 1, betaWarmup: 0, seed: 0 }));
  t.dispose();
  for (let s = 0; s < 300; s++) {
    const x = pd.tensor(batch(128), [128, DIM], be);
    em.update(x, s);
    x.dispose();
    await em.takeSplitCount();
  }
  const protos = unitRows(await em.mean.data(), KP, DIM);
  const missed = means.filter((m) => Math.min(...protos.map((p) => Math.hypot(...p.map((a, i) => a - m[i])))) > FOUND);
  assert.ok(missed.length > 0, 'β = 1 from the start found every cluster too: the annealing test proves nothing');
  em.dispose();
});

wasm('the state round-trips through hostState/load bit for bit, and the next update agrees exactly', async () => {
  const { batch } = mixture(4);
  const mk = () => {
    const t = pd.tensor(Float32Array.from(randArray(KP * DIM, 79, -0.25, 0.25)), [KP, DIM], be);
    const e = noGrad(() => new EmPrototypes(t, OPTS));
    t.dispose();
    return e;
  };
  const a = mk();
  for (let s = 0; s < 5; s++) {
    const x = pd.tensor(batch(64), [64, DIM], be);
    a.update(x, s);
    x.dispose();
  }
  const saved = await a.hostState();
  const b = mk();
  b.load(saved);
  const bytes = async (t: pd.Tensor) => Buffer.from(((await t.data()) as Float32Array).buffer);
  for (const k of ['count', 'sum', 'sumsq', 'usage', 'mean', 'variance', 'logWeight'] as const)
    assert.ok((await bytes(a[k])).equals(await bytes(b[k])), `${k} differs after load`);
  assert.equal(b.generator.getState(), a.generator.getState());
  const x = pd.tensor(batch(64), [64, DIM], be);
  a.update(x, 5);
  b.update(x, 5);
  x.dispose();
  assert.ok((await bytes(a.mean)).equals(await bytes(b.mean)), 'means differ one update after load');
  assert.throws(() => b.load({ ...saved, sum: new Float32Array(3) }), /em\.sum has 3 values, expected 512/);
  await a.takeSplitCount();
  await b.takeSplitCount();
  a.dispose();
  b.dispose();
});

wasm.run();
