import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';

interface RefOpts {
  w?: Float64Array;
  b?: Float64Array;
  rm?: ArrayLike<number>;
  rv?: ArrayLike<number>;
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** PyTorch's F.batch_norm in float64 over x [N, C, ...]; also returns the updated running stats. */
function batchNormRef(x: Float64Array, shape: number[], o: RefOpts): { out: Float64Array; rm: number[]; rv: number[] } {
  const C = shape[1];
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const N = shape[0];
  const count = N * inner;
  const eps = o.eps ?? 1e-5,
    m = o.momentum ?? 0.1;
  const out = new Float64Array(x.length);
  const rm: number[] = [],
    rv: number[] = [];
  const at = (n: number, c: number, i: number) => (n * C + c) * inner + i;
  for (let c = 0; c < C; c++) {
    let mean = 0,
      v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < inner; i++) mean += x[at(n, c, i)] / count;
    for (let n = 0; n < N; n++) for (let i = 0; i < inner; i++) v += (x[at(n, c, i)] - mean) ** 2 / count;
    const batch = o.training || !o.rm;
    const mu = batch ? mean : o.rm![c];
    const va = batch ? v : o.rv![c];
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < inner; i++) {
        const k = at(n, c, i);
        out[k] = ((x[k] - mu) / Math.sqrt(va + eps)) * (o.w ? o.w[c] : 1) + (o.b ? o.b[c] : 0);
      }
    }
    if (o.rm && o.rv) {
      rm.push(o.training ? (1 - m) * o.rm[c] + m * mean : o.rm[c]);
      rv.push(o.training ? (1 - m) * o.rv[c] + (m * v * count) / (count - 1) : o.rv[c]);
    }
  }
  return { out, rm, rv };
}

const SHAPES = [
  [6, 5],
  [3, 4, 3, 5],
  [2, 3, 1, 7],
  [17, 1],
];

conformance('batchnorm', (test, be) => {
  test('training mode: forward and gradients to x, weight, bias', async () => {
    for (const shape of SHAPES) {
      const C = shape[1];
      await gradCheck(
        be(),
        (x, w, b) => pd.batchNorm(x, { weight: w, bias: b, training: true }),
        (x, w, b) => batchNormRef(x, shape, { w, b, training: true }).out,
        [{ shape }, { shape: [C], data: randArray(C, 2, 0.5, 1.5) }, { shape: [C] }],
        { what: `batchNorm train [${shape}]` },
      );
      await gradCheck(
        be(),
        (x) => pd.batchNorm(x, { training: true }),
        (x) => batchNormRef(x, shape, { training: true }).out,
        [{ shape }],
        { what: `batchNorm train, no affine [${shape}]` },
      );
    }
  });

  test('eval mode: running statistics, forward and gradients', async () => {
    for (const shape of SHAPES) {
      const C = shape[1];
      const rmv = randArray(C, 7, -0.5, 0.5),
        rvv = randArray(C, 8, 0.5, 2);
      const rm = pd.tensor(rmv, [C], be()),
        rv = pd.tensor(rvv, [C], be());
      const ref = { rm: Float64Array.from(rmv, Math.fround), rv: Float64Array.from(rvv, Math.fround), training: false };
      await gradCheck(
        be(),
        (x, w, b) => pd.batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv }),
        (x, w, b) => batchNormRef(x, shape, { ...ref, w, b }).out,
        [{ shape }, { shape: [C] }, { shape: [C] }],
        { what: `batchNorm eval [${shape}]` },
      );
      assertClose(await read(rm), ref.rm, { rtol: 0, atol: 0 }, 'eval leaves runningMean alone');
      rm.dispose();
      rv.dispose();
    }
  });

  test('training mode updates running statistics in place (unbiased variance)', async () => {
    for (const shape of SHAPES) {
      for (const momentum of [0.1, 0.3]) {
        const C = shape[1];
        const n = shape.reduce((a, b) => a * b, 1);
        const xv = randArray(n, 3, -2, 3);
        const rmv = randArray(C, 4),
          rvv = randArray(C, 5, 0.5, 2);
        const x = pd.tensor(xv, shape, be());
        const rm = pd.tensor(rmv, [C], be()),
          rv = pd.tensor(rvv, [C], be());
        const w = pd.param(pd.tensor(randArray(C, 6), [C], be()));
        const y = pd.tidy(() =>
          pd.batchNorm(x, { weight: w, runningMean: rm, runningVar: rv, training: true, momentum }),
        );
        const ref = batchNormRef(Float64Array.from(xv, Math.fround), shape, {
          w: Float64Array.from(await read(w)),
          rm: Float64Array.from(rmv, Math.fround),
          rv: Float64Array.from(rvv, Math.fround),
          training: true,
          momentum,
        });
        assertClose(await read(y), ref.out, { rtol: 1e-4, atol: 1e-5 }, `output [${shape}]`);
        assertClose(await read(rm), ref.rm, { rtol: 1e-5, atol: 1e-6 }, `runningMean [${shape}] momentum ${momentum}`);
        assertClose(await read(rv), ref.rv, { rtol: 1e-5, atol: 1e-6 }, `runningVar [${shape}] momentum ${momentum}`);
        assert.not.ok(rm.requiresGrad || rv.requiresGrad, 'running statistics stay out of the graph');
        for (const t of [x, rm, rv, w, y]) t.dispose();
      }
    }
  });

  test('training and eval steps leave no storage behind', async () => {
    const before = be().memory().liveBuffers;
    const x = pd.param(pd.tensor(randArray(4 * 3 * 2 * 2, 1), [4, 3, 2, 2], be()));
    const w = pd.param(pd.tensor(randArray(3, 2), [3], be()));
    const b = pd.param(pd.tensor(randArray(3, 3), [3], be()));
    const rm = pd.zeros([3], be()),
      rv = pd.ones([3], be());
    for (const training of [true, false]) {
      pd.tidy(() =>
        pd.backward(pd.sum(pd.batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training }))),
      );
      pd.tidy(() => {
        pd.noGrad(() => pd.batchNorm(x, { runningMean: rm, runningVar: rv, training }));
      });
    }
    for (const t of [x, w, b, rm, rv]) t.dispose();
    assert.is(be().memory().liveBuffers, before);
  });

  test('fused residual add and ReLU: forward and gradients to x, weight, bias, residual (train and eval)', async () => {
    for (const shape of [
      [3, 4, 3, 5],
      [2, 3, 1, 7],
      [6, 5],
    ]) {
      const C = shape[1];
      const relu = (o: Float64Array, r: Float64Array) => o.map((v, i) => Math.max(0, v + r[i]));
      await gradCheck(
        be(),
        (x, w, b, r) => pd.batchNorm(x, { weight: w, bias: b, residual: r, relu: true, training: true }),
        (x, w, b, r) => relu(batchNormRef(x, shape, { w, b, training: true }).out, r),
        [{ shape }, { shape: [C], data: randArray(C, 2, 0.5, 1.5) }, { shape: [C] }, { shape }],
        { what: `batchNorm+add+relu train [${shape}]` },
      );
      await gradCheck(
        be(),
        (x) => pd.batchNorm(x, { relu: true, training: true }),
        (x) => batchNormRef(x, shape, { training: true }).out.map((v) => Math.max(0, v)),
        [{ shape }],
        { what: `batchNorm+relu [${shape}]` },
      );
      const rmv = randArray(C, 7, -0.5, 0.5),
        rvv = randArray(C, 8, 0.5, 2);
      const rm = pd.tensor(rmv, [C], be()),
        rv = pd.tensor(rvv, [C], be());
      const ref = { rm: Float64Array.from(rmv, Math.fround), rv: Float64Array.from(rvv, Math.fround), training: false };
      await gradCheck(
        be(),
        (x, w, r) => pd.batchNorm(x, { weight: w, runningMean: rm, runningVar: rv, residual: r }),
        (x, w, r) => batchNormRef(x, shape, { ...ref, w }).out.map((v, i) => v + r[i]),
        [{ shape }, { shape: [C] }, { shape }],
        { what: `batchNorm+add eval [${shape}]` },
      );
      rm.dispose();
      rv.dispose();
    }
  });

  test('batchNorm kernels on maps large enough to split channels over threads', async () => {
    const [n, C, hw] = [8, 6, 45 * 47];
    const N = n * C * hw;
    const x = randArray(N, 11, -1, 2),
      res = randArray(N, 12),
      dyv = randArray(N, 13),
      gam = randArray(C, 14, 0.5, 1.5),
      bet = randArray(C, 15);
    const up = (a: ArrayLike<number>) => {
      const st = be().alloc(a.length, 'f32');
      be().upload(st, Float32Array.from(a));
      return st;
    };
    const xs = up(x),
      rs = up(res),
      dys = up(dyv),
      gs = up(gam),
      bs = up(bet);
    const mean = up(new Array(C).fill(9)),
      variance = up(new Array(C).fill(9)),
      rstd = be().alloc(C, 'f32');
    const out = up(new Array(N).fill(9)),
      dx = up(new Array(N).fill(9)),
      dres = up(new Array(N).fill(9));
    const dg = up(new Array(C).fill(9)),
      db = up(new Array(C).fill(9));
    be().batchNormStats(xs, mean, variance, n, C, hw);
    const mv = await be().download(mean),
      vv = await be().download(variance);
    be().upload(
      rstd,
      Float32Array.from(vv, (v) => 1 / Math.sqrt(v + 1e-5)),
    );
    be().batchNormApply(xs, mean, rstd, gs, bs, rs, out, n, C, hw, true);
    be().batchNormGrad(xs, out, mean, rstd, gs, dys, dx, dg, db, dres, n, C, hw, true, true);
    // float64 reference
    const xf = Float64Array.from(x, Math.fround),
      rf = Float64Array.from(res, Math.fround),
      dyf = Float64Array.from(dyv, Math.fround);
    const refMean = new Float64Array(C),
      refVar = new Float64Array(C),
      refOut = new Float64Array(N),
      refDx = new Float64Array(N);
    const refDres = new Float64Array(N),
      refDg = new Float64Array(C),
      refDb = new Float64Array(C);
    const idx = (b: number, c: number, i: number) => (b * C + c) * hw + i;
    for (let c = 0; c < C; c++) {
      let s = 0,
        v = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += xf[idx(b, c, i)];
      const mu = s / (n * hw);
      for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) v += (xf[idx(b, c, i)] - mu) ** 2;
      refMean[c] = mu;
      refVar[c] = v / (n * hw);
      const rsd = 1 / Math.sqrt(refVar[c] + 1e-5),
        g0 = Math.fround(gam[c]),
        b0 = Math.fround(bet[c]);
      let sg = 0,
        sgx = 0;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < hw; i++) {
          const k = idx(b, c, i);
          const xh = (xf[k] - mu) * rsd;
          refOut[k] = Math.max(0, xh * g0 + b0 + rf[k]);
          const g = refOut[k] > 0 ? dyf[k] : 0;
          refDres[k] = g;
          sg += g;
          sgx += g * xh;
        }
      }
      refDg[c] = sgx;
      refDb[c] = sg;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < hw; i++) {
          const k = idx(b, c, i);
          const xh = (xf[k] - mu) * rsd;
          refDx[k] = g0 * rsd * (refDres[k] - sg / (n * hw) - (xh * sgx) / (n * hw));
        }
      }
    }
    assertClose(mv, refMean, { rtol: 1e-5, atol: 1e-5 }, 'mean');
    assertClose(vv, refVar, { rtol: 1e-4, atol: 1e-5 }, 'variance');
    assertClose(await be().download(out), refOut, { rtol: 1e-4, atol: 1e-4 }, 'out');
    assertClose(await be().download(dres), refDres, { rtol: 0, atol: 0 }, 'dres');
    assertClose(await be().download(dx), refDx, { rtol: 1e-3, atol: 1e-4 }, 'dx');
    assertClose(await be().download(dg), refDg, { rtol: 1e-3, atol: 1e-2 }, 'dgamma');
    assertClose(await be().download(db), refDb, { rtol: 1e-3, atol: 1e-2 }, 'dbeta');
    for (const st of [xs, rs, dys, gs, bs, mean, variance, rstd, out, dx, dres, dg, db]) be().free(st);
  });

  test('errors', () => {
    const x1 = pd.zeros([1, 3], be());
    assert.throws(() => pd.batchNorm(x1, { training: true }), /more than one value per channel/);
    const x = pd.zeros([4, 3, 2, 2], be());
    const w = pd.zeros([4], be());
    assert.throws(() => pd.batchNorm(x, { weight: w }), /weight has shape \[4\], expected \[3\]/);
    const x3 = pd.zeros([4, 3, 2], be());
    assert.throws(() => pd.batchNorm(x3), /input must be \[N, C\] or \[N, C, H, W\]/);
    assert.throws(() => pd.batchNorm(x, { residual: x1 }), /residual has shape \[1,3\], expected \[4,3,2,2\]/);
    for (const t of [x1, x, w, x3]) t.dispose();
  });
});
