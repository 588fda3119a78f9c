import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import { conformance } from '../helpers/backends.js';
import { assertClose, gradCheck, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { attentionGradRef, attentionProbsRef, attentionRef } from '../reference/attention.js';

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

// The flash kernel's grid (wgsl/flash-attention.wgsl): head sizes 16 to 128 (tiles of 120 down to 15
// key rows) and token counts from 1 to ViT-S/16's 197 and past it, odd and not multiples of a tile or
// of the 64-row block. dh = 130 is past the flash kernel (WebGPU falls back to the probs kernel).
const HEAD_DIMS = [16, 24, 64, 128];
const TOKENS = [1, 5, 17, 65, 197, 257];
const GRID: [number, number, number, number][] = HEAD_DIMS.flatMap((dh) =>
  TOKENS.map((T): [number, number, number, number] => [T <= 17 ? 2 : 1, T, T <= 65 ? 2 : 1, dh]),
).concat([[1, 9, 1, 130]]);

/** The gradient of sum(attention(x)·g) with respect to x, on a backend. */
async function attentionGrad(be: Backend, x: Float64Array, g: Float64Array, shape: number[], H: number) {
  const t = pd.param(pd.tensor(x, shape, be));
  pd.tidy(() => {
    const y = pd.attention(t, H);
    pd.backward(pd.sum(pd.mul(y, pd.tensor(g, y.shape, be))));
  });
  const d = await t.grad!.data();
  t.dispose();
  return d;
}

// The analytic gradient the grid test holds every backend to, checked once against central finite
// differences of the forward reference.
const reference = suite('attention reference');
reference('attentionGradRef matches finite differences of attentionRef', () => {
  const [B, T, H, dh, scale] = [2, 4, 2, 3, 0.8];
  const x = randArray(B * T * 3 * H * dh, 11, -1.5, 1.5);
  const g = randArray(B * T * H * dh, 12, -1, 1);
  const loss = (v: Float64Array) => attentionRef(v, B, T, H, dh, scale).reduce((s, o, i) => s + o * g[i], 0);
  const h = 1e-5;
  const numeric = x.map((v, i) => {
    const xp = Float64Array.from(x);
    xp[i] = v + h;
    const xm = Float64Array.from(x);
    xm[i] = v - h;
    return (loss(xp) - loss(xm)) / (2 * h);
  });
  assertClose(attentionGradRef(x, g, B, T, H, dh, scale), numeric, { rtol: 1e-6, atol: 1e-8 }, 'reference gradient');
});
reference.run();

conformance('attention', (test, be) => {
  test('forward and backward over head sizes 16–128 and token counts 1–257', async () => {
    for (const [B, T, H, dh] of GRID) {
      const what = `B=${B} T=${T} H=${H} dh=${dh}`;
      const x = Float64Array.from(randArray(B * T * 3 * H * dh, T * 131 + dh, -1.5, 1.5), Math.fround);
      const g = Float64Array.from(randArray(B * T * H * dh, T * 17 + dh, -1, 1), Math.fround);
      const scale = 1 / Math.sqrt(dh);
      const t = pd.tensor(x, [B, T, 3 * H * dh], be());
      const y = pd.attention(t, H);
      assertClose(await read(y), attentionRef(x, B, T, H, dh, scale), { rtol: 2e-5, atol: 2e-6 }, `forward ${what}`);
      t.dispose();
      y.dispose();
      const ref = attentionGradRef(x, g, B, T, H, dh, scale);
      const big = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const got = await attentionGrad(be(), x, g, [B, T, 3 * H * dh], H);
      assertClose(got, ref, { rtol: 1e-4, atol: 1e-5 * Math.max(1, big) }, `backward ${what}`);
    }
  });

  test('backward is deterministic (bit-identical on a repeat)', async () => {
    const [B, T, H, dh] = [2, 70, 2, 24];
    const x = randArray(B * T * 3 * H * dh, 3, -2, 2);
    const g = randArray(B * T * H * dh, 4, -1, 1);
    const a = await attentionGrad(be(), x, g, [B, T, 3 * H * dh], H);
    const b = await attentionGrad(be(), x, g, [B, T, 3 * H * dh], H);
    assert.ok(
      a.every((v, i) => Object.is(v, b[i])),
      'two backward passes differ',
    );
  });

  test('attentionProbs: the softmax per head', async () => {
    for (const [B, T, H, dh] of [
      [2, 5, 3, 4],
      [1, 67, 2, 64],
      [1, 9, 1, 130],
    ]) {
      const x = randArray(B * T * 3 * H * dh, T + dh, -2, 2);
      const t = pd.tensor(x, [B, T, 3 * H * dh], be());
      const probs = pd.attentionProbs(t, H, 0.3);
      assert.equal(probs.shape, [B, H, T, T]);
      const ref = attentionProbsRef(Float64Array.from(x, Math.fround), B, T, H, dh, 0.3);
      assertClose(await read(probs), ref, { rtol: 2e-5, atol: 1e-6 }, `probs B=${B} T=${T} H=${H} dh=${dh}`);
      t.dispose();
      probs.dispose();
    }
  });

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
