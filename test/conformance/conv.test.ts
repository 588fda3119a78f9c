import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { ALL_BACKENDS, conformance, getBackend } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, rng } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import type { Backend, Storage } from '../../src/backend/backend.js';
import {
  col2imRef,
  conv2dGradInputRef,
  conv2dGradWeightRef,
  conv2dRef,
  geom,
  im2colRef,
  poolGradRef,
  poolRef,
  type Geom,
} from '../reference/conv.js';

type Case = { shape: number[]; k: [number, number]; s: [number, number]; p: [number, number] };

// Odd sizes, strides 1/2/3, paddings 0/1/2, kernels 1/3/5 and non-square everything.
const CASES: Case[] = [
  { shape: [1, 1, 1, 1], k: [1, 1], s: [1, 1], p: [0, 0] },
  { shape: [2, 3, 7, 5], k: [3, 3], s: [1, 1], p: [1, 1] },
  { shape: [1, 2, 9, 11], k: [3, 5], s: [2, 3], p: [1, 2] },
  { shape: [2, 1, 17, 13], k: [5, 5], s: [2, 2], p: [2, 2] },
  { shape: [1, 4, 6, 7], k: [1, 1], s: [3, 3], p: [0, 0] },
  { shape: [3, 2, 5, 8], k: [5, 3], s: [1, 2], p: [0, 1] },
  { shape: [1, 3, 10, 9], k: [3, 3], s: [3, 2], p: [2, 0] },
  // large enough that the wasm kernels split rows over two threads
  { shape: [2, 3, 33, 31], k: [3, 3], s: [1, 1], p: [1, 1] },
];

const f32 = (a: ArrayLike<number>) => Float64Array.from(a, Math.fround);
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Distinct values in random order (no ties for max pooling). */
function distinct(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

function upload(be: Backend, data: ArrayLike<number>, dtype: 'f32' | 'i32' = 'f32'): Storage {
  const s = be.alloc(data.length, dtype);
  be.upload(s, dtype === 'f32' ? Float32Array.from(data) : Int32Array.from(data));
  return s;
}

/** Storage of n elements holding garbage, to prove a kernel overwrites rather than accumulates. */
function dirty(be: Backend, n: number): Storage {
  return upload(be, new Float32Array(n).fill(7.5));
}

async function down(be: Backend, ...ss: Storage[]): Promise<(Float32Array | Int32Array)[]> {
  const out = [];
  for (const s of ss) out.push(await be.download(s));
  for (const s of ss) be.free(s);
  return out;
}

const label = (c: Case) => `[${c.shape}] k${c.k} s${c.s} p${c.p}`;

type ConvCase = Case & { O: number };

// The convolution kernels: CASES plus the shapes of small ResNets (3x3 s1/s2 and 1x1 s2 at 28..4
// pixels), reduction lengths past one block of 256 (C·kh·kw and O·taps), out channels and pixel
// counts that are not multiples of the 4x8 tile, padding wider than half the kernel, a window
// larger than the image.
const CONV_CASES: ConvCase[] = [
  ...CASES.map((c, i) => ({ ...c, O: [1, 4, 3, 2, 5, 7, 6, 9][i] })),
  { shape: [2, 16, 28, 28], k: [3, 3], s: [1, 1], p: [1, 1], O: 16 },
  { shape: [3, 16, 14, 14], k: [3, 3], s: [2, 2], p: [1, 1], O: 32 },
  { shape: [2, 32, 7, 7], k: [1, 1], s: [2, 2], p: [0, 0], O: 64 },
  { shape: [2, 32, 7, 7], k: [3, 3], s: [2, 2], p: [1, 1], O: 40 },
  { shape: [3, 30, 5, 6], k: [3, 3], s: [1, 1], p: [1, 1], O: 37 },
  { shape: [2, 3, 6, 5], k: [3, 3], s: [1, 1], p: [2, 2], O: 5 },
  { shape: [1, 2, 3, 3], k: [5, 5], s: [1, 1], p: [2, 2], O: 3 },
  { shape: [2, 3, 9, 10], k: [4, 2], s: [3, 2], p: [2, 1], O: 6 },
  // taps that read only padding (dropped by the wasm kernels): 1x1 and 2x2 maps as in resnet18's last stages
  { shape: [3, 8, 1, 1], k: [3, 3], s: [1, 1], p: [1, 1], O: 6 },
  { shape: [2, 6, 2, 2], k: [3, 3], s: [2, 2], p: [1, 1], O: 5 },
  { shape: [2, 7, 2, 3], k: [3, 3], s: [1, 1], p: [1, 1], O: 9 },
  { shape: [17, 3, 1, 2], k: [3, 1], s: [2, 1], p: [1, 0], O: 4 },
];

conformance('conv', (test, be) => {
  test('conv2d, conv2dGradInput, conv2dGradWeight kernels match the references and overwrite', async () => {
    for (const c of CONV_CASES) {
      const g = geom(c.shape, c.k, c.s, c.p);
      const O = c.O;
      const p = { ...g, outChannels: O };
      const nOut = g.batch * O * g.outH * g.outW,
        nW = O * g.channels * g.kernelH * g.kernelW;
      const x = f32(randArray(numel(c.shape), 31)),
        w = f32(randArray(nW, 32)),
        dyv = f32(randArray(nOut, 33));
      const xs = upload(be(), x),
        ws = upload(be(), w),
        dys = upload(be(), dyv);
      const out = dirty(be(), nOut),
        dx = dirty(be(), x.length),
        dw = dirty(be(), nW);
      be().conv2d(xs, ws, out, p);
      be().conv2dGradInput(dys, ws, dx, p);
      be().conv2dGradWeight(xs, dys, dw, p);
      const [gotOut, gotDx, gotDw] = await down(be(), out, dx, dw, xs, ws, dys);
      const tol = { rtol: 1e-4, atol: 1e-4 };
      assertClose(gotOut, conv2dRef(x, w, null, g, O), tol, `conv2d ${label(c)} O=${O}`);
      assertClose(gotDx, conv2dGradInputRef(dyv, w, g, O), tol, `conv2dGradInput ${label(c)} O=${O}`);
      assertClose(gotDw, conv2dGradWeightRef(x, dyv, g, O), tol, `conv2dGradWeight ${label(c)} O=${O}`);
    }
  });

  test('conv2d kernels: an empty batch leaves the weight gradient zero', async () => {
    const g = geom([0, 2, 5, 5], [3, 3], [1, 1], [1, 1]);
    const ws = upload(be(), randArray(3 * 2 * 9, 1)),
      dw = dirty(be(), 3 * 2 * 9);
    const xs = be().alloc(0, 'f32'),
      dys = be().alloc(0, 'f32');
    be().conv2dGradWeight(xs, dys, dw, { ...g, outChannels: 3 });
    const [got] = await down(be(), dw, ws, xs, dys);
    assert.equal(Array.from(got), new Array(3 * 2 * 9).fill(0));
  });

  test('im2col matches the reference exactly', async () => {
    for (const c of CASES) {
      const g = geom(c.shape, c.k, c.s, c.p);
      const x = f32(randArray(numel(c.shape), 11));
      const ref = im2colRef(x, g);
      const xs = upload(be(), x);
      const out = dirty(be(), ref.length);
      be().im2col(xs, out, g);
      const [got] = await down(be(), out, xs);
      assert.equal(Array.from(got), Array.from(ref), `im2col ${label(c)}`);
    }
  });

  test('col2im matches the reference, overwrites dx, and is the adjoint of im2col', async () => {
    for (const c of CASES) {
      const g = geom(c.shape, c.k, c.s, c.p);
      const nCol = g.batch * g.outH * g.outW * g.channels * g.kernelH * g.kernelW;
      const col = f32(randArray(nCol, 5));
      const x = f32(randArray(numel(c.shape), 6));
      const cs = upload(be(), col),
        xs = upload(be(), x);
      const dx = dirty(be(), x.length),
        xc = dirty(be(), nCol);
      be().col2im(cs, dx, g);
      be().im2col(xs, xc, g);
      const [gotDx, gotXc] = await down(be(), dx, xc, cs, xs);
      assertClose(gotDx, col2imRef(col, g), { rtol: 1e-5, atol: 1e-5 }, `col2im ${label(c)}`);
      let lhs = 0,
        rhs = 0;
      for (let i = 0; i < nCol; i++) lhs += gotXc[i] * col[i];
      for (let i = 0; i < x.length; i++) rhs += x[i] * gotDx[i];
      assertClose([lhs], [rhs], { rtol: 1e-5, atol: 1e-4 }, `<im2col(x), c> = <x, col2im(c)> ${label(c)}`);
    }
  });

  test('pool2d max/avg and pool2dGrad kernels match the reference', async () => {
    for (const c of CASES) {
      if (c.p[0] > c.k[0] / 2 || c.p[1] > c.k[1] / 2) continue;
      const g = geom(c.shape, c.k, c.s, c.p);
      const nOut = g.batch * g.channels * g.outH * g.outW;
      // negative inputs: zero padding must never win a max
      const x = f32(Array.from(distinct(numel(c.shape), 3), (v) => v - 1));
      const dyv = f32(randArray(nOut, 4));
      for (const op of ['max', 'avg'] as const) {
        const ref = poolRef(op, x, g);
        const xs = upload(be(), x),
          dys = upload(be(), dyv);
        const out = dirty(be(), nOut),
          dx = dirty(be(), x.length);
        const arg = op === 'max' ? upload(be(), new Int32Array(nOut).fill(99), 'i32') : null;
        be().pool2d(op, xs, out, arg, g);
        be().pool2dGrad(op, dys, arg, dx, g);
        const [gotOut, gotDx, gotArg] = await down(be(), out, dx, ...(arg ? [arg] : []), xs, dys);
        assertClose(gotOut, ref.out, { rtol: 1e-6, atol: 1e-6 }, `pool2d ${op} ${label(c)}`);
        if (op === 'max') assert.equal(Array.from(gotArg), Array.from(ref.argmax), `argmax ${label(c)}`);
        assertClose(
          gotDx,
          poolGradRef(op, dyv, ref.argmax, g),
          { rtol: 1e-5, atol: 1e-6 },
          `pool2dGrad ${op} ${label(c)}`,
        );
      }
    }
  });

  test('max pooling: first maximum wins ties; argmax may be omitted', async () => {
    const g = geom([2, 3, 7, 6], [3, 3], [2, 1], [1, 1]);
    const x = Float64Array.from(randArray(2 * 3 * 7 * 6, 8), (v) => Math.round(v * 2) / 2); // many ties
    const ref = poolRef('max', x, g);
    const nOut = ref.out.length;
    const xs = upload(be(), x);
    const out = dirty(be(), nOut),
      out2 = dirty(be(), nOut);
    const arg = upload(be(), new Int32Array(nOut), 'i32');
    be().pool2d('max', xs, out, arg, g);
    be().pool2d('max', xs, out2, null, g);
    const [gotOut, gotArg, gotOut2] = await down(be(), out, arg, out2, xs);
    assert.equal(Array.from(gotOut), Array.from(ref.out));
    assert.equal(Array.from(gotArg), Array.from(ref.argmax));
    assert.equal(Array.from(gotOut2), Array.from(ref.out));
  });

  test('maxPool2d / avgPool2d ops: forward and gradient', async () => {
    const cases: [number[], number, number | undefined, number][] = [
      [[2, 3, 7, 5], 3, 2, 1],
      [[1, 2, 9, 8], 2, undefined, 0],
      [[1, 1, 11, 13], 5, 3, 2],
    ];
    for (const [shape, k, s, p] of cases) {
      const g = geom(shape, [k, k], [s ?? k, s ?? k], [p, p]);
      const what = `[${shape}] k${k} s${s} p${p}`;
      await gradCheck(
        be(),
        (x) => pd.maxPool2d(x, k, s, p),
        (x) => poolRef('max', x, g).out,
        [{ shape, data: distinct(numel(shape), 21) }],
        { what: `maxPool2d ${what}` },
      );
      await gradCheck(
        be(),
        (x) => pd.avgPool2d(x, k, s, p),
        (x) => poolRef('avg', x, g).out,
        [{ shape }],
        { what: `avgPool2d ${what}` },
      );
    }
  });

  test('conv2d: forward and gradients against direct convolution, both algorithms', async () => {
    // maxColumnElements forces the im2col route into chunks: 2 + 1 for the last case, 1 + 1 for the second
    type Alg = 'direct' | 'im2col';
    const cases: { c: Case; O: number; bias: boolean; alg: Alg; maxCol?: number }[] = [
      { c: CASES[1], O: 4, bias: true, alg: 'direct' },
      { c: CASES[1], O: 4, bias: true, alg: 'im2col' },
      { c: CASES[1], O: 2, bias: false, alg: 'im2col', maxCol: 35 * 27 },
      { c: CASES[2], O: 3, bias: false, alg: 'direct' },
      { c: { shape: [2, 2, 6, 5], k: [1, 1], s: [1, 1], p: [0, 0] }, O: 5, bias: true, alg: 'direct' },
      { c: { shape: [3, 1, 8, 7], k: [5, 3], s: [3, 2], p: [2, 1] }, O: 2, bias: true, alg: 'direct' },
      {
        c: { shape: [3, 1, 8, 7], k: [5, 3], s: [3, 2], p: [2, 1] },
        O: 2,
        bias: true,
        alg: 'im2col',
        maxCol: 2 * 12 * 15,
      },
      { c: { shape: [2, 5, 7, 7], k: [3, 3], s: [2, 2], p: [1, 1] }, O: 9, bias: false, alg: 'direct' },
      { c: { shape: [2, 4, 5, 5], k: [1, 1], s: [2, 2], p: [0, 0] }, O: 6, bias: false, alg: 'direct' },
    ];
    for (const { c, O, bias, alg, maxCol } of cases) {
      const g: Geom = geom(c.shape, c.k, c.s, c.p);
      const wShape = [O, c.shape[1], ...c.k];
      const inputs = [{ shape: c.shape }, { shape: wShape }, ...(bias ? [{ shape: [O] }] : [])];
      await gradCheck(
        be(),
        (x, w, b) => pd.conv2d(x, w, b, { stride: c.s, padding: c.p, algorithm: alg, maxColumnElements: maxCol }),
        (x, w, b) => conv2dRef(x, w, b ?? null, g, O),
        inputs,
        {
          what: `conv2d ${alg} ${label(c)} O=${O}${bias ? ' +bias' : ''}${maxCol ? ` in chunks (max ${maxCol})` : ''}`,
        },
      );
    }
  });

  test('forward and backward leave no storage behind', async () => {
    const before = be().memory().liveBuffers;
    const x = pd.param(pd.tensor(randArray(2 * 3 * 9 * 8, 1), [2, 3, 9, 8], be()));
    const w = pd.param(pd.tensor(randArray(4 * 3 * 3 * 3, 2), [4, 3, 3, 3], be()));
    const b = pd.param(pd.tensor(randArray(4, 3), [4], be()));
    const variants = [{}, { algorithm: 'im2col' as const }, { algorithm: 'im2col' as const, maxColumnElements: 100 }];
    for (const v of variants) {
      pd.tidy(() => {
        const y = pd.maxPool2d(pd.conv2d(x, w, b, { padding: 1, ...v }), 3, 2, 1);
        pd.backward(pd.sum(pd.avgPool2d(y, 2, 1)));
      });
      pd.tidy(() => {
        pd.noGrad(() => pd.maxPool2d(pd.conv2d(x, w, null, { stride: 2, ...v }), 2));
      });
    }
    await be().sync();
    for (const t of [x, w, b]) t.dispose();
    assert.is(be().memory().liveBuffers, before);
  });

  test('conv2d / pooling shape errors', () => {
    const x = pd.zeros([1, 2, 4, 4], be());
    const w = pd.zeros([3, 1, 3, 3], be());
    assert.throws(() => pd.conv2d(x, w), /conv2d: weight expects 1 input channels/);
    const x3 = pd.reshape(x, [2, 4, 4]);
    assert.throws(() => pd.conv2d(x3, w), /conv2d: input must be \[batch, channels, height, width\]/);
    x3.dispose();
    assert.throws(() => pd.maxPool2d(x, 5), /does not fit/);
    assert.throws(() => pd.maxPool2d(x, 2, 1, 2), /padding .* at most half/);
    assert.throws(() => pd.avgPool2d(x, 2, 0), /strides must be integers/);
    x.dispose();
    w.dispose();
  });
});

// Not a per-backend case: the same kernels on one and two threads must give the same bits.
const threads = suite('conv kernels: results do not depend on the thread count');
threads('wasm relaxed, 1 vs 2 threads, bit for bit', async () => {
  const [one, two] = await Promise.all(
    ['wasm-relaxed-1t', 'wasm-relaxed-2t'].map((n) => getBackend(ALL_BACKENDS.find((b) => b.name === n)!)),
  );
  for (const c of CONV_CASES.slice(8, 12)) {
    const g = geom(c.shape, c.k, c.s, c.p);
    const p = { ...g, outChannels: c.O };
    const nOut = g.batch * c.O * g.outH * g.outW,
      nW = c.O * g.channels * g.kernelH * g.kernelW;
    const x = randArray(numel(c.shape), 41),
      w = randArray(nW, 42),
      dyv = randArray(nOut, 43);
    const results: Float32Array[][] = [];
    for (const be of [one, two]) {
      const xs = upload(be, x),
        ws = upload(be, w),
        dys = upload(be, dyv);
      const out = dirty(be, nOut),
        dx = dirty(be, x.length),
        dw = dirty(be, nW);
      be.conv2d(xs, ws, out, p);
      be.conv2dGradInput(dys, ws, dx, p);
      be.conv2dGradWeight(xs, dys, dw, p);
      results.push((await down(be, out, dx, dw, xs, ws, dys)) as Float32Array[]);
    }
    for (let i = 0; i < 3; i++)
      assert.equal(Array.from(results[0][i]), Array.from(results[1][i]), `${['conv2d', 'dx', 'dw'][i]} ${label(c)}`);
  }
});
threads.run();
