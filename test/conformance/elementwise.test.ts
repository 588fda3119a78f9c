import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { BINARY, UNARY, binaryRef, whereRef } from '../reference/elementwise.js';
import type { Backend, UnaryOp } from '../../src/backend/backend.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { forceElementsPerInvocation } from '../../src/backend/webgpu/elementwise.js';

/**
 * Runs `body` with the WebGPU kernels forced to 1 and to 4 elements per invocation (a GPU's and a
 * software adapter's choice), then with the choice by adapter; on other backends once.
 */
async function eachPer(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  if (!(be instanceof WebGPUBackend)) return body('');
  try {
    for (const per of [1, 4, null]) {
      forceElementsPerInvocation(per);
      await body(per === null ? ' [by adapter]' : ` [${per} per invocation]`);
    }
  } finally {
    forceElementsPerInvocation(null);
  }
}

const SIZES = [1, 3, 17, 129, 1031];

// Domains keep each op away from its singularities so finite differences are meaningful.
const UNARY_CASES: { op: UnaryOp; fn: (x: pd.Tensor) => pd.Tensor; a?: number; b?: number; lo: number; hi: number }[] =
  [
    { op: 'neg', fn: pd.neg, lo: -2, hi: 2 },
    { op: 'exp', fn: pd.exp, lo: -3, hi: 3 },
    { op: 'log', fn: pd.log, lo: 0.2, hi: 4 },
    { op: 'sqrt', fn: pd.sqrt, lo: 0.2, hi: 4 },
    { op: 'rsqrt', fn: pd.rsqrt, lo: 0.2, hi: 4 },
    { op: 'abs', fn: pd.abs, lo: -2, hi: 2 },
    { op: 'relu', fn: pd.relu, lo: -2, hi: 2 },
    { op: 'gelu', fn: pd.gelu, lo: -4, hi: 4 },
    { op: 'tanh', fn: pd.tanh, lo: -3, hi: 3 },
    { op: 'sigmoid', fn: pd.sigmoid, lo: -4, hi: 4 },
    { op: 'pow', fn: (x) => pd.pow(x, 2.5), a: 2.5, lo: 0.2, hi: 3 },
    { op: 'affine', fn: (x) => pd.affine(x, -1.5, 0.25), a: -1.5, b: 0.25, lo: -2, hi: 2 },
    { op: 'clamp', fn: (x) => pd.clamp(x, -0.5, 0.7), a: -0.5, b: 0.7, lo: -2, hi: 2 },
    { op: 'square', fn: pd.square, lo: -2, hi: 2 },
    { op: 'recip', fn: pd.reciprocal, lo: 0.3, hi: 3 },
  ];

const BINARY_CASES: { op: string; fn: (a: pd.Tensor, b: pd.Tensor) => pd.Tensor; lo: number; hi: number }[] = [
  { op: 'add', fn: pd.add, lo: -2, hi: 2 },
  { op: 'sub', fn: pd.sub, lo: -2, hi: 2 },
  { op: 'mul', fn: pd.mul, lo: -2, hi: 2 },
  { op: 'div', fn: pd.div, lo: 0.5, hi: 2 },
  { op: 'max', fn: pd.maximum, lo: -2, hi: 2 },
  { op: 'min', fn: pd.minimum, lo: -2, hi: 2 },
  { op: 'pow', fn: pd.pow, lo: 0.5, hi: 2 },
];

const BROADCASTS: [number[], number[]][] = [
  [[17], [17]],
  [[3, 5], [5]],
  [
    [3, 1, 7],
    [1, 4, 7],
  ],
  [
    [2, 3, 4, 5],
    [3, 1, 5],
  ],
  [[1], [129]],
  [
    [2, 1, 3, 1, 2, 3],
    [1, 2, 1, 3, 2, 1],
  ],
];

conformance('elementwise', (test, be) => {
  for (const c of UNARY_CASES) {
    test(`${c.op}: forward on odd sizes`, async () => {
      await eachPer(be(), async (kernel) => {
        for (const n of SIZES) {
          const x = randArray(n, n, c.lo, c.hi);
          const t = pd.tensor(x, [n], be());
          const y = c.fn(t);
          const ref = Array.from(x, (v) => UNARY[c.op](Math.fround(v), c.a ?? 0, c.b ?? 0));
          assertClose(await read(y), ref, { rtol: 2e-6, atol: 2e-6 }, `${c.op}${kernel} n=${n}`);
          t.dispose();
          y.dispose();
        }
      });
    });
    test(`${c.op}: gradient`, async () => {
      await eachPer(be(), async (kernel) => {
        await gradCheck(
          be(),
          c.fn,
          (x) => x.map((v) => UNARY[c.op](v, c.a ?? 0, c.b ?? 0)),
          [{ shape: [3, 7], data: randArray(21, 5, c.lo, c.hi) }],
          { what: `${c.op}${kernel}` },
        );
      });
    });
  }

  for (const c of BINARY_CASES) {
    test(`${c.op}: broadcasting forward and gradient`, async () => {
      await eachPer(be(), async (kernel) => {
        for (const [as, bs] of BROADCASTS) {
          const na = as.reduce((x, y) => x * y, 1);
          const nb = bs.reduce((x, y) => x * y, 1);
          const da = randArray(na, na + 1, c.lo, c.hi);
          const db = randArray(nb, nb + 2, c.lo, c.hi);
          await gradCheck(
            be(),
            c.fn,
            (a, b) => binaryRef(BINARY[c.op], a, as, b, bs),
            [
              { shape: as, data: da },
              { shape: bs, data: db },
            ],
            { what: `${c.op}${kernel} [${as}]x[${bs}]` },
          );
        }
      });
    });
  }

  test('comparisons and scalar operands', async () => {
    const a = pd.tensor([1, 2, 3, 4], [4], be());
    const b = pd.tensor([3, 2, 1, 4], [4], be());
    assert.equal(await read(pd.greater(a, b)), [0, 0, 1, 0]);
    assert.equal(await read(pd.greaterEqual(a, b)), [0, 1, 1, 1]);
    assert.equal(await read(pd.less(a, 2)), [1, 0, 0, 0]);
    assert.equal(await read(pd.lessEqual(a, b)), [1, 1, 0, 1]);
    assert.equal(await read(pd.equal(a, b)), [0, 1, 0, 1]);
    assert.equal(await read(pd.add(a, 1)), [2, 3, 4, 5]);
    assert.equal(await read(pd.sub(10, a)), [9, 8, 7, 6]);
    assert.equal(await read(pd.mul(2, a)), [2, 4, 6, 8]);
    assertClose(await read(pd.div(1, a)), [1, 0.5, 1 / 3, 0.25]);
    assert.equal(await read(pd.maximum(a, 2.5)), [2.5, 2.5, 3, 4]);
  });

  test('where: broadcasting forward and gradient', async () => {
    const cs = [3, 1],
      as = [1, 4],
      bs = [3, 4];
    const cond = Float64Array.from([1, 0, 1]);
    await eachPer(be(), async (kernel) => {
      await gradCheck(
        be(),
        (c, a, b) => pd.where(c, a, b),
        (c, a, b) => whereRef(c, cs, a, as, b, bs),
        [{ shape: cs, data: cond, noGrad: true }, { shape: as }, { shape: bs }],
        { what: `where${kernel}` },
      );
    });
  });

  test('a tensor used twice accumulates both gradients', async () => {
    await gradCheck(
      be(),
      (x) => pd.mul(pd.add(x, x), x),
      (x) => x.map((v) => 2 * v * v),
      [{ shape: [5] }],
      { what: 'x*(x+x)' },
    );
  });

  test('binary, where and copy over one long contiguous run (split into rows for the threads)', async () => {
    await eachPer(be(), longRun);
  });

  const longRun = async (kernel: string) => {
    // 3·2^15 elements collapse to one run that the wasm backend splits into rows of 2^14; the
    // broadcast scalar keeps stride 0 through the split; concat copies each input as one run.
    const n = 3 << 15,
      shape = [3, 1 << 15];
    const x = randArray(n, 7, -2, 2),
      y = randArray(n, 8, -2, 2),
      c = randArray(n, 9, -1, 1).map((v) => (v > 0 ? 1 : 0));
    const tx = pd.tensor(x, shape, be()),
      ty = pd.tensor(y, shape, be()),
      tc = pd.tensor(c, shape, be());
    const s = pd.tensor([0.5], [1], be());
    const sum = pd.add(tx, ty),
      scaled = pd.mul(tx, s),
      picked = pd.where(tc, tx, ty);
    const joined = pd.concat([tx, ty], 0);
    assertClose(
      await read(sum),
      binaryRef((a, b) => a + b, x, shape, y, shape),
      { rtol: 1e-6, atol: 1e-6 },
      `add${kernel}`,
    );
    assertClose(
      await read(scaled),
      binaryRef((a, b) => a * b, x, shape, Float64Array.from([0.5]), [1]),
      { rtol: 1e-6, atol: 1e-6 },
      `mul by scalar${kernel}`,
    );
    const f32 = (v: Float64Array) => v.map(Math.fround);
    assertClose(
      await read(picked),
      whereRef(c, shape, f32(x), shape, f32(y), shape),
      { rtol: 0, atol: 0 },
      `where${kernel}`,
    );
    assertClose(await read(joined), [...f32(x), ...f32(y)], { rtol: 0, atol: 0 }, `concat${kernel}`);
    for (const t of [tx, ty, tc, s, sum, scaled, picked, joined]) t.dispose();
  };

  test('large fill and unary beyond one dispatch dimension', async () => {
    await eachPer(be(), async (kernel) => {
      // past 65535 workgroups of 256 invocations at 1 element each (at 4 the same 2-D grid needs a
      // buffer past llvmpipe's 128 MiB binding limit; the invocation index is computed the same way)
      const n = 65535 * 256 + 1000;
      const t = pd.full([n], 2, be());
      const y = pd.affine(t, 3, 1);
      const d = await y.data();
      for (const i of [0, 65535 * 256 + 3, n - 1]) assert.is(d[i], 7, `${kernel} at ${i}`);
      t.dispose();
      y.dispose();
    });
  });

  test('shape errors name the op and the shapes', () => {
    const a = pd.zeros([2, 3], be());
    const b = pd.zeros([4], be());
    assert.throws(() => pd.add(a, b), /add: shapes \[2,3\] and \[4\] do not broadcast/);
    assert.throws(() => pd.clamp(a, 1, 0), /clamp: min 1 must not exceed max 0/);
    a.dispose();
    b.dispose();
  });
});
