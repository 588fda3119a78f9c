import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { attentionRef } from '../reference/attention.js';

// [batch, tokens, heads, head size]: odd token counts (the wasm kernel pads keys to 4 lanes),
// head sizes below, at and past a vector, and vit_cpu's global-crop shape.
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [2, 3, 1, 3],
  [1, 17, 2, 5],
  [3, 5, 3, 4],
  [2, 50, 4, 16],
  [1, 129, 1, 8],
];

conformance('attention', (test, be) => {
  test('forward on odd sizes against a naive reference', async () => {
    for (const [B, T, H, dh] of SHAPES) {
      const x = randArray(B * T * 3 * H * dh, B * 1000 + T, -2, 2);
      const t = pd.tensor(x, [B, T, 3 * H * dh], be());
      const y = pd.attention(t, H);
      const ref = attentionRef(Float64Array.from(x, Math.fround), B, T, H, dh, 1 / Math.sqrt(dh));
      assertClose(await read(y), ref, { rtol: 2e-5, atol: 2e-6 }, `attention B=${B} T=${T} H=${H} dh=${dh}`);
      t.dispose();
      y.dispose();
    }
  });

  test('gradient (finite differences) on odd sizes', async () => {
    for (const [B, T, H, dh] of [
      [1, 3, 1, 3],
      [2, 5, 2, 4],
      [1, 7, 3, 5],
    ]) {
      const scale = 0.7;
      await gradCheck(
        be(),
        (q) => pd.attention(q, H, scale),
        (q) => attentionRef(q, B, T, H, dh, scale),
        [{ shape: [B, T, 3 * H * dh] }],
        { what: `attention B=${B} T=${T} H=${H} dh=${dh}` },
      );
    }
  });

  test('matches softmax(q·kᵀ)·v built from matmul, softmax and permutes', async () => {
    const [B, T, H, dh] = [2, 11, 3, 6];
    const x = randArray(B * T * 3 * H * dh, 5, -1, 1);
    const t = pd.tensor(x, [B, T, 3 * H * dh], be());
    const fused = pd.attention(t, H);
    const composed = pd.tidy(() => {
      const parts = pd.permute(pd.reshape(t, [B, T, 3, H, dh]), [2, 0, 3, 1, 4]);
      const part = (i: number) => pd.reshape(pd.slice(parts, [i, 0, 0, 0, 0], [1, B, H, T, dh]), [B, H, T, dh]);
      const probs = pd.softmax(pd.matmul(pd.mul(part(0), 1 / Math.sqrt(dh)), part(1), { transB: true }), -1);
      return pd.reshape(pd.permute(pd.matmul(probs, part(2)), [0, 2, 1, 3]), [B, T, H * dh]);
    });
    assertClose(await read(fused), await read(composed), { rtol: 1e-5, atol: 1e-6 }, 'fused vs composed');
    for (const z of [t, fused, composed]) z.dispose();
  });

  test('shape errors name the op and the shape', () => {
    const t = pd.zeros([2, 3, 10], be());
    assert.throws(() => pd.attention(t, 2), /attention.*\[2,3,10\].*3 × 2 heads/);
    assert.throws(() => pd.attention(pd.zeros([6, 9], be()), 1), /attention.*\[batch, tokens, 3·dim\]/);
    assert.throws(() => pd.attention(t, 0), /heads must be a positive integer/);
    t.dispose();
  });
});
