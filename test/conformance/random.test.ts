import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import type { Backend, RandomDist } from '../../src/backend/backend.js';
import { bernoulliRef, normalCdfRef, normalRef, philox4x32, uniformRef, words } from '../reference/random.js';

const kat = suite('random reference: Philox-4x32-10 known answers (Random123 kat_vectors)');
kat('three published vectors', () => {
  assert.equal(philox4x32([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  const f = 0xffffffff;
  assert.equal(philox4x32([f, f, f, f], [f, f]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  assert.equal(
    philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  );
});
kat('stream layout: position j is word j % 4 of block floor(j / 4)', () => {
  const w = words(8, 0, 0);
  assert.equal(w.slice(0, 4), philox4x32([0, 0, 0, 0], [0, 0]));
  assert.equal(w.slice(4), philox4x32([1, 0, 0, 0], [0, 0]));
});
kat.run();

const SIZES = [1, 3, 17, 129, 1031];
// seeds and offsets that exercise both key words, every phase in a block and the carry into the
// counter's high word
const STREAMS: [number, number][] = [
  [0, 0],
  [1, 1],
  [0xdeadbeef, 2],
  [2 ** 32 + 5, 3],
  [7, 2 ** 34 - 7],
  [123, 2 ** 45 + 1],
];

function draw(
  be: Backend,
  dist: RandomDist,
  n: number,
  seed: number,
  offset: number,
  a: number,
  b: number,
): Promise<Float32Array> {
  const s = be.alloc(n, 'f32');
  be.random(dist, s, n, seed, offset, a, b);
  return be.download(s).then((d) => {
    be.free(s);
    return d as Float32Array;
  });
}

function moments(v: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(s / (v.length - 1)) };
}

/** Pearson chi-square of `counts` against equal expected counts. */
function chiSquare(counts: number[], total: number): number {
  const e = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
}

const N = 100_000;
const CHI2_99DF_1E4 = 160; // the 1 − 1e-4 quantile of chi-square with 99 degrees of freedom

conformance('random', (test, be) => {
  test('uniform and bernoulli are bit-identical to the reference stream', async () => {
    for (const [seed, offset] of STREAMS) {
      for (const n of SIZES) {
        const what = `n=${n} seed=${seed} offset=${offset}`;
        // power-of-two widths: the mapping is exact whether or not a device fuses a·b + c
        assert.equal(
          Array.from(await draw(be(), 'uniform', n, seed, offset, 0, 1)),
          Array.from(uniformRef(n, seed, offset, 0, 1)),
          `uniform [0,1) ${what}`,
        );
        assert.equal(
          Array.from(await draw(be(), 'uniform', n, seed, offset, -2, 2)),
          Array.from(uniformRef(n, seed, offset, -2, 2)),
          `uniform [-2,2) ${what}`,
        );
        assert.equal(
          Array.from(await draw(be(), 'bernoulli', n, seed, offset, 0.3, 0)),
          Array.from(bernoulliRef(n, seed, offset, 0.3)),
          `bernoulli ${what}`,
        );
      }
    }
  });

  test('a draw large enough to split over threads matches the reference', async () => {
    const n = 12289;
    for (const [seed, offset] of [
      [31, 0],
      [2 ** 40 + 3, 2 ** 32 - 4097],
    ]) {
      assert.equal(
        Array.from(await draw(be(), 'uniform', n, seed, offset, 0, 1)),
        Array.from(uniformRef(n, seed, offset, 0, 1)),
        `uniform seed ${seed}`,
      );
      assertClose(
        await draw(be(), 'normal', n, seed, offset, 0, 1),
        normalRef(n, seed, offset, 0, 1),
        { rtol: 1e-6, atol: 1e-6 },
        `normal seed ${seed}`,
      );
    }
  });

  test('uniform on an arbitrary range stays in [a, b) within an ulp of the reference', async () => {
    for (const [a, b] of [
      [-0.3, 2.7],
      [1, 2],
      [5, 5.000001],
    ] as [number, number][]) {
      const got = await draw(be(), 'uniform', 4099, 17, 8, a, b);
      assertClose(got, uniformRef(4099, 17, 8, a, b), { rtol: 2.4e-7, atol: 0 }, `uniform [${a}, ${b})`);
      const fb = Math.fround(b);
      assert.ok(
        got.every((v) => v >= Math.fround(a) && v < fb),
        `uniform [${a}, ${b}) out of range`,
      );
    }
  });

  test('normal matches the f64 Box-Muller of the same stream', async () => {
    for (const [seed, offset] of STREAMS) {
      for (const n of SIZES) {
        const got = await draw(be(), 'normal', n, seed, offset, 0, 1);
        assertClose(
          got,
          normalRef(n, seed, offset, 0, 1),
          { rtol: 1e-6, atol: 1e-6 },
          `normal n=${n} seed=${seed} offset=${offset}`,
        );
      }
    }
    const got = await draw(be(), 'normal', 517, 3, 1, 2.5, 0.5);
    assertClose(got, normalRef(517, 3, 1, 2.5, 0.5), { rtol: 1e-6, atol: 1e-6 }, 'normal mean 2.5 std 0.5');
  });

  test('a later offset continues the same stream', async () => {
    for (const dist of ['uniform', 'normal', 'bernoulli'] as RandomDist[]) {
      const whole = await draw(be(), dist, 301, 42, 6, 0.5, 1);
      for (const k of [1, 2, 3, 4, 7]) {
        const tail = await draw(be(), dist, 301 - k, 42, 6 + k, 0.5, 1);
        assert.equal(Array.from(tail), Array.from(whole.subarray(k)), `${dist} from offset ${6 + k}`);
      }
    }
  });

  test('statistics over 100k draws: uniform chi-square, normal moments and tails, bernoulli rate', async () => {
    const gen = new pd.Generator(2024);
    const u = await read(gen.rand([N], be()));
    const buckets = new Array(100).fill(0);
    for (const v of u) buckets[Math.floor(v * 100)]++;
    assert.ok(chiSquare(buckets, N) < CHI2_99DF_1E4, `uniform chi-square ${chiSquare(buckets, N)}`);
    const mu = moments(u);
    assert.ok(Math.abs(mu.mean - 0.5) < 4 * Math.sqrt(1 / 12 / N), `uniform mean ${mu.mean}`);

    const z = await read(gen.randn([N], be()));
    const mz = moments(z);
    assert.ok(Math.abs(mz.mean) < 4 / Math.sqrt(N), `normal mean ${mz.mean}`);
    assert.ok(Math.abs(mz.std - 1) < 4 / Math.sqrt(2 * N), `normal std ${mz.std}`);
    // chi-square over 100 equiprobable normal buckets (bucket of z = floor(100·Φ(z)))
    const nb = new Array(100).fill(0);
    for (const v of z) nb[Math.min(99, Math.floor(normalCdfRef(v) * 100))]++;
    assert.ok(chiSquare(nb, N) < CHI2_99DF_1E4, `normal chi-square ${chiSquare(nb, N)}`);
    // the cos and sin lanes of one Box-Muller pair must be uncorrelated
    let corr = 0;
    for (let i = 0; i + 1 < N; i += 2) corr += z[i] * z[i + 1];
    assert.ok(Math.abs(corr / (N / 2)) < 4 / Math.sqrt(N / 2), `lane correlation ${corr / (N / 2)}`);

    const bern = await read(gen.bernoulli([N], be(), 0.2));
    const rate = bern.reduce((a, b) => a + b, 0) / N;
    assert.ok(bern.every((v) => v === 0 || v === 1));
    assert.ok(Math.abs(rate - 0.2) < 4 * Math.sqrt((0.2 * 0.8) / N), `bernoulli rate ${rate}`);
  });

  test('Generator: draws advance the offset; saving and restoring the state replays them', async () => {
    const gen = new pd.Generator(9);
    const saved = gen.getState();
    const a = await read(gen.rand([37], be()));
    assert.is(gen.offset, 40, 'offsets advance to the next Philox block');
    const b = await read(gen.randn([5, 3], be()));
    assert.is(gen.offset, 56);
    assert.not.equal(a.slice(0, 15), await read(gen.rand([15], be())), 'a later draw gives new numbers');
    gen.setState(saved);
    assert.equal(await read(gen.rand([37], be())), a);
    assert.equal(await read(gen.randn([5, 3], be())), b);
    assert.equal(a, Array.from(uniformRef(37, 9, 0, 0, 1)));
    gen.setState({ seed: 9, offset: 1 });
    assert.equal(
      await read(gen.rand([3], be())),
      Array.from(uniformRef(3, 9, 4, 0, 1)),
      'an unaligned offset moves to the next block',
    );
    assert.is(gen.offset, 8);
    pd.manualSeed(9);
    assert.equal(await read(pd.rand([37], be())), a);
    assert.equal(await read(pd.bernoulli([4], be(), { p: 1 })), [1, 1, 1, 1]);
    assert.equal(await read(pd.bernoulli([4], be(), { p: 0 })), [0, 0, 0, 0]);
    assert.throws(() => gen.setState({ seed: -1, offset: 0 }), /seed must be an integer/);
    assert.throws(() => gen.rand([2], be(), 1, 0), /needs finite lo ≤ hi/);
  });

  test('truncatedNormal: inside [a, b], truncated-normal distribution, reproducible', async () => {
    const n = 20000;
    const gen = new pd.Generator(5);
    const t = await read(gen.truncatedNormal([n], be(), { mean: 1, std: 2 }));
    assert.ok(
      t.every((v) => v >= -3 && v <= 5),
      'default bounds mean ± 2 std',
    );
    // Kolmogorov-Smirnov against the truncated CDF; 1.95/√n is the 0.001 critical value
    const cdf = (x: number) => (normalCdfRef((x - 1) / 2) - normalCdfRef(-2)) / (normalCdfRef(2) - normalCdfRef(-2));
    const sorted = Float64Array.from(t).sort();
    let d = 0;
    sorted.forEach((x, i) => {
      d = Math.max(d, Math.abs(cdf(x) - i / n), Math.abs(cdf(x) - (i + 1) / n));
    });
    assert.ok(d < 1.95 / Math.sqrt(n), `KS statistic ${d}`);
    // a window in the upper tail (sampled on the precise side)
    const tail = await read(gen.truncatedNormal([4000], be(), { std: 1, a: 3, b: 3.5 }));
    assert.ok(
      tail.every((v) => v >= 3 && v <= 3.5),
      'tail window bounds',
    );
    const pdf = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    const tailMean = (pdf(3) - pdf(3.5)) / (normalCdfRef(3.5) - normalCdfRef(3));
    assert.ok(Math.abs(moments(tail).mean - tailMean) < 0.01, `tail mean ${moments(tail).mean}, expected ${tailMean}`);
    gen.setState({ seed: 5, offset: 0 });
    assert.equal(await read(gen.truncatedNormal([n], be(), { mean: 1, std: 2 })), t);
  });

  test('dropout: mask rate, scaling and gradient through the mask', async () => {
    const n = 4000,
      p = 0.25;
    const before = be().memory().liveBuffers;
    const xv = randArray(n, 3, 0.5, 1.5);
    const wv = randArray(n, 4);
    const x = pd.param(pd.tensor(xv, [n], be()));
    const gen = new pd.Generator(77);
    const y = pd.tidy(() => {
      const out = pd.dropout(x, p, gen);
      pd.backward(pd.sum(pd.mul(out, pd.tensor(wv, [n], be()))));
      return out;
    });
    const yv = await read(y);
    const gv = await read(x.grad!);
    const kept = yv.filter((v) => v !== 0).length / n;
    assert.ok(Math.abs(kept - (1 - p)) < 4 * Math.sqrt((p * (1 - p)) / n), `kept fraction ${kept}`);
    const mask = bernoulliRef(n, 77, 0, 1 - p);
    assertClose(
      yv,
      Array.from(xv, (v, i) => (mask[i] * Math.fround(v)) / (1 - p)),
      { rtol: 1e-6, atol: 0 },
      'dropout output',
    );
    assertClose(
      gv,
      Array.from(wv, (v, i) => (mask[i] * Math.fround(v)) / (1 - p)),
      { rtol: 1e-6, atol: 1e-7 },
      'dropout gradient',
    );
    const same = pd.dropout(x, 0, gen);
    assert.equal(await read(same), Array.from(xv, Math.fround));
    const none = pd.noGrad(() => pd.dropout(x, 1, gen));
    assert.ok((await read(none)).every((v) => v === 0));
    for (const t of [x, y, same, none]) t.dispose();
    assert.is(be().memory().liveBuffers, before, 'dropout leaves no storage behind');
  });
});
