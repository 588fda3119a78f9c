// wasm and WebGPU agree on a small composite computation: a 2-layer MLP forward + backward, global
// gradient clipping, an AdamW step and a teacher EMA, repeated a few steps. Each kernel is checked
// against its reference elsewhere; this catches disagreements that only show once ops compose
// (broadcast strides in backward, grad accumulation, in-place optimiser updates, queue ordering).
// Layer 1 is linear() (the fused bias product), layer 2 matmul() with a transposed weight plus a
// broadcast bias, so both product paths and their backward rules are compared.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ALL_BACKENDS, getBackend } from './helpers/backends.js';
import { assertClose, randArray } from './helpers/check.js';
import * as pd from '../src/tensor/index.js';
import type { Backend } from '../src/backend/backend.js';

const B = 16,
  D = 33,
  H = 65;

function mlp(x: pd.Tensor, [w1, b1, w2, b2]: pd.Tensor[]): pd.Tensor {
  const h = pd.gelu(pd.linear(x, w1, b1));
  return pd.add(pd.matmul(h, w2, { transB: true }), b2);
}

interface Trace {
  losses: number[];
  grads: number[][];
  params: number[][];
  teacher: number[][];
  norms: number[];
}

async function train(be: Backend, O: number, STEPS: number, clip: number): Promise<Trace> {
  const shapes = [[H, D], [H], [O, H], [O]];
  const params = shapes.map((s, i) =>
    pd.param(
      pd.tensor(
        randArray(
          s.reduce((a, b) => a * b, 1),
          10 + i,
          -0.3,
          0.3,
        ),
        s,
        be,
      ),
    ),
  );
  const [w1, b1, w2, b2] = params;
  const teacher = params.map((p) => pd.affine(p, 1, 0));
  const x = pd.tensor(randArray(B * D, 20), [B, D], be);
  const target = pd.tensor(randArray(B * O, 21), [B, O], be);
  const opt = new pd.AdamW(
    [
      { params: [w1, w2], weightDecay: 0.04 },
      { params: [b1, b2], weightDecay: 0 },
    ],
    { lr: 3e-3 },
  );
  const trace: Trace = { losses: [], grads: [], params: [], teacher: [], norms: [] };
  for (let s = 0; s < STEPS; s++) {
    opt.groups[0].lr = 3e-3 * (s + 1);
    const [loss, norm] = pd.tidy(() => {
      const y = mlp(x, params);
      const l = pd.mean(pd.square(pd.sub(y, target)));
      pd.backward(l);
      return [l, pd.clipGradNorm(params, clip)];
    });
    trace.losses.push(await loss.item());
    trace.norms.push(await norm.item());
    if (s === 0) for (const p of params) trace.grads.push(Array.from(await p.grad!.data()));
    pd.tidy(() => {
      opt.step();
      opt.zeroGrad();
      pd.emaUpdate(teacher, params, 0.9);
    });
    loss.dispose();
    norm.dispose();
  }
  for (const p of params) trace.params.push(Array.from(await p.data()));
  for (const t of teacher) trace.teacher.push(Array.from(await t.data()));
  opt.dispose();
  for (const t of [...params, ...teacher, x, target]) t.dispose();
  return trace;
}

const agreement = suite('agreement (wasm-relaxed-2t vs webgpu)');
const cases = ['wasm-relaxed-2t', 'webgpu'].map((n) => ALL_BACKENDS.find((c) => c.name === n)!);

/** Trains both backends from the same start and compares every trace. */
async function agree(O: number, STEPS: number, clip: number): Promise<void> {
  const [a, b] = await Promise.all(cases.map((c) => getBackend(c)));
  const ta = await train(a, O, STEPS, clip);
  const tb = await train(b, O, STEPS, clip);
  assert.ok(ta.norms[0] > clip, `the case must actually clip (norm ${ta.norms[0]})`);
  assertClose(tb.losses, ta.losses, { rtol: 1e-4, atol: 1e-6 }, 'losses');
  assertClose(tb.norms, ta.norms, { rtol: 1e-4, atol: 1e-6 }, 'grad norms');
  ta.grads.forEach((g, i) => assertClose(tb.grads[i], g, { rtol: 1e-3, atol: 1e-5 }, `clipped grad ${i}, step 1`));
  ta.params.forEach((p, i) =>
    assertClose(tb.params[i], p, { rtol: 1e-4, atol: 1e-5 }, `param ${i} after ${STEPS} steps`),
  );
  ta.teacher.forEach((p, i) =>
    assertClose(tb.teacher[i], p, { rtol: 1e-4, atol: 1e-5 }, `teacher ${i} after ${STEPS} steps`),
  );
}

agreement('MLP forward/backward + clipGradNorm + AdamW + EMA agree', () => agree(9, 3, 0.5));

// A DINO head's size: the backward's products reduce over the 65536 outputs, which llvmpipe would
// cut short (it stops an invocation's loops near 65535 iterations; src/backend/webgpu/loop-budget.ts).
agreement("the same with 65536 outputs (reductions past llvmpipe's loop cap)", () => agree(65536, 2, 0.05));

agreement.run();
