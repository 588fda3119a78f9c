import * as assert from 'uvu/assert';
import type { Backend, Storage } from '../../src/backend/backend.js';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { forceLayerNormVariant, LAYER_NORM_VARIANTS } from '../../src/backend/webgpu/norm.js';
import { addLayerNormRef, l2NormalizeRef, layerNormGradRef, layerNormRef, weightNormRef } from '../reference/norm.js';

// [rows, cols]: odd widths around the SIMD width, the 16-column parameter chunks and the WGSL
// workgroup sizes; 37 rows make the column pass's 16 row lanes uneven; 2000 rows split the wasm
// passes (rows and column chunks) across two threads.
const SIZES: [number, number][] = [
  [5, 1],
  [4, 3],
  [3, 17],
  [37, 129],
  [2000, 129],
  [2, 1031],
  [2, 4099],
];
const EPS = 1e-5;

function upload(be: Backend, data: ArrayLike<number>): Storage {
  const s = be.alloc(data.length, 'f32');
  be.upload(s, Float32Array.from(data));
  return s;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 1e-6;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Rows far from zero mean and of large magnitude, where a one-pass variance would cancel. */
function extremeRows(cols: number): Float64Array {
  const r = randArray(3 * cols, 41);
  const x = new Float64Array(3 * cols);
  for (let c = 0; c < cols; c++) {
    x[c] = 1000 + r[c];
    x[cols + c] = 80 * r[cols + c];
    x[2 * cols + c] = c % 2 ? 80 : -80;
  }
  return x.map(Math.fround);
}

/**
 * Runs `body` once per WebGPU layer norm kernel (forced: a workgroup per row, an invocation per
 * row), then with the choice by adapter; on other backends once. `what` names the kernel.
 */
async function eachLayerNorm(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  if (!(be instanceof WebGPUBackend)) return body('');
  try {
    for (const v of [...LAYER_NORM_VARIANTS, null]) {
      forceLayerNormVariant(v);
      await body(` [${v ?? 'by adapter'}]`);
    }
  } finally {
    forceLayerNormVariant(null);
  }
}

conformance('norm', (test, be) => {
  test('layerNorm kernel: out, mean, rstd against the f64 reference (affine on/off)', async () => {
    // Rows centred near 1000 carry an inherent f32 error in the mean of about ulp(1000) = 6e-5;
    // a one-pass variance would be off by far more (tens of percent), which the 1e-3 still catches.
    const data = SIZES.map(
      ([rows, cols]) => [rows, cols, randArray(rows * cols, cols + rows, -2, 3).map(Math.fround), 1e-4] as const,
    );
    const extreme = [3, 17, 1031].map((cols) => [3, cols, extremeRows(cols), 1e-3] as const);
    await eachLayerNorm(be(), async (kernel) => {
      for (const [rows, cols, x, tol] of [...data, ...extreme]) {
        for (const [hasG, hasB] of [
          [false, false],
          [true, true],
          [true, false],
          [false, true],
        ]) {
          const gamma = hasG ? randArray(cols, 3, 0.5, 1.5).map(Math.fround) : null;
          const beta = hasB ? randArray(cols, 4).map(Math.fround) : null;
          const sx = upload(be(), x),
            sg = gamma && upload(be(), gamma),
            sb = beta && upload(be(), beta);
          const so = be().alloc(rows * cols, 'f32'),
            sm = be().alloc(rows, 'f32'),
            sr = be().alloc(rows, 'f32');
          be().layerNorm(sx, sg, sb, so, sm, sr, rows, cols, EPS);
          const ref = layerNormRef(x, gamma, beta, rows, cols, EPS);
          const what = `layerNorm${kernel} [${rows}, ${cols}] gamma ${hasG} beta ${hasB}`;
          assertClose(await be().download(so), ref.out, { rtol: tol, atol: tol }, `${what} out`);
          assertClose(await be().download(sm), ref.mean, { rtol: 1e-5, atol: 1e-5 }, `${what} mean`);
          assertClose(await be().download(sr), ref.rstd, { rtol: tol, atol: 0 }, `${what} rstd`);
          for (const s of [sx, sg, sb, so, sm, sr]) if (s) be().free(s);
        }
      }
    });
  });

  test('addLayerNorm kernel: sum and layer norm against the f64 reference, bit for bit the add then layerNorm', async () => {
    for (const [rows, cols] of [...SIZES, [6, 64], [12, 7]] as [number, number][]) {
      // a as tall as x, and a few rows repeated down x (a position embedding shared by a batch)
      for (const aRows of [...new Set([rows, rows % 3 === 0 ? rows / 3 : 1])]) {
        const x = randArray(rows * cols, rows + 3 * cols, -2, 3).map(Math.fround);
        const a = randArray(aRows * cols, aRows + 5 * cols).map(Math.fround);
        for (const [hasG, hasB] of [
          [false, false],
          [true, true],
          [true, false],
        ]) {
          const gamma = hasG ? randArray(cols, 3, 0.5, 1.5).map(Math.fround) : null;
          const beta = hasB ? randArray(cols, 4).map(Math.fround) : null;
          const [sx, sa] = [upload(be(), x), upload(be(), a)];
          const [sg, sb] = [gamma && upload(be(), gamma), beta && upload(be(), beta)];
          const [ss, so] = [be().alloc(rows * cols, 'f32'), be().alloc(rows * cols, 'f32')];
          const [sm, sr] = [be().alloc(rows, 'f32'), be().alloc(rows, 'f32')];
          be().addLayerNorm(sx, sa, aRows, ss, sg, sb, so, sm, sr, rows, cols, EPS);
          const ref = addLayerNormRef(x, a, aRows, gamma, beta, rows, cols, EPS);
          const what = `addLayerNorm [${rows}, ${cols}] a rows ${aRows} gamma ${hasG} beta ${hasB}`;
          const sum = await be().download(ss);
          assertClose(sum, ref.sum, { rtol: 1e-6, atol: 1e-6 }, `${what} sum`);
          assertClose(await be().download(so), ref.out, { rtol: 1e-4, atol: 1e-4 }, `${what} out`);
          assertClose(await be().download(sm), ref.mean, { rtol: 1e-5, atol: 1e-5 }, `${what} mean`);
          assertClose(await be().download(sr), ref.rstd, { rtol: 1e-4, atol: 0 }, `${what} rstd`);
          // the f32 sum of two f32 values is the rounded exact sum; the norm of it is layerNorm's
          const exact = Float32Array.from(ref.sum);
          assert.equal(Array.from(sum), Array.from(exact), `${what}: sum bit for bit`);
          const [s2, o2, m2, r2] = [
            upload(be(), exact),
            be().alloc(rows * cols, 'f32'),
            be().alloc(rows, 'f32'),
            be().alloc(rows, 'f32'),
          ];
          be().layerNorm(s2, sg, sb, o2, m2, r2, rows, cols, EPS);
          for (const [fused, plain, name] of [
            [so, o2, 'out'],
            [sm, m2, 'mean'],
            [sr, r2, 'rstd'],
          ] as const) {
            const [f, p] = [await be().download(fused), await be().download(plain)];
            const i = f.findIndex((v, j) => !Object.is(v, p[j]));
            assert.is(i, -1, `${what}: ${name} differs from layerNorm's at ${i}`);
          }
          for (const st of [sx, sa, sg, sb, ss, so, sm, sr, s2, o2, m2, r2]) if (st) be().free(st);
        }
      }
    }
  });

  test('layerNormGrad kernel: dx, and dgamma/dbeta overwritten and deterministic', async () => {
    await eachLayerNorm(be(), async (kernel) => {
      for (const [rows, cols] of SIZES) {
        const x = randArray(rows * cols, cols * 7 + rows, -2, 2).map(Math.fround);
        const dy = randArray(rows * cols, cols * 7 + 1).map(Math.fround);
        for (const affine of [true, false]) {
          const gamma = affine ? randArray(cols, 5, 0.5, 1.5).map(Math.fround) : null;
          const ref = layerNormGradRef(x, gamma, dy, rows, cols, EPS);
          const fwd = layerNormRef(x, null, null, rows, cols, EPS);
          const sx = upload(be(), x),
            sdy = upload(be(), dy),
            sg = gamma && upload(be(), gamma);
          const sm = upload(be(), fwd.mean),
            sr = upload(be(), fwd.rstd);
          const sdx = be().alloc(rows * cols, 'f32');
          // stale values in the outputs: the contract says overwrite, not accumulate
          const sdg = upload(be(), new Float64Array(cols).fill(7)),
            sdb = upload(be(), new Float64Array(cols).fill(-7));
          const what = `layerNormGrad${kernel} [${rows}, ${cols}] gamma ${affine}`;
          be().layerNormGrad(sx, sg, sm, sr, sdy, sdx, sdg, sdb, rows, cols);
          assertClose(await be().download(sdx), ref.dx, { rtol: 1e-3, atol: 1e-4 * maxAbs(ref.dx) }, `${what} dx`);
          const dg1 = await be().download(sdg),
            db1 = await be().download(sdb);
          assertClose(dg1, ref.dgamma, { rtol: 1e-4, atol: 1e-4 * maxAbs(ref.dgamma) }, `${what} dgamma`);
          assertClose(db1, ref.dbeta, { rtol: 1e-4, atol: 1e-4 * maxAbs(ref.dbeta) }, `${what} dbeta`);
          // each parameter gradient alone, and a rerun: the same bits
          be().layerNormGrad(sx, sg, sm, sr, sdy, sdx, sdg, null, rows, cols);
          assert.equal(Array.from(await be().download(sdg)), Array.from(dg1), `${what} dgamma alone, bit for bit`);
          be().layerNormGrad(sx, sg, sm, sr, sdy, sdx, null, sdb, rows, cols);
          assert.equal(Array.from(await be().download(sdb)), Array.from(db1), `${what} dbeta alone, bit for bit`);
          // with a pending gradient: dx + dres, each value the f32 sum a separate add would give
          const dres = randArray(rows * cols, cols + 11).map(Math.fround);
          const sres = upload(be(), dres);
          const dx1 = await be().download(sdx);
          be().layerNormGrad(sx, sg, sm, sr, sdy, sdx, null, null, rows, cols, sres);
          const dx2 = await be().download(sdx);
          const expected = Float32Array.from(dx1, (v, i) => v + dres[i]);
          const at = dx2.findIndex((v, i) => !Object.is(v, expected[i]));
          assert.is(at, -1, `${what} dx + dres differs from the separate add at ${at}`);
          be().free(sres);
          for (const s of [sx, sdy, sg, sm, sr, sdx, sdg, sdb]) if (s) be().free(s);
        }
      }
    });
  });

  test('layerNorm op: forward and gradients, with and without affine', async () => {
    await eachLayerNorm(be(), async (kernel) => {
      for (const [rows, cols] of [
        [4, 1],
        [3, 5],
        [2, 17],
        [3, 33],
      ]) {
        const shape = rows === 3 ? [1, 3, cols] : [rows, cols];
        await gradCheck(
          be(),
          (x) => pd.layerNorm(x, cols),
          (x) => layerNormRef(x, null, null, rows, cols, EPS).out,
          [{ shape }],
          { what: `layerNorm${kernel} [${shape}]`, fwd: { rtol: 1e-4, atol: 1e-4 } },
        );
        await gradCheck(
          be(),
          (x, w, b) => pd.layerNorm(x, cols, { weight: w, bias: b }),
          (x, w, b) => layerNormRef(x, w, b, rows, cols, EPS).out,
          [{ shape }, { shape: [cols], data: randArray(cols, 2, 0.5, 1.5) }, { shape: [cols] }],
          { what: `layerNorm${kernel} affine [${shape}]`, fwd: { rtol: 1e-4, atol: 1e-4 } },
        );
        await gradCheck(
          be(),
          (x, w) => pd.layerNorm(x, cols, { weight: w, eps: 1e-3 }),
          (x, w) => layerNormRef(x, w, null, rows, cols, 1e-3).out,
          [{ shape }, { shape: [cols], data: randArray(cols, 6, 0.5, 1.5) }],
          { what: `layerNorm${kernel} weight only [${shape}]`, fwd: { rtol: 1e-4, atol: 1e-4 } },
        );
      }
      // affine parameters frozen (no grad) still shape the input gradient
      await gradCheck(
        be(),
        (x, b) => pd.layerNorm(x, 7, { weight: b, bias: b }),
        (x, b) => layerNormRef(x, b, b, 3, 7, EPS).out,
        [{ shape: [3, 7] }, { shape: [7], noGrad: true }],
        { what: `layerNorm${kernel} frozen affine`, fwd: { rtol: 1e-4, atol: 1e-4 } },
      );
    });
  });

  test('addLayerNorm op: gradients of x, a and the affine through both outputs', async () => {
    // y = layerNorm(x + a) + 0.7·(x + a): the sum's gradient comes from its own use and the norm's.
    const k = 0.7;
    for (const [xs, as] of [
      [
        [3, 5],
        [3, 5],
      ],
      [
        [2, 3, 17],
        [1, 3, 17],
      ],
      [[2, 3, 4], [4]],
      [
        [2, 3, 6],
        [2, 1, 6],
      ], // not a row block of x: the add and the norm run as two ops
    ] as [number[], number[]][]) {
      const cols = xs[xs.length - 1];
      const rows = xs.reduce((p, d) => p * d, 1) / cols;
      const aRows = as.reduce((p, d) => p * d, 1) / cols;
      // the reference broadcasts a by repeating its rows; [2, 1, 6] repeats each row 3 times instead
      const expand = (a: Float64Array) =>
        as[1] === 1 && xs[1] !== 1
          ? Float64Array.from({ length: rows * cols }, (_, i) => a[Math.floor(i / (xs[1] * cols)) * cols + (i % cols)])
          : a;
      const refY = (x: Float64Array, a: Float64Array, w: Float64Array | null, b: Float64Array | null) => {
        const ea = expand(a);
        const r = addLayerNormRef(x, ea, ea === a ? aRows : rows, w, b, rows, cols, EPS);
        return r.out.map((v, i) => v + k * r.sum[i]);
      };
      const opY = (x: pd.Tensor, a: pd.Tensor, w?: pd.Tensor, b?: pd.Tensor) => {
        const { sum, out } = pd.addLayerNorm(x, a, cols, { weight: w, bias: b, eps: EPS });
        return pd.add(out, pd.mul(sum, k));
      };
      const what = `addLayerNorm [${xs}] + [${as}]`;
      await gradCheck(
        be(),
        (x, a) => opY(x, a),
        (x, a) => refY(x, a, null, null),
        [{ shape: xs }, { shape: as }],
        {
          what,
          fwd: { rtol: 1e-4, atol: 1e-4 },
        },
      );
      await gradCheck(
        be(),
        opY,
        refY,
        [{ shape: xs }, { shape: as }, { shape: [cols], data: randArray(cols, 2, 0.5, 1.5) }, { shape: [cols] }],
        { what: `${what} affine`, fwd: { rtol: 1e-4, atol: 1e-4 } },
      );
    }
  });

  test('addLayerNorm op: the bits of add then layerNorm, forward and backward, in a ViT block pattern', async () => {
    // x1 = x + a, n = norm(x1), out = x1 + f(n): x1's gradient sums the residual's and the norm's.
    const [B, T, D] = [3, 5, 16];
    const x = randArray(B * T * D, 1, -2, 2),
      a = randArray(T * D, 2),
      w = randArray(D, 3, 0.5, 1.5),
      bias = randArray(D, 4),
      dy = randArray(B * T * D, 5);
    const results: number[][][] = [];
    // The gradient as autograd summed it before layerNorm's kernel took the add over: the norm's
    // input gradient alone (x1 a leaf), then dy + it, one f32 add per value.
    const alone = pd.param(
      pd.tensor(
        x.map((v, i) => Math.fround(Math.fround(v) + Math.fround(a[i % (T * D)]))),
        [B, T, D],
        be(),
      ),
    );
    const [lw, lb] = [pd.param(pd.tensor(w, [D], be())), pd.param(pd.tensor(bias, [D], be()))];
    pd.tidy(() =>
      pd.backward(
        pd.gelu(pd.mul(pd.layerNorm(alone, D, { weight: lw, bias: lb, eps: 1e-6 }), 1.5)),
        pd.tensor(dy, [B, T, D], be()),
      ),
    );
    const dxAlone = await read(alone.grad!);
    const separate = Float32Array.from(dxAlone, (v, i) => v + Math.fround(dy[i]));
    for (const t of [alone, lw, lb]) {
      t.grad?.dispose();
      t.dispose();
    }
    for (const fused of [true, false]) {
      const [tx, ta, tw, tb] = [
        pd.tensor(x, [B, T, D], be()),
        pd.tensor(a, [1, T, D], be()),
        pd.tensor(w, [D], be()),
        pd.tensor(bias, [D], be()),
      ].map((t) => pd.param(t));
      const y = pd.tidy(() => {
        const opts = { weight: tw, bias: tb, eps: 1e-6 };
        let x1: pd.Tensor, n: pd.Tensor;
        if (fused) ({ sum: x1, out: n } = pd.addLayerNorm(tx, ta, D, opts));
        else n = pd.layerNorm((x1 = pd.add(tx, ta)), D, opts);
        const out = pd.add(x1, pd.gelu(pd.mul(n, 1.5)));
        pd.backward(out, pd.tensor(dy, out.shape, be()));
        return out;
      });
      results.push([await read(y), ...(await Promise.all([tx, ta, tw, tb].map((t) => read(t.grad!))))]);
      for (const t of [tx, ta, tw, tb, y]) t.dispose();
      for (const t of [tx, ta, tw, tb]) t.grad?.dispose();
    }
    ['y', 'dx', 'da', 'dgamma', 'dbeta'].forEach((what, i) => {
      const j = results[0][i].findIndex((v, q) => !Object.is(v, results[1][i][q]));
      assert.is(j, -1, `${what} differs at ${j}`);
    });
    const j = results[0][1].findIndex((v, q) => !Object.is(v, separate[q]));
    assert.is(j, -1, `dx differs from the norm's gradient plus the residual's, added apart, at ${j}`);
  });

  test('l2Normalize op: forward and gradient, any axis, zero rows', async () => {
    await gradCheck(
      be(),
      (x) => pd.l2Normalize(x),
      (x) => l2NormalizeRef(x, 4, 9),
      [{ shape: [4, 9] }],
      { what: 'l2Normalize [4, 9]' },
    );
    await gradCheck(
      be(),
      (x) => pd.l2Normalize(x, -1),
      (x) => l2NormalizeRef(x, 3, 129),
      [{ shape: [3, 129] }],
      { what: 'l2Normalize [3, 129]' },
    );
    // axis 0 of [5, 3] is the last axis of the transpose
    const tr = (x: ArrayLike<number>, r: number, c: number) =>
      Float64Array.from({ length: r * c }, (_, i) => x[(i % r) * c + Math.floor(i / r)]);
    await gradCheck(
      be(),
      (x) => pd.l2Normalize(x, 0),
      (x) => tr(l2NormalizeRef(tr(x, 5, 3), 3, 5), 3, 5),
      [{ shape: [5, 3] }],
      { what: 'l2Normalize axis 0' },
    );
    const x = pd.param(pd.tensor([0, 0, 0, 3, 4, 0], [2, 3], be()));
    const y = pd.l2Normalize(x);
    assertClose(await read(y), [0, 0, 0, 0.6, 0.8, 0], {}, 'l2Normalize with a zero row');
    pd.backward(pd.sum(y));
    const g = await read(x.grad!);
    assert.ok(g.every(Number.isFinite), `gradient at a zero row is finite: ${g}`);
    // torch: below eps the denominator is the constant eps, so the gradient is 1 / eps there
    assertClose(g.slice(0, 3), [1e12, 1e12, 1e12], { rtol: 1e-5 }, 'l2Normalize zero-row gradient');
    for (const t of [x, y]) t.dispose();
  });

  test('weightNorm op: forward and gradients to v and g', async () => {
    for (const [rows, cols] of [
      [1, 1],
      [5, 7],
      [3, 33],
    ]) {
      await gradCheck(
        be(),
        (v, g) => pd.weightNorm(v, g),
        (v, g) => weightNormRef(v, g, rows, cols),
        [{ shape: [rows, cols] }, { shape: [rows], data: randArray(rows, 3, 0.5, 2) }],
        { what: `weightNorm [${rows}, ${cols}], g [${rows}]` },
      );
      await gradCheck(
        be(),
        (v, g) => pd.weightNorm(v, g),
        (v, g) => weightNormRef(v, g, rows, cols),
        [{ shape: [rows, cols] }, { shape: [rows, 1], data: randArray(rows, 4, -2, 2) }],
        { what: `weightNorm [${rows}, ${cols}], g [${rows}, 1]` },
      );
    }
    await gradCheck(
      be(),
      (v, g) => pd.weightNorm(v, g),
      (v, g) => weightNormRef(v, g, 3, 8),
      [{ shape: [3, 2, 4] }, { shape: [3, 1, 1], data: randArray(3, 5, 0.5, 2) }],
      { what: 'weightNorm rank 3' },
    );
    // a frozen g (DINO's norm_last_layer): only v is differentiated
    await gradCheck(
      be(),
      (v, g) => pd.weightNorm(v, g),
      (v, g) => weightNormRef(v, g, 4, 6),
      [{ shape: [4, 6] }, { shape: [4, 1], data: [1, 1, 1, 1], noGrad: true }],
      { what: 'weightNorm frozen g' },
    );
  });

  test('no tensor or buffer outlives tidy (with grad) or dispose (without)', async () => {
    const before = { tensors: pd.liveTensors(), buffers: be().memory().liveBuffers };
    const x = pd.param(pd.tensor(randArray(4 * 6, 1), [4, 6], be()));
    const w = pd.param(pd.tensor(randArray(6, 2), [6], be()));
    const g = pd.param(pd.tensor(randArray(4, 3), [4, 1], be()));
    pd.tidy(() => {
      const y = pd.layerNorm(x, 6, { weight: w, bias: w });
      const z = pd.l2Normalize(pd.weightNorm(y, g), 0);
      pd.backward(pd.sum(z));
    });
    for (const t of [x, w, g]) assert.ok(t.grad, 'every input got a gradient');
    const outs = pd.noGrad(() => [pd.layerNorm(x, 6, { weight: w }), pd.l2Normalize(x), pd.weightNorm(x, g)]);
    await be().sync();
    for (const t of [...outs, x, w, g]) t.dispose();
    assert.equal({ tensors: pd.liveTensors(), buffers: be().memory().liveBuffers }, before);
  });

  test('shape errors', () => {
    const x = pd.zeros([2, 3], be());
    const w = pd.ones([2], be());
    assert.throws(() => pd.layerNorm(x, 2), /layerNorm: the last dim of \[2,3\] must equal normalizedSize 2/);
    assert.throws(() => pd.layerNorm(x, 3, { weight: w }), /layerNorm: weight has shape \[2\], expected \[3\]/);
    assert.throws(() => pd.l2Normalize(x, 2), /l2Normalize: axis 2 is out of range/);
    assert.throws(() => pd.weightNorm(x, x), /weightNorm: g must have shape \[2\] or \[2, 1, \.\.\.\]/);
    assert.throws(() => pd.weightNorm(w, w), /weightNorm: v must have rank ≥ 2/);
    for (const t of [x, w]) t.dispose();
  });
});
