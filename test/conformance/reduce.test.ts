import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read, f32Bits } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { argAxis, reduceAxes } from '../reference/reduce.js';
import type { Backend } from '../../src/backend/backend.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { forceReduceRowsSerial, SERIAL_MAX_LEN } from '../../src/backend/webgpu/reduce.js';
import { setLoopBudget } from '../../src/backend/webgpu/loop-budget.js';

/**
 * Runs `body` with each WebGPU kernel for reductions of rows forced (the workgroup tree, then one
 * invocation per row), then with the choice by adapter and shape; on other backends once.
 */
async function eachRowKernel(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  if (!(be instanceof WebGPUBackend)) return body('');
  try {
    for (const v of [false, true, null]) {
      forceReduceRowsSerial(v);
      await body(v === null ? ' [by adapter]' : v ? ' [invocation per row]' : ' [workgroup per row]');
    }
  } finally {
    forceReduceRowsSerial(null);
  }
}

const SHAPES: [number[], number[]][] = [
  [[1], [0]],
  [[17], [0]],
  [[3, 129], [1]],
  [[129, 3], [0]],
  [[4, 5, 6], [1]],
  [
    [4, 5, 6],
    [0, 2],
  ],
  [
    [2, 3, 4, 5],
    [1, 3],
  ],
  [
    [7, 65],
    [0, 1],
  ],
  [[1031, 3], [1]],
];

const sumF = (a: number, b: number) => a + b;

conformance('reduce', (test, be) => {
  test('sum / mean / sumSquares over axes: forward and gradient', async () => {
    await eachRowKernel(be(), async (kernel) => {
      for (const [shape, axes] of SHAPES) {
        const n = shape.reduce((a, b) => a * b, 1);
        await gradCheck(
          be(),
          (x) => pd.sum(x, axes),
          (x) => reduceAxes(x, shape, axes, sumF, 0),
          [{ shape }],
          { what: `sum${kernel} [${shape}] axes ${axes}` },
        );
        const count = axes.reduce((a, ax) => a * shape[ax], 1);
        await gradCheck(
          be(),
          (x) => pd.mean(x, axes, true),
          (x) => reduceAxes(x, shape, axes, sumF, 0).map((v) => v / count),
          [{ shape }],
          { what: `mean${kernel} [${shape}] axes ${axes}` },
        );
        await gradCheck(
          be(),
          (x) => pd.sumSquares(x, axes),
          (x) =>
            reduceAxes(
              x.map((v) => v * v),
              shape,
              axes,
              sumF,
              0,
            ),
          [{ shape, data: randArray(n, 3) }],
          { what: `sumSquares${kernel} [${shape}] axes ${axes}` },
        );
      }
    });
  });

  test('max / min over axes: forward and gradient', async () => {
    await eachRowKernel(be(), async (kernel) => {
      for (const [shape, axes] of SHAPES) {
        await gradCheck(
          be(),
          (x) => pd.max(x, axes),
          (x) => reduceAxes(x, shape, axes, Math.max, -Infinity),
          [{ shape }],
          { what: `max${kernel} [${shape}] axes ${axes}` },
        );
        await gradCheck(
          be(),
          (x) => pd.min(x, axes, true),
          (x) => reduceAxes(x, shape, axes, Math.min, Infinity),
          [{ shape }],
          { what: `min${kernel} [${shape}] axes ${axes}` },
        );
      }
    });
  });

  test('full reduction of a long vector', async () => {
    // Not forced onto one invocation per row: llvmpipe stops a loop after about 65535 iterations
    // (reduce.ts keeps rows past SERIAL_MAX_LEN on the tree); the longest such row is checked below.
    await eachRowKernel(be(), async (kernel) => {
      if (kernel.includes('invocation')) return;
      const n = 100003;
      const x = randArray(n, 9);
      const t = pd.tensor(x, [n], be());
      const s = pd.sum(t);
      let ref = 0;
      for (const v of x) ref += Math.fround(v);
      assertClose(await read(s), [ref], { rtol: 1e-4, atol: 1e-3 }, `sum${kernel} of ${n}`);
      t.dispose();
      s.dispose();
    });
  });

  test('rows as long as the invocation-per-row kernel takes', async () => {
    await eachRowKernel(be(), async (kernel) => {
      const [rows, len] = [65, SERIAL_MAX_LEN];
      const x = randArray(rows * len, 10);
      const t = pd.tensor(x, [rows, len], be());
      const s = pd.sum(t, 1);
      assertClose(await read(s), reduceAxes(x, [rows, len], [1], sumF, 0), { rtol: 1e-4, atol: 1e-3 }, `sum${kernel}`);
      t.dispose();
      s.dispose();
    });
  });

  test('argmax / argmin, first index on ties', async () => {
    for (const [shape] of SHAPES) {
      for (let axis = 0; axis < shape.length; axis++) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = randArray(n, n + axis).map((v) => Math.round(v * 4) / 4); // many ties
        const t = pd.tensor(x, shape, be());
        assert.equal(
          await read(pd.argmax(t, axis)),
          argAxis(x, shape, axis, (a, b) => a > b),
          `argmax [${shape}] axis ${axis}`,
        );
        assert.equal(
          await read(pd.argmin(t, axis)),
          argAxis(x, shape, axis, (a, b) => a < b),
          `argmin [${shape}] axis ${axis}`,
        );
        t.dispose();
      }
    }
  });

  test("long walks (llvmpipe stops an invocation's loops near 65535 iterations): columns and arg reductions", async () => {
    const len = 70001;
    // Halves: every sum is exact in f32, so a lost range cannot hide in a tolerance.
    const x = randArray(3 * len, 21).map((v) => Math.round(2 * v) / 2);
    x[3 * (len - 2) + 1] = 9; // the largest entry of column 1, near the end
    x[3 * (len - 1) + 2] = -9; // the smallest of column 2, last
    const t = pd.tensor(x, [len, 3], be());
    const ref = (f: (a: number, b: number) => number, init: number, v = x) =>
      Array.from(reduceAxes(v, [len, 3], [0], f, init));
    assert.equal(await read(pd.sum(t, 0)), ref(sumF, 0), 'sum over axis 0');
    assert.equal(
      await read(pd.sumSquares(t, 0)),
      ref(
        sumF,
        0,
        x.map((v) => v * v),
      ),
      'sumSquares over axis 0',
    );
    assert.equal(await read(pd.max(t, 0)), ref(Math.max, -Infinity), 'max over axis 0');
    assert.equal(await read(pd.min(t, 0)), ref(Math.min, Infinity), 'min over axis 0');
    assert.equal(
      await read(pd.argmax(t, 0)),
      argAxis(x, [len, 3], 0, (a, b) => a > b),
      'argmax over axis 0',
    );
    assert.equal(
      await read(pd.argmin(t, 0)),
      argAxis(x, [len, 3], 0, (a, b) => a < b),
      'argmin over axis 0',
    );
    const rows = pd.tensor(x.slice(0, 2 * len), [2, len], be());
    const rx = x.slice(0, 2 * len);
    assert.equal(
      await read(pd.argmax(rows, 1)),
      argAxis(rx, [2, len], 1, (a, b) => a > b),
      'argmax over rows',
    );
    assert.equal(
      await read(pd.argmin(rows, 1)),
      argAxis(rx, [2, len], 1, (a, b) => a < b),
      'argmin over rows',
    );
    t.dispose();
    rows.dispose();
  });

  test('WebGPU: walking long loops in ranges changes no bit (every shape with a loop budget of 40)', async () => {
    if (!(be() instanceof WebGPUBackend)) return;
    for (const [shape, axes] of SHAPES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = pd.tensor(
        randArray(n, n).map((v) => Math.round(v * 4) / 4 + v / 1024),
        shape,
        be(),
      );
      const all = async () => {
        const out: number[][] = [];
        for (const f of [pd.sum, pd.sumSquares, pd.max, pd.min]) out.push(await read(f(t, axes)));
        for (let axis = 0; axis < shape.length; axis++)
          out.push(await read(pd.argmax(t, axis)), await read(pd.argmin(t, axis)));
        return out;
      };
      const whole = await all();
      const old = setLoopBudget(40);
      try {
        const ranged = await all();
        for (let i = 0; i < whole.length; i++)
          assert.equal(f32Bits(ranged[i]), f32Bits(whole[i]), `[${shape}] axes ${axes}: result ${i}`);
      } finally {
        setLoopBudget(old);
      }
      t.dispose();
    }
  });

  test('axis errors', () => {
    const t = pd.zeros([2, 3], be());
    assert.throws(() => pd.sum(t, 2), /sum: axis 2 is out of range for a tensor of rank 2/);
    assert.throws(() => pd.sum(t, [0, 0]), /repeated axis/);
    t.dispose();
  });
});
