import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read, rng, f32Bits } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { setLoopBudget } from '../../src/backend/webgpu/loop-budget.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import {
  concatRef,
  gatherRowsRef,
  patchifyRef,
  permuteRef,
  scatterAddRowsRef,
  sliceRef,
  unpatchifyRef,
} from '../reference/layout.js';

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

// Ranks 1..6; the last case reverses every axis so no two dims merge and the kernels see rank 6.
const PERMS: [number[], number[]][] = [
  [[7], [0]],
  [
    [3, 5],
    [1, 0],
  ],
  [
    [129, 17],
    [1, 0],
  ],
  [
    [2, 3, 5],
    [2, 0, 1],
  ],
  [
    [3, 1, 5, 2],
    [3, 1, 0, 2],
  ],
  [
    [2, 3, 1, 5, 3],
    [4, 2, 0, 3, 1],
  ],
  [
    [2, 3, 2, 3, 1, 5],
    [5, 3, 1, 4, 0, 2],
  ],
  [
    [2, 3, 2, 3, 2, 3],
    [5, 4, 3, 2, 1, 0],
  ],
];

const SLICES: [number[], number[], number[]][] = [
  [[17], [3], [11]],
  [
    [5, 7],
    [1, -4],
    [3, -1],
  ],
  [
    [3, 129],
    [0, 64],
    [3, 65],
  ],
  [
    [4, 5, 6],
    [1, 0, 2],
    [2, 5, 3],
  ],
  [
    [3, 4, 5, 2],
    [2, 1, 0, 1],
    [1, 2, 5, 1],
  ],
  [
    [2, 3, 4, 3, 5],
    [0, 1, 1, 0, 2],
    [2, 2, 3, 3, 3],
  ],
  [
    [2, 3, 2, 3, 2, 5],
    [1, 1, 0, 1, 1, 1],
    [1, 2, 2, 2, 1, 3],
  ],
];

const CONCATS: [number[][], number][] = [
  [[[3], [1], [5]], 0],
  [
    [
      [2, 3],
      [2, 1],
      [2, 5],
    ],
    1,
  ],
  [
    [
      [1, 3, 4],
      [3, 3, 4],
    ],
    0,
  ],
  [
    [
      [2, 3, 4],
      [2, 0, 4],
      [2, 2, 4],
    ],
    1,
  ],
  [
    [
      [2, 1, 3, 2],
      [2, 1, 3, 3],
    ],
    -1,
  ],
  [
    [
      [2, 3, 1, 2, 3, 2],
      [2, 3, 2, 2, 3, 2],
    ],
    2,
  ],
];

conformance('layout', (test, be) => {
  test('permute / transpose, ranks 1..6: forward and gradient', async () => {
    for (const [shape, perm] of PERMS) {
      await gradCheck(
        be(),
        (x) => pd.permute(x, perm),
        (x) => permuteRef(x, shape, perm),
        [{ shape }],
        { what: `permute [${shape}] by [${perm}]` },
      );
    }
    const shape = [3, 4, 5];
    await gradCheck(
      be(),
      (x) => pd.transpose(x),
      (x) => permuteRef(x, shape, [0, 2, 1]),
      [{ shape }],
      { what: 'transpose' },
    );
    await gradCheck(
      be(),
      (x) => pd.transpose(x, 0, 2),
      (x) => permuteRef(x, shape, [2, 1, 0]),
      [{ shape }],
      { what: 'transpose 0 2' },
    );
  });

  test('slice, ranks 1..6: forward and gradient', async () => {
    for (const [shape, begin, size] of SLICES) {
      const b = begin.map((v, d) => (v < 0 ? v + shape[d] : v));
      const s = size.map((v, d) => (v === -1 ? shape[d] - b[d] : v));
      await gradCheck(
        be(),
        (x) => pd.slice(x, begin, size),
        (x) => sliceRef(x, shape, b, s),
        [{ shape }],
        { what: `slice [${shape}] at [${begin}] size [${size}]` },
      );
    }
    const t = pd.tensor(randArray(12, 1), [3, 4], be());
    const s = pd.slice(t, [1]);
    assert.equal(s.shape, [2, 4]);
    assert.throws(() => pd.slice(t, [0, 2], [3, 3]), /slice: begin 2, size 3 is out of range for axis 1 of size 4/);
    s.dispose();
    t.dispose();
  });

  test('concat along each axis, ranks 1..6: forward and gradient', async () => {
    for (const [shapes, axis] of CONCATS) {
      const a = axis < 0 ? axis + shapes[0].length : axis;
      await gradCheck(
        be(),
        (...xs) => pd.concat(xs, axis),
        (...xs) => concatRef(xs, shapes, a),
        shapes.map((shape) => ({ shape })),
        { what: `concat [${shapes.map((s) => `[${s}]`)}] axis ${axis}` },
      );
    }
    const a = pd.zeros([2, 3], be());
    const b = pd.zeros([3, 3], be());
    assert.throws(() => pd.concat([a, b], 1), /concat: shapes \[2,3\] and \[3,3\] differ outside axis 1/);
    a.dispose();
    b.dispose();
  });

  test('copies move i32 words bit for bit', async () => {
    const shape = [3, 5, 7];
    // NaN payloads, denormals and the extremes as f32 bit patterns.
    const vals = Int32Array.from(
      { length: numel(shape) },
      (_, i) => [0x7fc00001, 1, -1, 0x00000003, 0x7fffffff, -0x80000000, i * 7919][i % 7],
    );
    const t = pd.tensor(vals, shape, be(), 'i32');
    const p = pd.permute(t, [2, 0, 1]);
    assert.is(p.dtype, 'i32');
    assert.equal(await read(p), Array.from(permuteRef(Float64Array.from(vals), shape, [2, 0, 1])));
    const s = pd.slice(t, [1, 1, 1], [2, 3, 5]);
    assert.equal(await read(s), Array.from(sliceRef(Float64Array.from(vals), shape, [1, 1, 1], [2, 3, 5])));
    const g = pd.gatherRows(t, [2, 0, 2]);
    assert.equal(await read(g), Array.from(gatherRowsRef(Float64Array.from(vals), 35, [2, 0, 2])));
    for (const x of [t, p, s, g]) x.dispose();
  });

  test('gatherRows with repeated indices: forward and gradient', async () => {
    const idx = [3, 0, 3, 3, 1, 4, 0];
    await gradCheck(
      be(),
      (x, i) => pd.gatherRows(x, i),
      (x) => gatherRowsRef(x, 17, idx),
      [{ shape: [5, 17] }, { shape: [7], data: idx, dtype: 'i32' }],
      { what: 'gatherRows [5,17]' },
    );
    // Host indices, x of rank 3, several passes over the same row.
    await gradCheck(
      be(),
      (x) => pd.gatherRows(x, [1, 1, 0, 2, 1]),
      (x) => gatherRowsRef(x, 6, [1, 1, 0, 2, 1]),
      [{ shape: [3, 2, 3] }],
      { what: 'gatherRows host indices' },
    );
    // Index tensor of rank 2: the output is idx.shape ++ x.shape[1:].
    const x = pd.tensor(randArray(12, 4), [4, 3], be());
    const i2 = pd.tensor([3, 2, 1, 0, 0, 3], [2, 3], be(), 'i32');
    const g = pd.gatherRows(x, i2);
    assert.equal(g.shape, [2, 3, 3]);
    assertClose(await read(g), gatherRowsRef(randArray(12, 4).map(Math.fround), 3, [3, 2, 1, 0, 0, 3]));
    for (const t of [x, i2, g]) t.dispose();
  });

  test("scatterAddRows sums repeated rows in index order (and past llvmpipe's loop cap)", async () => {
    const scatter = async (rows: number, cols: number, nIdx: number) => {
      const r = rng(rows * 31 + cols);
      const idx = Int32Array.from({ length: nIdx }, () => Math.floor(r() * rows));
      // Halves: the sums are exact in f32, so an index range lost cannot hide in the tolerance.
      const dy = randArray(nIdx * cols, cols).map((v) => Math.round(8 * v) / 16);
      const tdy = pd.tensor(dy, [nIdx, cols], be());
      const tidx = pd.tensor(idx, [nIdx], be(), 'i32');
      const dx = pd.empty([rows, cols], be());
      be().fill(dx.storage, dx.size, 123); // overwritten, not accumulated
      be().scatterAddRows(tdy.storage, tidx.storage, dx.storage, nIdx, rows, cols);
      const got = await read(dx);
      for (const t of [tdy, tidx, dx]) t.dispose();
      return { got, ref: scatterAddRowsRef(dy, idx, rows, cols) };
    };
    const cases = [
      [1, 1, 5],
      [5, 3, 17],
      [129, 67, 300],
      [17, 257, 129],
      [3, 1031, 7],
      [7, 3, 70001],
    ];
    for (const [rows, cols, nIdx] of cases) {
      const { got, ref } = await scatter(rows, cols, nIdx);
      assertClose(got, ref, { rtol: 1e-5, atol: 1e-5 }, `scatterAddRows ${rows}x${cols} from ${nIdx}`);
      if (!(be() instanceof WebGPUBackend)) continue;
      // Walking idx in ranges of a few, a dispatch each (src/backend/webgpu/loop-budget.ts): same bits.
      const old = setLoopBudget(40);
      try {
        const ranged = (await scatter(rows, cols, nIdx)).got;
        assert.equal(f32Bits(ranged), f32Bits(got), `scatterAddRows ${rows}x${cols} from ${nIdx}, idx in ranges`);
      } finally {
        setLoopBudget(old);
      }
    }
  });

  test('gatherRows out-of-range indices', async () => {
    const x = pd.tensor(randArray(15, 2), [5, 3], be());
    assert.throws(() => pd.gatherRows(x, [0, 5]), /gatherRows: index 5 at position 1 is out of range for 5 rows/);
    assert.throws(() => pd.gatherRows(x, [-1]), /gatherRows: index -1 at position 0 is out of range/);
    const bad = pd.tensor([1, 7, 2], [3], be(), 'i32');
    if (be().kind === 'wasm') {
      assert.throws(() => pd.gatherRows(x, bad), /gatherRows: index 7 at position 1 is out of range for 5 rows/);
    } else {
      // WebGPU cannot raise from a kernel: the out-of-range row reads as zeros.
      const g = pd.gatherRows(x, bad);
      const v = await read(g);
      assert.equal(v.slice(3, 6), [0, 0, 0]);
      g.dispose();
    }
    x.dispose();
    bad.dispose();
  });

  test('indexSelect along an inner axis: forward and gradient', async () => {
    const shape = [3, 5, 2];
    const idx = [4, 0, 4, 2];
    const ref = (x: Float64Array) => {
      const out = new Float64Array(3 * 4 * 2);
      for (let a = 0; a < 3; a++)
        for (let i = 0; i < 4; i++) for (let c = 0; c < 2; c++) out[(a * 4 + i) * 2 + c] = x[(a * 5 + idx[i]) * 2 + c];
      return out;
    };
    await gradCheck(be(), (x) => pd.indexSelect(x, 1, idx), ref, [{ shape }], { what: 'indexSelect axis 1' });
  });

  test('patchify / unpatchify: forward and gradient', async () => {
    for (const [b, c, h, w, p] of [
      [1, 1, 3, 3, 3],
      [2, 3, 4, 6, 2],
      [1, 2, 5, 5, 1],
      [2, 1, 6, 3, 3],
    ]) {
      const n = (h / p) * (w / p);
      await gradCheck(
        be(),
        (x) => pd.patchify(x, p),
        (x) => patchifyRef(x, b, c, h, w, p),
        [{ shape: [b, c, h, w] }],
        { what: `patchify [${b},${c},${h},${w}] p ${p}` },
      );
      await gradCheck(
        be(),
        (x) => pd.unpatchify(x, p, h, w),
        (x) => unpatchifyRef(x, b, c, h, w, p),
        [{ shape: [b, n, c * p * p] }],
        { what: `unpatchify [${b},${n},${c * p * p}] p ${p}` },
      );
    }
  });

  test('patchify then a linear map equals a stride-p Conv2d with the flattened weight', async () => {
    const [b, c, h, w, p, dOut] = [2, 3, 6, 4, 2, 5];
    const x = randArray(b * c * h * w, 5);
    const weight = randArray(dOut * c * p * p, 6); // [D, C, p, p] as PyTorch stores it
    const t = pd.tensor(x, [b, c, h, w], be());
    const pt = pd.patchify(t, p);
    const patches = await read(pt);
    pt.dispose();
    const nh = h / p,
      nw = w / p,
      f = c * p * p;
    for (let n = 0; n < b; n++) {
      for (let ph = 0; ph < nh; ph++) {
        for (let pw = 0; pw < nw; pw++) {
          for (let o = 0; o < dOut; o++) {
            let conv = 0,
              lin = 0;
            for (let ch = 0; ch < c; ch++) {
              for (let i = 0; i < p; i++) {
                for (let j = 0; j < p; j++) {
                  conv +=
                    weight[((o * c + ch) * p + i) * p + j] *
                    Math.fround(x[((n * c + ch) * h + ph * p + i) * w + pw * p + j]);
                }
              }
            }
            for (let q = 0; q < f; q++) lin += weight[o * f + q] * patches[(n * nh * nw + ph * nw + pw) * f + q];
            assertClose([lin], [conv], { rtol: 1e-9, atol: 1e-9 }, `patch (${n},${ph},${pw}) output ${o}`);
          }
        }
      }
    }
    t.dispose();
  });

  test('shape errors', () => {
    const t = pd.zeros([2, 3, 4, 4], be());
    assert.throws(() => pd.permute(t, [0, 1, 1, 2]), /permute: \[0,1,1,2\] is not a permutation/);
    assert.throws(() => pd.patchify(t, 3), /patchify: image 4x4 is not divisible into 3x3 patches/);
    assert.throws(() => pd.transpose(t, 4), /transpose: axis 4 is out of range/);
    t.dispose();
  });
});
