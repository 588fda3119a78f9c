// Memory stays flat over a training loop: 500 steps of a small MLP (forward, loss, backward, grad
// clipping, AdamW, teacher EMA, all inside tidy()) must leave the live tensor count and the
// backend's buffer statistics exactly where they were after a short warm-up.
// Layer 1 is linear() (fused bias product), layer 2 matmul() plus a broadcast bias (sumTo in backward).
import * as assert from 'uvu/assert';
import { conformance } from './helpers/backends.js';
import { randArray } from './helpers/check.js';
import * as pd from '../src/tensor/index.js';
import type { Backend, MemoryStats } from '../src/backend/backend.js';

const B = 4,
  D = 5,
  H = 7,
  O = 3;
const STEPS = 500,
  WARMUP = 20,
  READ_EVERY = 25;

function mlp(x: pd.Tensor, [w1, b1, w2, b2]: pd.Tensor[]): pd.Tensor {
  const h = pd.relu(pd.linear(x, w1, b1));
  return pd.add(pd.matmul(h, w2, { transB: true }), b2);
}

function snapshot(be: Backend): { tensors: number } & MemoryStats {
  return { tensors: pd.liveTensors(), ...be.memory() };
}

conformance('leak', (test, be) => {
  test(`${STEPS} training steps leave tensors and buffers unchanged after warm-up`, async () => {
    const before = snapshot(be());
    const mk = (shape: number[], seed: number, scale = 0.5) =>
      pd.param(
        pd.tensor(
          randArray(
            shape.reduce((a, b) => a * b, 1),
            seed,
            -scale,
            scale,
          ),
          shape,
          be(),
        ),
      );
    const w1 = mk([H, D], 1),
      b1 = mk([H], 2, 0.1),
      w2 = mk([O, H], 3),
      b2 = mk([O], 4, 0.1);
    const params = [w1, b1, w2, b2];
    const teacher = params.map((p) => pd.zerosLike(p));
    const x = pd.tensor(randArray(B * D, 5), [B, D], be());
    const target = pd.tensor(randArray(B * O, 6), [B, O], be());
    const opt = new pd.AdamW(
      [
        { params: [w1, w2], weightDecay: 0.04 },
        { params: [b1, b2], weightDecay: 0 },
      ],
      { lr: 1e-2 },
    );

    let atWarmup: ReturnType<typeof snapshot> | undefined;
    let firstLoss = NaN,
      lastLoss = NaN;
    for (let s = 1; s <= STEPS; s++) {
      opt.groups[0].lr = 1e-2 * (1 - s / (2 * STEPS)); // a schedule, as the trainer sets it
      const loss = pd.tidy(() => {
        const y = mlp(x, params);
        const l = pd.mean(pd.square(pd.sub(y, target)));
        pd.backward(l);
        if (s % 2 === 0) pd.clipGradNorm(params, 1.0);
        else pd.clipGradients(params, 0.5);
        opt.step();
        opt.zeroGrad();
        pd.emaUpdate(teacher, params, 0.99);
        return l;
      });
      // Reading now and then keeps WebGPU's queue bounded (and checks the loop produced numbers).
      if (s === 1 || s === STEPS || s % READ_EVERY === 0) {
        const v = await loss.item();
        if (s === 1) firstLoss = v;
        lastLoss = v;
      }
      loss.dispose();
      if (s === WARMUP) atWarmup = snapshot(be());
    }
    await be().sync();
    assert.equal(snapshot(be()), atWarmup, `after ${STEPS} steps vs after ${WARMUP}`);
    assert.ok(
      Number.isFinite(lastLoss) && lastLoss < 0.5 * firstLoss,
      `training should reduce the loss (${firstLoss} → ${lastLoss})`,
    );

    opt.dispose();
    for (const t of [...params, ...teacher, x, target]) t.dispose();
    const after = snapshot(be());
    assert.is(after.tensors, before.tensors, 'every tensor freed at the end');
    assert.is(after.liveBuffers, before.liveBuffers, 'every buffer freed at the end');
    assert.is(after.liveBytes, before.liveBytes);
  });
});
