import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read, type Tol } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { crossEntropyRef, softmaxGradRef, softmaxRef } from '../reference/softmax.js';

// [rows, cols]: odd widths around the SIMD width and the WGSL workgroup sizes, and rows longer
// than 65536 (K prototypes).
const SIZES: [number, number][] = [
  [5, 1],
  [4, 3],
  [3, 17],
  [3, 129],
  [2, 1031],
  [2, 4099],
  [1, 70001],
];
const PROB: Tol = { rtol: 2e-5, atol: 1e-7 };
const LOGP: Tol = { rtol: 1e-5, atol: 2e-5 };

function upload(be: Backend, data: ArrayLike<number>): ReturnType<Backend['alloc']> {
  const s = be.alloc(data.length, 'f32');
  be.upload(s, Float32Array.from(data));
  return s;
}

async function softmaxKernel(
  be: Backend,
  x: Float64Array,
  rows: number,
  cols: number,
  log: boolean,
): Promise<Float32Array> {
  const sx = upload(be, x);
  const so = be.alloc(rows * cols, 'f32');
  be.softmax(sx, so, rows, cols, log);
  const out = (await be.download(so)) as Float32Array;
  be.free(sx);
  be.free(so);
  return out;
}

/** Rows of large-magnitude logits: exp(±80) alone would overflow or underflow in f32. */
function extremeRows(cols: number): Float64Array {
  const x = new Float64Array(6 * cols);
  const r = randArray(6 * cols, 77);
  for (let c = 0; c < cols; c++) {
    x[c] = 80 + r[c]; // all large positive
    x[cols + c] = -80 + r[cols + c]; // all large negative
    x[2 * cols + c] = c % 2 ? 80 : -80; // ±80 alternating
    x[3 * cols + c] = 1000 * r[3 * cols + c]; // spread over ±1000
    x[4 * cols + c] = 3.5; // constant row: uniform distribution
    x[5 * cols + c] = c === cols - 1 ? 0 : -1e30; // one survivor among "masked" logits
  }
  return x;
}

conformance('softmax', (test, be) => {
  test('softmax / log-softmax kernels against the f64 reference, odd and long rows', async () => {
    for (const [rows, cols] of SIZES) {
      const x = randArray(rows * cols, rows * 1000 + cols, -4, 4).map(Math.fround);
      assertClose(
        await softmaxKernel(be(), x, rows, cols, false),
        softmaxRef(x, rows, cols),
        PROB,
        `softmax [${rows}, ${cols}]`,
      );
      assertClose(
        await softmaxKernel(be(), x, rows, cols, true),
        softmaxRef(x, rows, cols, true),
        LOGP,
        `logSoftmax [${rows}, ${cols}]`,
      );
    }
  });

  test('kernels stay finite and exact on extreme logits', async () => {
    for (const cols of [1, 3, 17, 129, 1031]) {
      const x = extremeRows(cols).map(Math.fround);
      const p = await softmaxKernel(be(), x, 6, cols, false);
      assert.ok(p.every(Number.isFinite), `softmax of extreme rows (cols ${cols}) is finite`);
      assertClose(p, softmaxRef(x, 6, cols), PROB, `softmax extreme rows, cols ${cols}`);
      const lp = await softmaxKernel(be(), x, 6, cols, true);
      assert.ok(lp.every(Number.isFinite), `logSoftmax of extreme rows (cols ${cols}) is finite`);
      // log-probabilities of −1e30 logits are about −1e30: relative tolerance covers them
      assertClose(
        lp,
        softmaxRef(x, 6, cols, true),
        { rtol: 1e-5, atol: 1e-4 },
        `logSoftmax extreme rows, cols ${cols}`,
      );
    }
  });

  test('many short rows (2-D dispatch grid past 65535 rows)', async () => {
    const rows = 65541,
      cols = 3;
    const x = randArray(rows * cols, 5, -3, 3).map(Math.fround);
    assertClose(await softmaxKernel(be(), x, rows, cols, false), softmaxRef(x, rows, cols), PROB, 'softmax 65541 rows');
  });

  test('softmaxGrad kernel against the f64 reference', async () => {
    for (const [rows, cols] of SIZES) {
      for (const log of [false, true]) {
        const x = randArray(rows * cols, cols + 3, -3, 3);
        const y = softmaxRef(x, rows, cols, log).map(Math.fround);
        const dy = randArray(rows * cols, cols + 11).map(Math.fround);
        const sy = upload(be(), y),
          sdy = upload(be(), dy),
          sdx = be().alloc(rows * cols, 'f32');
        be().softmaxGrad(sy, sdy, sdx, rows, cols, log);
        const dx = await be().download(sdx);
        const ref = softmaxGradRef(y, dy, rows, cols, log);
        let scale = 1e-6;
        for (const v of ref) scale = Math.max(scale, Math.abs(v));
        assertClose(dx, ref, { rtol: 1e-4, atol: 1e-5 * scale }, `softmaxGrad(log=${log}) [${rows}, ${cols}]`);
        for (const s of [sy, sdy, sdx]) be().free(s);
      }
    }
  });

  test('softmax / logSoftmax ops: forward and gradient', async () => {
    const cases: [number[], number][] = [
      [[5], -1],
      [[4, 1], -1],
      [[3, 17], -1],
      [[2, 3, 5], 2],
      [[2, 4, 1], 1],
      [[2, 129], 1],
    ];
    for (const [shape, axis] of cases) {
      const a = axis < 0 ? axis + shape.length : axis;
      const cols = shape[a];
      const rows = shape.reduce((p, d) => p * d, 1) / cols;
      await gradCheck(
        be(),
        (x) => pd.softmax(x, axis),
        (x) => softmaxRef(x, rows, cols),
        [{ shape, data: randArray(rows * cols, cols, -3, 3) }],
        { what: `softmax [${shape}] axis ${axis}` },
      );
      await gradCheck(
        be(),
        (x) => pd.logSoftmax(x, axis),
        (x) => softmaxRef(x, rows, cols, true),
        [{ shape, data: randArray(rows * cols, cols + 1, -3, 3) }],
        { what: `logSoftmax [${shape}] axis ${axis}` },
      );
    }
  });

  test('crossEntropy: forward and gradients to both arguments', async () => {
    for (const [rows, cols] of [
      [1, 1],
      [4, 3],
      [3, 17],
      [2, 129],
    ]) {
      // targets: unnormalised positive weights (the gradient must not assume Σp = 1)
      await gradCheck(
        be(),
        (p, z) => pd.crossEntropy(p, z),
        (p, z) => crossEntropyRef(p, z, rows, cols),
        [
          { shape: [rows, cols], data: randArray(rows * cols, cols, 0, 1) },
          { shape: [rows, cols], data: randArray(rows * cols, cols + 5, -3, 3) },
        ],
        { what: `crossEntropy [${rows}, ${cols}]` },
      );
      // a detached teacher distribution (DINO): only the logits are differentiated
      const q = softmaxRef(randArray(rows * cols, 9, -2, 2), rows, cols);
      await gradCheck(
        be(),
        (p, z) => pd.crossEntropy(p, z, 1),
        (p, z) => crossEntropyRef(p, z, rows, cols),
        [
          { shape: [rows, cols], data: q, noGrad: true },
          { shape: [rows, cols], data: randArray(rows * cols, cols + 6, -3, 3) },
        ],
        { what: `crossEntropy detached target [${rows}, ${cols}]` },
      );
    }
    const p = pd.tensor([0.2, 0.8, 0.5, 0.5, 1, 0], [3, 1, 2], be());
    const z = pd.tensor([80, -80, 3, 3, 0, -1e30], [3, 1, 2], be());
    const ce = pd.crossEntropy(p, z);
    assert.equal(ce.shape, [3, 1]);
    assertClose(await read(ce), [0.8 * 160, Math.log(2), 0], { rtol: 1e-5, atol: 1e-5 }, 'crossEntropy extreme logits');
    for (const t of [p, z, ce]) t.dispose();
  });

  test('no tensor or buffer outlives tidy (with grad) or dispose (without)', async () => {
    const before = { tensors: pd.liveTensors(), buffers: be().memory().liveBuffers };
    const z = pd.param(pd.tensor(randArray(3 * 5, 1), [3, 5], be()));
    const p = pd.param(pd.tensor(randArray(3 * 5, 2, 0, 1), [3, 5], be()));
    pd.tidy(() => {
      const l = pd.add(pd.sum(pd.crossEntropy(pd.softmax(p), z)), pd.sum(pd.mul(pd.logSoftmax(z), p)));
      pd.backward(l);
    });
    for (const t of [z, p]) assert.ok(t.grad, 'every input got a gradient');
    const outs = pd.noGrad(() => [pd.softmax(z), pd.logSoftmax(z), pd.crossEntropy(p, z)]);
    await be().sync();
    for (const t of [...outs, z, p]) t.dispose();
    assert.equal({ tensors: pd.liveTensors(), buffers: be().memory().liveBuffers }, before);
  });

  test('shape errors', () => {
    const x = pd.zeros([2, 3], be());
    const y = pd.zeros([3, 2], be());
    assert.throws(() => pd.softmax(x, 0), /softmax: works along the last axis only/);
    assert.throws(() => pd.logSoftmax(x, 2), /logSoftmax: axis 2 is out of range/);
    assert.throws(
      () => pd.crossEntropy(x, y),
      /crossEntropy: targetProbs \[2,3\] and logits \[3,2\] must have the same shape/,
    );
    for (const t of [x, y]) t.dispose();
  });
});
