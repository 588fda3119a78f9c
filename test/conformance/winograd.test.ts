// The Winograd F(4×4, 3×3) route of conv2d: its three transform kernels against the matrices written
// out (test/reference/winograd.ts), and the whole route against direct convolution, on every backend.
import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { ALL_BACKENDS, conformance, getBackend } from '../helpers/backends.js';
import { assertClose, f32Bits, gradCheck, randArray } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { winogradFits } from '../../src/tensor/ops/conv.js';
import type { Backend, Storage } from '../../src/backend/backend.js';
import { matmulParams } from '../../src/backend/backend.js';
import { conv2dGradInputRef, conv2dGradWeightRef, conv2dRef, geom, type Geom } from '../reference/conv.js';
import {
  columnsFor,
  tileGrid,
  winogradInputRef,
  winogradOutputGradRef,
  winogradOutputRef,
  winogradWeightsGradRef,
  winogradWeightsRef,
} from '../reference/winograd.js';

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function upload(be: Backend, data: ArrayLike<number>): Storage {
  const s = be.alloc(data.length, 'f32');
  be.upload(s, Float32Array.from(data));
  return s;
}

async function down(be: Backend, ...ss: Storage[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const s of ss) out.push((await be.download(s)) as Float32Array);
  for (const s of ss) be.free(s);
  return out;
}

// Odd maps and batches, paddings 0/1/2, channel counts off the 4×8 tile, 1×1 to 13×11 maps.
const SHAPES: { shape: number[]; p: [number, number]; O: number }[] = [
  { shape: [2, 3, 7, 5], p: [1, 1], O: 4 },
  { shape: [1, 5, 9, 11], p: [0, 0], O: 3 },
  { shape: [3, 2, 6, 5], p: [2, 2], O: 5 },
  { shape: [2, 4, 13, 11], p: [1, 2], O: 6 },
  { shape: [3, 6, 1, 1], p: [1, 1], O: 2 },
  { shape: [2, 3, 2, 3], p: [2, 0], O: 7 },
];

const g3 = (shape: number[], p: [number, number]): Geom => geom(shape, [3, 3], [1, 1], p);

conformance('winograd', (test, be) => {
  test('winogradWeights matches G g Gᵀ, plain and rotated for the input gradient', async () => {
    for (const [O, C] of [
      [4, 3],
      [17, 5],
      [2, 19],
    ]) {
      const w = randArray(O * C * 9, O + C);
      for (const flip of [false, true]) {
        const ws = upload(be(), w);
        const u = upload(be(), new Float32Array(36 * O * C).fill(7.5));
        be().winogradWeights(ws, u, O, C, flip);
        const [got] = await down(be(), u, ws);
        assertClose(got, winogradWeightsRef(w, O, C, flip), { rtol: 1e-5, atol: 1e-6 }, `O=${O} C=${C} flip=${flip}`);
      }
    }
  });

  test('winogradInput matches Bᵀ d B per tile, for whole grids and tile ranges', async () => {
    for (const { shape, p } of SHAPES) {
      const g = g3(shape, p);
      const { n } = tileGrid(g);
      const x = randArray(numel(shape), 5);
      // whole grid, a range from the middle, one tile at the end
      for (const [first, count] of [
        [0, n],
        [Math.floor(n / 3), Math.ceil(n / 2) - Math.floor(n / 3)],
        [n - 1, 1],
      ]) {
        if (count <= 0) continue;
        const xs = upload(be(), x);
        const v = upload(be(), new Float32Array(36 * g.channels * columnsFor(count)).fill(7.5));
        be().winogradInput(xs, v, { ...g, outChannels: 1 }, first, count);
        const [got] = await down(be(), v, xs);
        assertClose(
          got,
          winogradInputRef(x, g, first, count),
          { rtol: 1e-5, atol: 1e-5 },
          `[${shape}] p${p} tiles ${first}+${count}`,
        );
      }
    }
  });

  test('winogradOutput matches Aᵀ m A per tile and writes no other output', async () => {
    for (const { shape, p, O } of SHAPES) {
      const g = g3(shape, p);
      const { n } = tileGrid(g);
      const nOut = g.batch * O * g.outH * g.outW;
      const y0 = randArray(nOut, 8);
      for (const [first, count] of [
        [0, n],
        [Math.floor(n / 2), n - Math.floor(n / 2)],
      ]) {
        if (count <= 0) continue;
        const m = randArray(36 * O * columnsFor(count), 9);
        const ms = upload(be(), m),
          ys = upload(be(), y0);
        be().winogradOutput(ms, ys, { ...g, outChannels: O }, first, count);
        const [got] = await down(be(), ys, ms);
        assertClose(
          got,
          winogradOutputRef(m, y0, g, O, first, count),
          { rtol: 1e-5, atol: 1e-5 },
          `[${shape}] p${p} O=${O} tiles ${first}+${count}`,
        );
      }
    }
  });

  test('winogradConv is winogradInput, the 36 products and winogradOutput bit for bit, and the convolution', async () => {
    // SHAPES, then channel counts past one 4-row panel and off it (the fused wasm kernel's edge tile)
    const cases = [
      ...SHAPES,
      { shape: [2, 17, 9, 10], p: [1, 1] as [number, number], O: 13 },
      { shape: [1, 33, 8, 8], p: [1, 1] as [number, number], O: 8 },
    ];
    for (const { shape, p, O } of cases) {
      const g = g3(shape, p);
      const C = shape[1];
      const { n } = tileGrid(g);
      const cp = { ...g, outChannels: O };
      const x = randArray(numel(shape), 21),
        w = randArray(O * C * 9, 22),
        y0 = randArray(g.batch * O * g.outH * g.outW, 23);
      for (const [first, count] of [
        [0, n],
        [Math.floor(n / 3), Math.ceil(n / 2) - Math.floor(n / 3)],
      ]) {
        if (count <= 0) continue;
        const np = columnsFor(count);
        const xs = upload(be(), x),
          ws = upload(be(), w),
          u = be().alloc(36 * O * C, 'f32'),
          v = be().alloc(36 * C * np, 'f32'),
          m = be().alloc(36 * O * np, 'f32'),
          fused = upload(be(), y0),
          composed = upload(be(), y0);
        be().winogradWeights(ws, u, O, C, false);
        be().winogradConv(xs, u, fused, cp, first, count);
        be().winogradInput(xs, v, cp, first, count);
        be().matmul(u, v, m, matmulParams({ batch: 36, m: O, n: np, k: C, strideA: O * C, strideB: C * np }));
        be().winogradOutput(m, composed, cp, first, count);
        const [got, want] = await down(be(), fused, composed, xs, ws, u, v, m);
        const what = `[${shape}] p${p} O=${O} tiles ${first}+${count}`;
        assert.equal(f32Bits(got), f32Bits(want), `${what}: the same bits as the composition`);
        if (count === n) {
          const ref = conv2dRef(x, w, null, g, O);
          const scale = ref.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
          assertClose(got, ref, { rtol: 1e-4, atol: 1e-5 * scale }, `${what}: the convolution`);
        }
      }
    }
  });

  test('winogradOutputGrad matches A dY Aᵀ per tile, for whole grids and tile ranges', async () => {
    for (const { shape, p, O } of SHAPES) {
      const g = g3(shape, p);
      const { n } = tileGrid(g);
      const dy = randArray(g.batch * O * g.outH * g.outW, 12);
      for (const [first, count] of [
        [0, n],
        [Math.floor(n / 3), Math.ceil(n / 2) - Math.floor(n / 3)],
      ]) {
        if (count <= 0) continue;
        const dys = upload(be(), dy);
        const dm = upload(be(), new Float32Array(36 * O * columnsFor(count)).fill(7.5));
        be().winogradOutputGrad(dys, dm, { ...g, outChannels: O }, first, count);
        const [got] = await down(be(), dm, dys);
        const ref = winogradOutputGradRef(dy, g, O, first, count);
        assertClose(got, ref, { rtol: 1e-5, atol: 1e-5 }, `[${shape}] p${p} O=${O} tiles ${first}+${count}`);
      }
    }
  });

  test('winogradConvGrad sums dM_ξ·V_ξᵀ over tile ranges as the composition does, and accumulates', async () => {
    // SHAPES, then 392 tiles (25 blocks, summed by wasm in three groups) with channels off the panels
    const cases = [...SHAPES, { shape: [8, 6, 28, 28], p: [1, 1] as [number, number], O: 5 }];
    for (const { shape, p, O } of cases) {
      const g = g3(shape, p);
      const C = shape[1];
      const { n } = tileGrid(g);
      const cp = { ...g, outChannels: O };
      const x = randArray(numel(shape), 31),
        dy = randArray(g.batch * O * g.outH * g.outW, 32),
        du0 = randArray(36 * O * C, 33);
      for (const [first, count, accumulate] of [
        [0, n, false],
        [Math.floor(n / 3), Math.ceil(n / 2) - Math.floor(n / 3), true],
      ] as const) {
        if (count <= 0) continue;
        const np = columnsFor(count);
        const xs = upload(be(), x),
          dys = upload(be(), dy),
          v = be().alloc(36 * C * np, 'f32'),
          dm = be().alloc(36 * O * np, 'f32'),
          fused = upload(be(), accumulate ? du0 : new Float32Array(36 * O * C).fill(7.5)),
          composed = upload(be(), du0);
        be().winogradConvGrad(xs, dys, fused, cp, first, count, accumulate);
        be().winogradInput(xs, v, cp, first, count);
        be().winogradOutputGrad(dys, dm, cp, first, count);
        const mp = { batch: 36, m: O, n: C, k: np, transB: true, strideA: O * np, strideB: C * np, accumulate };
        be().matmul(dm, v, composed, matmulParams(mp));
        const [got, want] = await down(be(), fused, composed, xs, dys, v, dm);
        const scale = want.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
        const what = `[${shape}] p${p} O=${O} tiles ${first}+${count}${accumulate ? ' accumulate' : ''}`;
        assertClose(got, want, { rtol: 1e-4, atol: 1e-5 * scale }, what);
      }
    }
  });

  test('winogradWeightsGrad matches Gᵀ dU G and overwrites', async () => {
    for (const [O, C] of [
      [4, 3],
      [17, 5],
      [2, 19],
    ]) {
      const du = randArray(36 * O * C, O * C);
      const dus = upload(be(), du);
      const dw = upload(be(), new Float32Array(O * C * 9).fill(7.5));
      be().winogradWeightsGrad(dus, dw, O, C);
      const [got] = await down(be(), dw, dus);
      assertClose(got, winogradWeightsGradRef(du, O, C), { rtol: 1e-5, atol: 1e-6 }, `O=${O} C=${C}`);
    }
  });

  test('conv2d as Winograd: forward and gradients against direct convolution', async () => {
    for (const { shape, p, O } of SHAPES.slice(0, 4)) {
      const g = g3(shape, p);
      await gradCheck(
        be(),
        (x, w, b) => pd.conv2d(x, w, b, { padding: p, algorithm: 'winograd' }),
        (x, w, b) => conv2dRef(x, w, b, g, O),
        [{ shape }, { shape: [O, shape[1], 3, 3] }, { shape: [O] }],
        { what: `conv2d winograd [${shape}] p${p} O=${O}` },
      );
    }
  });

  test('conv2d as Winograd in several chunks of tiles, and auto choosing it, agree with the references', async () => {
    // 64 channels: on wasm the weight gradient runs chunks of 64 tiles, so 3 images of 28² (147 tiles)
    // take three, and the forward and input gradient run fused in one call (WebGPU runs one chunk)
    const shape = [3, 64, 28, 28],
      O = 24;
    const g = g3(shape, [1, 1]);
    assert.ok(winogradFits(g, 64), 'auto picks Winograd for this layer');
    const x = randArray(numel(shape), 1),
      w = randArray(O * 64 * 9, 2),
      dy = randArray(3 * O * 28 * 28, 3);
    for (const algorithm of ['winograd', 'auto'] as const) {
      const xt = pd.param(pd.tensor(x, shape, be())),
        wt = pd.param(pd.tensor(w, [O, 64, 3, 3], be())),
        dyt = pd.tensor(dy, [3, O, 28, 28], be());
      const y = pd.conv2d(xt, wt, null, { padding: 1, algorithm });
      pd.backward(y, dyt);
      const [gotY, gotDx, gotDw] = [await y.data(), await xt.grad!.data(), await wt.grad!.data()];
      const scale = (r: Float64Array) => r.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
      const refY = conv2dRef(x, w, null, g, O),
        refDx = conv2dGradInputRef(dy, w, g, O),
        refDw = conv2dGradWeightRef(x, dy, g, O);
      assertClose(gotY, refY, { rtol: 1e-3, atol: 1e-5 * scale(refY) }, `forward (${algorithm})`);
      assertClose(gotDx, refDx, { rtol: 1e-3, atol: 1e-5 * scale(refDx) }, `input gradient (${algorithm})`);
      assertClose(gotDw, refDw, { rtol: 1e-3, atol: 1e-5 * scale(refDw) }, `weight gradient (${algorithm})`);
      for (const t of [xt, wt, dyt, y]) t.dispose();
    }
  });

  test('errors: shapes Winograd does not compute, tile ranges outside the grid', () => {
    const x = pd.zeros([1, 2, 6, 6], be()),
      w = pd.zeros([3, 2, 3, 3], be()),
      w5 = pd.zeros([3, 2, 5, 5], be());
    assert.throws(() => pd.conv2d(x, w, null, { stride: 2, algorithm: 'winograd' }), /Winograd .* stride 1/);
    assert.throws(() => pd.conv2d(x, w5, null, { algorithm: 'winograd' }), /Winograd .* 3x3/);
    assert.throws(() => pd.conv2d(x, w, null, { padding: 3, algorithm: 'winograd' }), /padding at most 2/);
    const g = { ...g3([1, 2, 6, 6], [1, 1]), outChannels: 3 };
    const v = be().alloc(36 * 2 * 16, 'f32');
    assert.throws(() => be().winogradInput(x.storage, v, g, 2, 3), /not inside the 4 tiles/);
    assert.throws(() => be().winogradOutput(v, x.storage, g, -1, 1), /not inside/);
    assert.throws(() => be().winogradConv(x.storage, v, x.storage, g, 3, 2), /not inside the 4 tiles/);
    assert.throws(() => be().winogradConvGrad(x.storage, x.storage, v, g, 0, 5, false), /not inside the 4 tiles/);
    assert.throws(() => be().winogradInput(x.storage, v, { ...g, kernelH: 5, kernelW: 5 }, 0, 1), /3x3 kernel/);
    be().free(v);
    for (const t of [x, w, w5]) t.dispose();
  });
});

// Not a per-backend case: the Winograd route on one and two threads must give the same bits.
const threads = suite('winograd route: results do not depend on the thread count');
threads('wasm relaxed, 1 vs 2 threads, bit for bit', async () => {
  const [one, two] = await Promise.all(
    ['wasm-relaxed-1t', 'wasm-relaxed-2t'].map((n) => getBackend(ALL_BACKENDS.find((b) => b.name === n)!)),
  );
  // 48 tiles at 40 → 24 channels (the composition's long reductions for the weight gradient), and
  // 392 tiles at 12 → 10 (fused, summed in three groups that the two threads share)
  for (const [shape, O] of [
    [[3, 40, 14, 14], 24],
    [[8, 12, 28, 28], 10],
  ] as const) {
    const [B, C, H, W] = shape;
    const x = randArray(numel([...shape]), 4),
      w = randArray(O * C * 9, 5),
      dy = randArray(B * O * H * W, 6);
    const results: Float32Array[][] = [];
    for (const be of [one, two]) {
      const xt = pd.param(pd.tensor(x, [...shape], be)),
        wt = pd.param(pd.tensor(w, [O, C, 3, 3], be)),
        dyt = pd.tensor(dy, [B, O, H, W], be);
      const y = pd.conv2d(xt, wt, null, { padding: 1, algorithm: 'winograd' });
      pd.backward(y, dyt);
      const got = [await y.data(), await xt.grad!.data(), await wt.grad!.data()];
      results.push(got as Float32Array[]);
      for (const t of [xt, wt, dyt, y]) t.dispose();
    }
    for (let i = 0; i < 3; i++)
      assert.equal(
        Array.from(results[0][i]),
        Array.from(results[1][i]),
        `[${shape}] ${['forward', 'input gradient', 'weight gradient'][i]}`,
      );
  }
});
threads.run();
