import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { matmulParams, type Backend, type MatmulParams } from '../../src/backend/backend.js';
import { linearRef, matmulRef, type MatmulRefParams } from '../reference/matmul.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { forceMatmulVariant, MATMUL_VARIANTS, matmulVariant } from '../../src/backend/webgpu/matmul.js';
import { setLoopBudget } from '../../src/backend/webgpu/loop-budget.js';

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

// m, n, k: odd sizes, edges of the 4x8 register tile, the 64x64 GPU tile and the 128-row tile of
// the large-product WebGPU kernel, k past one 256-deep K block, m past one and several 128-row
// chunks, and m ≠ n ≠ k throughout.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 3, 33],
  [33, 17, 1],
  [1, 129, 17],
  [129, 33, 3],
  [65, 70, 300],
  [133, 9, 20],
  [127, 63, 17],
  [255, 65, 31],
  [520, 12, 40],
];

/** Products the WebGPU backend's own choice sends to its 128-row kernel (m ≥ 1024), odd sizes around its tiles. */
const LARGE_SHAPES: [number, number, number][] = [
  [1025, 63, 17],
  [1151, 65, 33],
];

/**
 * Runs `body` once per WebGPU matmul kernel (forced), then once with the choice by shape; on other
 * backends once. `what` names the kernel for messages.
 */
async function eachKernel(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  if (!(be instanceof WebGPUBackend)) return body('');
  try {
    for (const v of [...MATMUL_VARIANTS, null]) {
      forceMatmulVariant(v);
      await body(` [${v ?? 'by shape'}]`);
    }
  } finally {
    forceMatmulVariant(null);
  }
}

/**
 * Runs backend.matmul on random data against the f64 reference. `halves`: values in steps of 1/2,
 * so that products and sums are exact in f32 and a lost part of k cannot hide in the tolerance.
 */
async function checkKernel(
  be: Backend,
  p: MatmulRefParams & { seed: number; halves?: boolean },
  what: string,
): Promise<void> {
  const { batch, m, n, k } = p;
  const sa = p.strideA ?? m * k,
    sb = p.strideB ?? k * n;
  const aLen = sa === 0 ? m * k : batch * sa,
    bLen = sb === 0 ? k * n : batch * sb;
  const q = (v: Float64Array) => (p.halves ? v.map((x) => Math.round(2 * x) / 2) : v);
  const a = q(randArray(aLen, p.seed)),
    b = q(randArray(bLen, p.seed + 1));
  const bias = p.bias ? Float64Array.from(p.bias) : undefined;
  const ta = pd.tensor(a, [aLen], be),
    tb = pd.tensor(b, [bLen], be);
  const tbias = bias ? pd.tensor(bias, [n], be) : null;
  const out = p.init ? pd.tensor(p.init, [batch * m * n], be) : pd.empty([batch * m * n], be);
  const params: MatmulParams = {
    batch,
    m,
    n,
    k,
    transA: p.transA ?? false,
    transB: p.transB ?? false,
    strideA: sa,
    strideB: sb,
    bias: tbias?.storage ?? null,
    activation: p.gelu ? 'gelu' : 'none',
    accumulate: !!p.init,
  };
  be.matmul(ta.storage, tb.storage, out.storage, params);
  const expected = matmulRef(Array.from(a, Math.fround), Array.from(b, Math.fround), {
    ...p,
    strideA: sa,
    strideB: sb,
    bias: bias && Array.from(bias, Math.fround),
  });
  assertClose(await read(out), expected, { rtol: 1e-5, atol: 1e-5 * (1 + Math.sqrt(k)) }, what);
  for (const t of [ta, tb, tbias, out]) t?.dispose();
}

conformance('matmul', (test, be) => {
  test('kernel: odd sizes, every transpose combination', async () => {
    await eachKernel(be(), async (kernel) => {
      let seed = 1;
      for (const [m, n, k] of SHAPES) {
        for (const [transA, transB] of TRANSPOSES) {
          await checkKernel(
            be(),
            { batch: 1, m, n, k, transA, transB, seed: seed++ },
            `${m}x${n}x${k} tA=${transA} tB=${transB}${kernel}`,
          );
        }
      }
    });
  });

  test('kernel: large products (the 128-row WebGPU kernel by shape), every transpose, epilogues', async () => {
    if (be() instanceof WebGPUBackend) {
      for (const [m, n, k] of LARGE_SHAPES) assert.is(matmulVariant({ batch: 1, m, n, k }), 'vec4x128');
    }
    let seed = 100;
    for (const [m, n, k] of LARGE_SHAPES) {
      for (const [transA, transB] of TRANSPOSES) {
        await checkKernel(
          be(),
          { batch: 1, m, n, k, transA, transB, seed: seed++ },
          `${m}x${n}x${k} tA=${transA} tB=${transB}`,
        );
      }
      const bias = randArray(n, n);
      await checkKernel(
        be(),
        { batch: 2, m, n, k, transB: true, bias, gelu: true, seed: seed++ },
        `bias+gelu ${m}x${n}x${k}`,
      );
      const init = randArray(2 * m * n, seed);
      await checkKernel(
        be(),
        { batch: 2, m, n, k, transA: true, init, strideA: 0, seed: seed++ },
        `accumulate ${m}x${n}x${k}`,
      );
    }
  });

  test('kernel: every WebGPU kernel gives the same bits (the choice never changes training numbers)', async () => {
    if (!(be() instanceof WebGPUBackend)) return;
    for (const [m, n, k, transA, transB, gelu, accumulate] of [
      [200, 70, 300, false, true, true, false],
      [1030, 65, 37, true, false, false, true],
      [64, 129, 1000, true, true, false, false],
    ] as const) {
      const a = pd.tensor(randArray(m * k, m), [m * k], be()),
        b = pd.tensor(randArray(k * n, n), [k * n], be());
      const bias = gelu ? pd.tensor(randArray(n, k), [n], be()) : null;
      const init = randArray(m * n, 7);
      const outputs: Float32Array[] = [];
      const runs: [string, number][] = MATMUL_VARIANTS.map((v) => [v, 0]);
      // Again with k in slices of 16, a dispatch each (src/backend/webgpu/loop-budget.ts): same bits.
      for (const v of MATMUL_VARIANTS) runs.push([v, 40]);
      const names = runs.map(([v, budget]) => (budget ? `${v} with k in slices of 16` : v));
      try {
        for (const [v, budget] of runs) {
          forceMatmulVariant(v as (typeof MATMUL_VARIANTS)[number]);
          const old = budget ? setLoopBudget(budget) : 0;
          const out = pd.tensor(init, [m * n], be());
          be().matmul(a.storage, b.storage, out.storage, {
            ...{ batch: 1, m, n, k, transA, transB, strideA: 0, strideB: 0 },
            bias: bias?.storage ?? null,
            activation: gelu ? 'gelu' : 'none',
            accumulate,
          });
          if (budget) setLoopBudget(old);
          outputs.push(Float32Array.from(await read(out)));
          out.dispose();
        }
      } finally {
        forceMatmulVariant(null);
      }
      for (let v = 1; v < outputs.length; v++) {
        const differ = outputs[v].findIndex((x, i) => !Object.is(x, outputs[0][i]));
        assert.is(differ, -1, `${m}x${n}x${k}: ${names[v]} differs from ${names[0]} at ${differ}`);
      }
      for (const t of [a, b, bias]) t?.dispose();
    }
  });

  test('kernel: batches, with each operand shared across the batch', async () => {
    const m = 70,
      n = 72,
      k = 130; // big enough that two threads split it inside a batch
    await eachKernel(be(), async (kernel) => {
      for (const [strideA, strideB] of [
        [m * k, k * n],
        [0, k * n],
        [m * k, 0],
      ]) {
        for (const [transA, transB] of TRANSPOSES) {
          await checkKernel(
            be(),
            { batch: 3, m, n, k, transA, transB, strideA, strideB, seed: strideA + strideB },
            `batch 3 strideA=${strideA} strideB=${strideB} tA=${transA} tB=${transB}${kernel}`,
          );
        }
      }
      await checkKernel(
        be(),
        { batch: 5, m: 3, n: 17, k: 9, strideA: 0, transB: true, seed: 9 },
        `batch 5 small${kernel}`,
      );
    });
  });

  test('kernel: a batch past one dispatch dimension (65535 workgroups)', async () => {
    await eachKernel(be(), (kernel) =>
      checkKernel(be(), { batch: 65537, m: 1, n: 2, k: 3, seed: 41 }, `batch 65537${kernel}`),
    );
  });

  test('kernel: bias and GELU epilogue', async () => {
    await eachKernel(be(), async (kernel) => {
      for (const [m, n, k] of [
        [5, 19, 7],
        [37, 70, 300],
        [1, 3, 1],
        [130, 65, 17],
      ]) {
        const bias = randArray(n, n + 3);
        const at = `${m}x${n}x${k}${kernel}`;
        await checkKernel(be(), { batch: 1, m, n, k, transB: true, bias, seed: 11 }, `bias ${at}`);
        await checkKernel(be(), { batch: 2, m, n, k, bias, gelu: true, seed: 12 }, `bias+gelu ${at}`);
        await checkKernel(be(), { batch: 1, m, n, k, transA: true, gelu: true, seed: 13 }, `gelu ${at}`);
        await checkKernel(
          be(),
          { batch: 1, m, n, k, transA: true, transB: true, bias, gelu: true, seed: 14 },
          `tA tB bias+gelu ${at}`,
        );
      }
    });
  });

  test('kernel: GELU epilogue over a wide range (tails and underflow)', async () => {
    await eachKernel(be(), async (kernel) => {
      const m = 401,
        n = 5;
      const a = Array.from({ length: m }, (_, i) => -12 + (24 * i) / (m - 1));
      const b = [1, -1, 0.5, 1.7, -0.3];
      const ta = pd.tensor(a, [m, 1], be()),
        tb = pd.tensor(b, [1, n], be()),
        out = pd.empty([m, n], be());
      be().matmul(ta.storage, tb.storage, out.storage, matmulParams({ batch: 1, m, n, k: 1, activation: 'gelu' }));
      const expected = matmulRef(Array.from(a, Math.fround), Array.from(b, Math.fround), {
        batch: 1,
        m,
        n,
        k: 1,
        gelu: true,
      });
      assertClose(await read(out), expected, { rtol: 1e-5, atol: 3e-7 }, `gelu epilogue${kernel}`);
      for (const t of [ta, tb, out]) t.dispose();
    });
  });

  test('kernel: GELU epilogue keeping its pre-activation (odd sizes, transposes, both tile heights)', async () => {
    // out = gelu(z) and pre = z = op(A)·op(B) + bias from one pass, against the f64 reference; and bit
    // for bit: out is what the epilogue writes without keeping z, pre what the product writes without
    // GELU, and out is the elementwise GELU of pre (so a training step's numbers do not move).
    await eachKernel(be(), async (kernel) => {
      let seed = 90;
      for (const [m, n, k] of [...SHAPES.slice(1, 9), ...LARGE_SHAPES]) {
        for (const [transA, transB] of TRANSPOSES) {
          const batch = m * n * k > 200000 ? 1 : 2;
          const at = `${batch}x${m}x${n}x${k} tA=${transA} tB=${transB}${kernel}`;
          const a = randArray(batch * m * k, seed++, -2, 2),
            b = randArray(batch * k * n, seed++);
          const bias = transB ? randArray(n, seed++) : undefined;
          const ta = pd.tensor(a, [a.length], be()),
            tb = pd.tensor(b, [b.length], be()),
            tbias = bias ? pd.tensor(bias, [n], be()) : null;
          const size = batch * m * n;
          const [out, pre, plain, unkept, act] = [0, 1, 2, 3, 4].map(() => pd.empty([size], be()));
          const p = matmulParams({ batch, m, n, k, transA, transB, strideA: m * k, strideB: k * n });
          const withBias = { ...p, bias: tbias?.storage ?? null };
          be().matmul(ta.storage, tb.storage, out.storage, {
            ...withBias,
            activation: 'gelu',
            preActivation: pre.storage,
          });
          be().matmul(ta.storage, tb.storage, plain.storage, withBias);
          be().matmul(ta.storage, tb.storage, unkept.storage, { ...withBias, activation: 'gelu' });
          be().unary('gelu', pre.storage, act.storage, size, 0, 0);
          const ref = { batch, m, n, k, transA, transB, bias: bias && Array.from(bias, Math.fround) };
          const [fa, fb] = [Array.from(a, Math.fround), Array.from(b, Math.fround)];
          const tol = { rtol: 1e-5, atol: 2e-5 * (1 + Math.sqrt(k)) };
          assertClose(await read(out), matmulRef(fa, fb, { ...ref, gelu: true }), tol, `gelu(z) ${at}`);
          assertClose(await read(pre), matmulRef(fa, fb, ref), tol, `z ${at}`);
          const bits = async (x: pd.Tensor, y: pd.Tensor, what: string) => {
            const [vx, vy] = [await read(x), await read(y)];
            const i = vx.findIndex((v, j) => !Object.is(v, vy[j]));
            assert.is(i, -1, `${what} ${at}: differs at ${i}`);
          };
          await bits(pre, plain, 'z is the plain product');
          await bits(out, unkept, 'gelu(z) is the unkept epilogue');
          await bits(out, act, 'gelu(z) is the elementwise GELU of z');
          for (const t of [ta, tb, tbias, out, pre, plain, unkept, act]) t?.dispose();
        }
      }
    });
  });

  test('kernel: a kept pre-activation needs the GELU', () => {
    const t = pd.empty([4], be());
    assert.throws(
      () =>
        be().matmul(
          t.storage,
          t.storage,
          t.storage,
          matmulParams({ batch: 1, m: 2, n: 2, k: 1, preActivation: t.storage }),
        ),
      /pre-activation needs an activation/,
    );
    t.dispose();
  });

  test("kernel: long k (llvmpipe stops an invocation's loops near 65535 iterations), every kernel and epilogue", async () => {
    // One shape past the cap (about 50000 for the vec4 kernels); transposes and slice edges at small
    // sizes are the same-bits test's, with k in slices of 16.
    const [m, n, k] = [5, 7, 70001];
    let seed = 300;
    await eachKernel(be(), async (kernel) => {
      const [transA, transB] = TRANSPOSES[seed % 4];
      const w = `${m}x${n}x${k}${kernel}`;
      await checkKernel(
        be(),
        { batch: 1, m, n, k, transA, transB, halves: true, seed: seed++ },
        `tA=${transA} tB=${transB} ${w}`,
      );
      const bias = randArray(n, n);
      await checkKernel(be(), { batch: 2, m, n, k, bias, gelu: true, halves: true, seed: seed++ }, `bias+gelu ${w}`);
      const init = randArray(2 * m * n, seed);
      await checkKernel(be(), { batch: 2, m, n, k, init, strideA: 0, halves: true, seed: seed++ }, `accumulate ${w}`);
    });
  });

  test('kernel: accumulate adds to the output', async () => {
    await eachKernel(be(), async (kernel) => {
      for (const [m, n, k] of [
        [3, 5, 7],
        [33, 20, 270],
        [129, 66, 19],
      ]) {
        for (const [transA, transB] of TRANSPOSES) {
          const init = randArray(2 * m * n, 77);
          await checkKernel(
            be(),
            { batch: 2, m, n, k, transA, transB, init, strideB: 0, seed: 21 },
            `accumulate ${m}x${n}x${k} tA=${transA} tB=${transB}${kernel}`,
          );
        }
      }
    });
  });

  test('kernel: row sums of op(A) alongside the product (odd sizes, k past one K block)', async () => {
    for (const [m, n, k] of [...SHAPES, [6, 4, 0]] as [number, number, number][]) {
      for (const transA of [false, true]) {
        const a = randArray(m * k, m + k),
          b = randArray(k * n, n);
        const ta = pd.tensor(a.length ? a : [0], [Math.max(1, m * k)], be()),
          tb = pd.tensor(b.length ? b : [0], [Math.max(1, k * n)], be());
        const out = pd.empty([m * n], be()),
          sums = pd.full([m], 123, be());
        be().matmul(
          ta.storage,
          tb.storage,
          out.storage,
          matmulParams({ batch: 1, m, n, k, transA, rowSumsA: sums.storage }),
        );
        const ref = new Array<number>(m).fill(0);
        for (let i = 0; i < m; i++)
          for (let kk = 0; kk < k; kk++) ref[i] += Math.fround(transA ? a[kk * m + i] : a[i * k + kk]);
        assertClose(
          await read(sums),
          ref,
          { rtol: 1e-5, atol: 1e-5 * (1 + Math.sqrt(k)) },
          `row sums ${m}x${n}x${k} tA=${transA}`,
        );
        assertClose(
          await read(out),
          matmulRef(Array.from(a, Math.fround), Array.from(b, Math.fround), { batch: 1, m, n, k, transA }),
          { rtol: 1e-5, atol: 1e-5 * (1 + Math.sqrt(k)) },
          `product with row sums ${m}x${n}x${k} tA=${transA}`,
        );
        for (const t of [ta, tb, out, sums]) t.dispose();
      }
    }
    const t = pd.zeros([8], be());
    assert.throws(
      () =>
        be().matmul(
          t.storage,
          t.storage,
          t.storage,
          matmulParams({ batch: 2, m: 1, n: 2, k: 2, strideA: 2, rowSumsA: t.storage }),
        ),
      /row sums of A need batch 1/,
    );
    t.dispose();
  });

  test('kernel: k = 0 writes the bias (or zeros)', async () => {
    await eachKernel(be(), async (kernel) => {
      await checkKernel(be(), { batch: 2, m: 3, n: 10, k: 0, bias: randArray(10, 5), seed: 31 }, `k=0 bias${kernel}`);
      await checkKernel(be(), { batch: 1, m: 5, n: 9, k: 0, seed: 32 }, `k=0${kernel}`);
    });
  });

  test('op: batch dims broadcast like numpy', async () => {
    const cases: [number[], number[], pd.MatmulOptions][] = [
      [[2, 3, 4], [4, 5], {}],
      [[3, 4], [2, 4, 5], {}],
      [[2, 1, 3, 4], [3, 5, 4], { transB: true }],
      [[1, 4, 3], [2, 2, 4, 5], { transA: true }],
    ];
    for (const [as, bs, o] of cases) {
      await gradCheck(
        be(),
        (a, b) => pd.matmul(a, b, o),
        (a, b) => broadcastMatmulRef(a, as, b, bs, o),
        [{ shape: as }, { shape: bs }],
        { what: `matmul [${as}]·[${bs}] ${JSON.stringify(o)}` },
      );
    }
  });

  test('gradient: 2-D, every transpose combination', async () => {
    for (const [transA, transB] of TRANSPOSES) {
      const [m, n, k] = [3, 4, 5];
      await gradCheck(
        be(),
        (a, b) => pd.matmul(a, b, { transA, transB }),
        (a, b) => matmulRef(a, b, { batch: 1, m, n, k, transA, transB }),
        [{ shape: transA ? [k, m] : [m, k] }, { shape: transB ? [n, k] : [k, n] }],
        { what: `tA=${transA} tB=${transB}` },
      );
    }
  });

  test('gradient: batched, and an operand shared across the batch', async () => {
    const [batch, m, n, k] = [3, 2, 4, 5];
    for (const [transA, transB] of TRANSPOSES) {
      const as = transA ? [k, m] : [m, k],
        bs = transB ? [n, k] : [k, n];
      const o = { transA, transB };
      const ref = (sa: number, sb: number) => (a: Float64Array, b: Float64Array) =>
        matmulRef(a, b, { batch, m, n, k, transA, transB, strideA: sa, strideB: sb });
      await gradCheck(
        be(),
        (a, b) => pd.matmul(a, b, o),
        ref(m * k, k * n),
        [{ shape: [batch, ...as] }, { shape: [batch, ...bs] }],
        { what: `batched ${JSON.stringify(o)}` },
      );
      await gradCheck(be(), (a, b) => pd.matmul(a, b, o), ref(0, k * n), [{ shape: as }, { shape: [batch, ...bs] }], {
        what: `shared A ${JSON.stringify(o)}`,
      });
      await gradCheck(be(), (a, b) => pd.matmul(a, b, o), ref(m * k, 0), [{ shape: [batch, ...as] }, { shape: bs }], {
        what: `shared B ${JSON.stringify(o)}`,
      });
    }
  });

  test('linear: forward with fused bias and GELU (no grad)', async () => {
    const [rows, inF, outF] = [37, 19, 70];
    const x = randArray(rows * inF, 1, -2, 2),
      w = randArray(outF * inF, 2),
      b = randArray(outF, 3);
    const tx = pd.tensor(x, [rows, inF], be()),
      tw = pd.tensor(w, [outF, inF], be()),
      tbias = pd.tensor(b, [outF], be());
    for (const act of ['none', 'gelu'] as const) {
      const y = pd.linear(tx, tw, tbias, act);
      assert.equal(y.shape, [rows, outF]);
      assertClose(
        await read(y),
        linearRef(x, w, b, rows, inF, outF, act === 'gelu'),
        { rtol: 1e-5, atol: 5e-5 },
        `linear ${act}`,
      );
      y.dispose();
    }
    for (const t of [tx, tw, tbias]) t.dispose();
  });

  test('linear: gradients (bias, GELU, leading dims)', async () => {
    const [inF, outF] = [5, 4];
    for (const [lead, bias, act] of [
      [[3], true, 'none'],
      [[2, 3], true, 'gelu'],
      [[4], false, 'gelu'],
      [[2, 1, 2], false, 'none'],
    ] as const) {
      const rows = (lead as readonly number[]).reduce((p, d) => p * d, 1);
      const inputs = [{ shape: [...lead, inF] }, { shape: [outF, inF] }, ...(bias ? [{ shape: [outF] }] : [])];
      await gradCheck(
        be(),
        (x, w, b) => pd.linear(x, w, b ?? null, act),
        (x, w, b) => linearRef(x, w, b, rows, inF, outF, act === 'gelu'),
        inputs,
        { what: `linear [${lead}] bias=${bias} ${act}` },
      );
    }
  });

  test('linear: with autograd, one node with GELU gives the bits of the product then the GELU op', async () => {
    // The fused node (epilogue keeps z; backward dz = dy·gelu'(z), then the products) against the
    // composition it replaced, gelu(linear(x, W, b)) with the GELU recorded as its own op.
    for (const [lead, inF, outF, bias] of [
      [[37], 19, 70, true],
      [[3, 43], 64, 256, true],
      [[5], 7, 9, false],
    ] as const) {
      const shape = [...lead, inF];
      const rows = lead.reduce((p, d) => p * d, 1);
      const x = randArray(rows * inF, 4, -2, 2),
        w = randArray(outF * inF, 5),
        b = randArray(outF, 6),
        dy = randArray(rows * outF, 7);
      const results: number[][][] = [];
      for (const fused of [true, false]) {
        const tx = pd.param(pd.tensor(x, shape, be())),
          tw = pd.param(pd.tensor(w, [outF, inF], be())),
          tb = bias ? pd.param(pd.tensor(b, [outF], be())) : null;
        const y = pd.tidy(() => {
          const out = fused ? pd.linear(tx, tw, tb, 'gelu') : pd.gelu(pd.linear(tx, tw, tb));
          pd.backward(out, pd.tensor(dy, out.shape, be()));
          return out;
        });
        results.push([
          await read(y),
          await read(tx.grad!),
          await read(tw.grad!),
          ...(tb ? [await read(tb.grad!)] : []),
        ]);
        for (const t of [tx, tw, tb, y]) t?.dispose();
        for (const t of [tx, tw, tb]) t?.grad?.dispose();
      }
      ['y', 'dx', 'dW', 'db'].slice(0, results[0].length).forEach((what, i) => {
        const j = results[0][i].findIndex((v, q) => !Object.is(v, results[1][i][q]));
        assert.is(j, -1, `[${lead}] ${inF}→${outF}: ${what} differs at ${j}`);
      });
    }
  });

  test('shape errors name the op and the shapes', () => {
    const a = pd.zeros([2, 3], be()),
      b = pd.zeros([4, 5], be()),
      v = pd.zeros([3], be());
    assert.throws(() => pd.matmul(a, b), /matmul: inner dims differ/);
    assert.throws(() => pd.matmul(a, v), /matmul: operands need at least 2 dims/);
    assert.throws(() => pd.linear(a, b), /linear: input \[2,3\] does not end in 5/);
    assert.throws(() => pd.linear(b, b, v), /linear: bias must be \[4\]/);
    for (const t of [a, b, v]) t.dispose();
  });
});

/** Reference for matmul with numpy broadcasting of the batch dims. */
function broadcastMatmulRef(
  a: Float64Array,
  as: number[],
  b: Float64Array,
  bs: number[],
  o: pd.MatmulOptions,
): Float64Array {
  const [a0, a1] = as.slice(-2),
    [b0, b1] = bs.slice(-2);
  const m = o.transA ? a1 : a0,
    k = o.transA ? a0 : a1,
    n = o.transB ? b0 : b1;
  const ab = as.slice(0, -2),
    bb = bs.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const pa = [...Array(rank - ab.length).fill(1), ...ab],
    pb = [...Array(rank - bb.length).fill(1), ...bb];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    let ia = 0,
      ib = 0,
      r = t;
    const idx: number[] = [];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    for (let d = 0; d < rank; d++) {
      ia = ia * pa[d] + (pa[d] === 1 ? 0 : idx[d]);
      ib = ib * pb[d] + (pb[d] === 1 ? 0 : idx[d]);
    }
    const y = matmulRef(a.subarray(ia * m * k, (ia + 1) * m * k), b.subarray(ib * k * n, (ib + 1) * k * n), {
      batch: 1,
      m,
      n,
      k,
      transA: o.transA,
      transB: o.transB,
    });
    out.set(y, t * m * n);
  }
  return out;
}
