// Autograd owns the memory of backward rules: each rule runs in a scope that frees what it creates
// except the gradients it returns. The rules below allocate temporaries and never dispose them;
// after backward those temporaries must be gone, the returned gradients alive and right, and the
// live tensor count and the backend's buffers back where they started once the caller's own
// tensors are disposed.
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import type { Backend } from '../../src/backend/backend.js';

/** What is alive (the pool's size is not: freed buffers may stay pooled for reuse). */
function snapshot(be: Backend): { tensors: number; liveBuffers: number; liveBytes: number } {
  const { liveBuffers, liveBytes } = be.memory();
  return { tensors: pd.liveTensors(), liveBuffers, liveBytes };
}

/**
 * x³, whose rule builds 3x² from temporaries it leaves to the scope; on entry the rule notes
 * whether every temporary of the rules that ran before it is already gone.
 */
function cube(x: pd.Tensor, temps: pd.Tensor[], earlierGone: boolean[]): pd.Tensor {
  const out = pd.noGrad(() => pd.tidy(() => pd.mul(pd.mul(x, x), x)));
  return pd.record(out, 'cube', [x], (g) => {
    earlierGone.push(temps.every((t) => t.disposed));
    const sq = pd.mul(x, x);
    const three = pd.mul(sq, 3);
    temps.push(sq, three);
    return [pd.mul(g, three)];
  });
}

conformance('backward scope', (test, be) => {
  test("a rule's temporaries are freed when it returns; its gradient survives", async () => {
    const before = snapshot(be());
    const temps: pd.Tensor[] = [],
      earlierGone: boolean[] = [];
    const x = pd.param(pd.tensor([1, 2, -3], [3], be()));
    const y1 = cube(x, temps, earlierGone);
    const y2 = cube(y1, temps, earlierGone);
    const loss = pd.sum(y2);
    pd.backward(loss);
    assert.is(temps.length, 4);
    // The outer cube's rule runs first: its temporaries are gone before the inner one's rule starts.
    assert.equal(earlierGone, [true, true]);
    assert.ok(
      temps.every((t) => t.disposed),
      "the rules' temporaries are disposed",
    );
    assert.ok(x.grad && !x.grad.disposed);
    assertClose(await read(x.grad!), [9, 2304, 59049], {}, 'd/dx Σ(x³)³ = 9x⁸');
    // x, its gradient, y1, y2 and the loss: nothing else of the pass is alive.
    assert.is(pd.liveTensors(), before.tensors + 5);
    for (const t of [loss, y2, y1, x]) t.dispose();
    await be().sync();
    assert.equal(snapshot(be()), before);
  });

  test('a rule may return a view of a temporary, one tensor twice, and a gradient nobody needs', async () => {
    const before = snapshot(be());
    const a = pd.param(pd.tensor([1, 2, 3, 4], [2, 2], be()));
    const b = pd.param(pd.tensor([5, 6, 7, 8], [4], be()));
    const c = pd.tensor([0, 0, 0, 0], [4], be());
    const out = pd.noGrad(() => pd.tidy(() => pd.add(pd.reshape(a, [4]), b)));
    const y = pd.record(pd.add(out, c), 'mix', [a, b, c], (g) => {
      const twice = pd.mul(g, 2);
      return [pd.reshape(twice, [2, 2]), twice, pd.mul(g, 5)];
    });
    const loss = pd.sum(y);
    pd.backward(loss);
    assertClose(await read(a.grad!), [2, 2, 2, 2], {}, 'a.grad (a view of the temporary)');
    assertClose(await read(b.grad!), [2, 2, 2, 2], {}, 'b.grad (the temporary itself)');
    assert.is(c.grad, null);
    // a, b, c, their two gradients, out, y, the loss.
    assert.is(pd.liveTensors(), before.tensors + 8);
    for (const t of [loss, y, out, a, b, c]) t.dispose();
    await be().sync();
    assert.equal(snapshot(be()), before);
  });

  test('a rule that throws leaves nothing of the pass behind', async () => {
    const before = snapshot(be());
    const temps: pd.Tensor[] = [];
    const x = pd.param(pd.tensor([1, 2], [2], be()));
    const y = pd.record(
      pd.noGrad(() => pd.mul(x, 1)),
      'faulty',
      [x],
      (g) => {
        temps.push(pd.mul(g, 2));
        throw new Error('rule fault');
      },
    );
    const loss = pd.sum(y);
    assert.throws(() => pd.backward(loss), /rule fault/);
    assert.ok(temps.length === 1 && temps[0].disposed);
    assert.is(x.grad, null);
    assert.is(pd.liveTensors(), before.tensors + 3, 'x, y and the loss only');
    for (const t of [loss, y, x]) t.dispose();
    await be().sync();
    assert.equal(snapshot(be()), before);
  });

  test("the ops' own rules, stripped of their disposes, leave only the leaves' gradients", async () => {
    const before = snapshot(be());
    const x = pd.param(pd.tensor([0.5, -1, 2, 1.5, 0.25, -0.75], [2, 3], be()));
    const v = pd.param(pd.tensor([1, 2, 3, -1, 0.5, 2], [2, 3], be()));
    const g = pd.param(pd.tensor([2, -1], [2], be()));
    const p = pd.param(pd.tensor([2, 3, 1.5], [3], be()));
    const live = pd.liveTensors();
    const loss = pd.tidy(() => {
      // Every rule here allocated temporaries it used to dispose by hand.
      const terms = [
        pd.sum(pd.pow(pd.abs(x), p)),
        pd.sum(pd.div(x, pd.add(pd.abs(v), 1))),
        pd.sum(pd.sub(x, p)),
        pd.sum(pd.maximum(x, v)),
        pd.sum(pd.where(pd.greater(x, 0), x, v)),
        pd.sum(pd.l2Normalize(x)),
        pd.sum(pd.mul(pd.weightNorm(v, g), x)),
        pd.sum(pd.crossEntropy(pd.softmax(v), x)),
        pd.sum(pd.max(x, 1)),
        pd.sumSquares(x),
        pd.mean(pd.mul(x, v)),
        pd.sum(pd.matmul(pd.reshape(x, [1, 2, 3]), pd.reshape(pd.concat([v, v], 0), [2, 3, 2]))),
      ];
      const total = terms.reduce((s, t) => pd.add(s, t));
      const forward = pd.liveTensors();
      pd.backward(total);
      // The caller's scope would free leftovers too, later: count them while it is still open.
      assert.is(pd.liveTensors(), forward + 4, 'backward adds the four leaf gradients and nothing else');
      return total;
    });
    for (const t of [x, v, g, p]) assert.ok(t.grad && !t.grad.disposed, `${t.id} has a gradient`);
    // The loss and four gradients.
    assert.is(pd.liveTensors(), live + 5);
    for (const t of [x, v, g, p]) assert.ok((await read(t.grad!)).every(Number.isFinite));
    for (const t of [loss, x, v, g, p]) t.dispose();
    await be().sync();
    assert.equal(snapshot(be()), before);
  });
});
