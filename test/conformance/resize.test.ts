import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { bicubicRef } from '../reference/resize.js';

conformance('resize', (test, be) => {
  test('bicubic: up, down, odd sizes, align_corners, against the direct 4x4 reference', async () => {
    const cases: [number[], [number, number], boolean][] = [
      [[2, 3, 7, 5], [13, 11], false],
      [[2, 3, 7, 5], [13, 11], true],
      [[1, 9, 10], [4, 3], false],
      [[1, 9, 10], [4, 3], true],
      [[3, 6], [6, 6], false],
      [[1, 1], [3, 2], false],
      [[2, 4, 4], [1, 1], true],
      [[2, 17, 3], [5, 33], false],
    ];
    for (const [shape, [oh, ow], align] of cases) {
      const [h, w] = shape.slice(-2);
      const planes = shape.slice(0, -2).reduce((p, d) => p * d, 1);
      const x = randArray(planes * h * w, h * 31 + w);
      const t = pd.tensor(x, shape, be());
      const y = pd.resizeBicubic(t, [oh, ow], { alignCorners: align });
      assert.equal(y.shape, [...shape.slice(0, -2), oh, ow]);
      assertClose(
        await read(y),
        bicubicRef(x, planes, h, w, oh, ow, align),
        { rtol: 1e-5, atol: 1e-5 },
        `[${shape}] → [${oh}, ${ow}] align=${align}`,
      );
      t.dispose();
      y.dispose();
    }
  });

  test('bicubic: identity at the same size, DINO position-embedding resize with scale factors', async () => {
    const x = randArray(2 * 5 * 6, 3);
    const t = pd.tensor(x, [2, 5, 6], be());
    const same = pd.resizeBicubic(t, [5, 6]);
    assertClose(await read(same), Array.from(x, Math.fround), { rtol: 1e-6, atol: 1e-6 }, 'same size');
    // DINO's interpolate_pos_encoding: a 14x14 grid to 16x16 with scale_factor = (16 + 0.1) / 14.
    const s = 16.1 / 14;
    const pos = randArray(8 * 14 * 14, 4);
    const tp = pd.tensor(pos, [1, 8, 14, 14], be());
    const y = pd.resizeBicubic(tp, [16, 16], { scales: [s, s] });
    assertClose(
      await read(y),
      bicubicRef(pos, 8, 14, 14, 16, 16, false, [s, s]),
      { rtol: 1e-5, atol: 1e-5 },
      'scale factors',
    );
    for (const v of [t, same, tp, y]) v.dispose();
  });

  test('bicubic: gradient', async () => {
    for (const align of [false, true]) {
      await gradCheck(
        be(),
        (x) => pd.resizeBicubic(x, [7, 3], { alignCorners: align }),
        (x) => bicubicRef(x, 2, 5, 4, 7, 3, align),
        [{ shape: [2, 5, 4] }],
        { what: `bicubic align=${align}` },
      );
    }
  });

  test('bicubic: shape errors', () => {
    const v = pd.zeros([4], be());
    const x = pd.zeros([2, 3], be());
    assert.throws(() => pd.resizeBicubic(v, [2, 2]), /resizeBicubic: needs at least 2 dims/);
    assert.throws(() => pd.resizeBicubic(x, [0, 2]), /resizeBicubic: output size must be two positive integers/);
    v.dispose();
    x.dispose();
  });
});
