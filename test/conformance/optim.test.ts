import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { assertClose, randArray, read } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import type { Backend } from '../../src/backend/backend.js';
import { adamwRef, clipGradientsRef, clipGradNormRef, emaRef, l2, type AdamWRefParams } from '../reference/optim.js';

const SIZES = [1, 3, 17, 1031, 100003];

// Changing lr / wd per step like a schedule; the large-eps step makes eps's placement (added to
// √v̂, not to v̂ or √v) visible, the large-wd one the decoupled decay.
const HYPER = [
  { lr: 1e-2, weightDecay: 0.04, eps: 1e-8 },
  { lr: 5e-3, weightDecay: 0.4, eps: 1e-8 },
  { lr: 2e-2, weightDecay: 0, eps: 0.1 },
  { lr: 1e-3, weightDecay: 4, eps: 1e-6 },
];

/** Grads with exact zeros sprinkled in (m = v = 0 at step 1 must give a zero update). */
function grads(n: number, seed: number): Float64Array {
  const g = randArray(n, seed);
  for (let i = 0; i < n; i += 7) g[i] = 0;
  return g;
}

const f32 = (x: ArrayLike<number>) => Float64Array.from(Float32Array.from(x));

async function runAdamw(
  be: Backend,
  n: number,
  betas: [number, number],
  firstStep: number,
  m0: Float64Array,
  v0: Float64Array,
): Promise<void> {
  const p = f32(randArray(n, n));
  const m = f32(m0);
  const v = f32(v0);
  const tp = pd.tensor(p, [n], be);
  const tm = pd.tensor(m, [n], be);
  const tv = pd.tensor(v, [n], be);
  for (let k = 0; k < HYPER.length; k++) {
    const g = f32(grads(n, 1000 * n + k));
    const tg = pd.tensor(g, [n], be);
    const h: AdamWRefParams = { ...HYPER[k], beta1: betas[0], beta2: betas[1], step: firstStep + k };
    be.adamw(tp.storage, tg.storage, tm.storage, tv.storage, n, h);
    adamwRef(p, g, m, v, h);
    tg.dispose();
  }
  const what = `adamw n=${n} betas ${betas} from step ${firstStep}`;
  assertClose(await read(tm), m, { rtol: 1e-5, atol: 1e-7 }, `${what}: m`);
  assertClose(await read(tv), v, { rtol: 1e-5, atol: 1e-9 }, `${what}: v`);
  assertClose(await read(tp), p, { rtol: 1e-5, atol: 2e-6 }, `${what}: param`);
  for (const t of [tp, tm, tv]) t.dispose();
}

conformance('optim', (test, be) => {
  test('adamw kernel vs reference: fresh state, several steps, changing lr / wd / eps', async () => {
    for (const n of SIZES) {
      await runAdamw(be(), n, [0.9, 0.999], 1, new Float64Array(n), new Float64Array(n));
    }
  });

  test('adamw kernel vs reference: resumed state (late step, other betas)', async () => {
    for (const n of SIZES) {
      const m0 = randArray(n, 5 * n, -0.3, 0.3);
      const v0 = randArray(n, 7 * n, 0, 0.2);
      await runAdamw(be(), n, [0.8, 0.95], 1000, m0, v0);
      await runAdamw(be(), n, [0, 0.5], 3, m0, v0);
    }
  });

  test('ema kernel vs reference', async () => {
    for (const n of SIZES) {
      const t = f32(randArray(n, n + 1));
      const tt = pd.tensor(t, [n], be());
      for (const [k, momentum] of [0.996, 0.9, 0.5, 0, 1].entries()) {
        const s = f32(randArray(n, n + 10 + k));
        const ts = pd.tensor(s, [n], be());
        pd.emaUpdate([tt], [ts], momentum);
        emaRef(t, s, momentum);
        ts.dispose();
      }
      assertClose(await read(tt), t, { rtol: 1e-5, atol: 1e-6 }, `ema n=${n}`);
      tt.dispose();
    }
  });

  test('AdamW class: two groups, per-param steps, schedule, state round trip', async () => {
    const shapes = [[3, 5], [7, 2], [5], [17]];
    const init = shapes.map((s, i) =>
      f32(
        randArray(
          s.reduce((a, b) => a * b, 1),
          50 + i,
        ),
      ),
    );
    const mk = () => init.map((x, i) => pd.param(pd.tensor(x, shapes[i], be()), `p${i}`));
    const ps = mk();
    const [decayed, plain] = pd.decayGroups(
      ps.map((p, i) => [i === 3 ? 'head.bias' : `w${i}`, p] as [string, pd.Tensor]),
    );
    assert.equal(decayed, [ps[0], ps[1]]);
    assert.equal(plain, [ps[2], ps[3]]);
    const opt = new pd.AdamW(
      [
        { params: decayed, weightDecay: 0.05 },
        { params: plain, weightDecay: 0 },
      ],
      { lr: 1e-2 },
    );
    const ref = init.map((x) => ({
      p: Float64Array.from(x),
      m: new Float64Array(x.length),
      v: new Float64Array(x.length),
      step: 0,
    }));
    const lrs = [1e-2, 3e-2, 2e-3, 5e-3];
    const stepAll = (k: number) => {
      opt.groups[0].lr = lrs[k];
      opt.groups[1].lr = lrs[k] / 2;
      opt.groups[0].weightDecay = 0.05 * (k + 1);
      ps.forEach((p, i) => {
        if (i === 3 && k === 1) return; // no grad: skipped, its step count does not advance
        const g = f32(randArray(p.size, 100 * k + i));
        p.grad = pd.tensor(g, p.shape, be());
        const r = ref[i];
        r.step++;
        adamwRef(r.p, g, r.m, r.v, {
          lr: i < 2 ? lrs[k] : lrs[k] / 2,
          weightDecay: i < 2 ? 0.05 * (k + 1) : 0,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          step: r.step,
        });
      });
      opt.step();
      opt.zeroGrad();
    };
    for (let k = 0; k < 3; k++) stepAll(k);
    for (const [i, p] of ps.entries()) {
      assert.is(p.grad, null);
      assertClose(await read(p), ref[i].p, { rtol: 1e-5, atol: 1e-6 }, `AdamW param ${i}`);
    }
    const st = opt.state();
    assert.is(st.step, 3);
    assert.equal(
      st.params.map((e) => e?.step),
      [3, 3, 3, 2],
    );
    for (const [i, e] of st.params.entries()) {
      assertClose(await read(e!.m), ref[i].m, { rtol: 1e-5, atol: 1e-7 }, `AdamW m ${i}`);
      assertClose(await read(e!.v), ref[i].v, { rtol: 1e-5, atol: 1e-9 }, `AdamW v ${i}`);
    }

    // A second optimiser on copies of the parameters, loaded with this state, continues identically.
    const ps2 = await Promise.all(ps.map(async (p, i) => pd.param(pd.tensor(await p.data(), p.shape, be()), `q${i}`)));
    const opt2 = new pd.AdamW([
      { params: ps2.slice(0, 2), weightDecay: 0.15 },
      { params: ps2.slice(2), weightDecay: 0 },
    ]);
    opt2.loadState(st);
    opt2.groups[0].lr = opt.groups[0].lr = 4e-3;
    opt2.groups[1].lr = opt.groups[1].lr = 2e-3;
    for (const [i, p] of ps.entries()) {
      const g = f32(randArray(p.size, 900 + i));
      p.grad = pd.tensor(g, p.shape, be());
      ps2[i].grad = pd.tensor(g, p.shape, be());
    }
    opt.step();
    opt2.step();
    assert.is(opt2.state().step, 4);
    for (const [i, p] of ps.entries()) assert.equal(await read(ps2[i]), await read(p), `resumed param ${i}`);
    opt.dispose();
    // loadState copied: the second optimiser's state survives the first one's dispose.
    assert.ok(!opt2.state().params[0]!.m.disposed);
    opt2.dispose();
    for (const p of [...ps, ...ps2]) p.dispose();
  });

  test('AdamW: state is allocated lazily and kept out of tidy scopes', async () => {
    const live = pd.liveTensors();
    const p = pd.param(pd.tensor([1, 2, 3], [3], be()));
    const q = pd.param(pd.tensor([4, 5], [2], be()));
    const opt = new pd.AdamW([p, q], { lr: 0.1, weightDecay: 0 });
    assert.equal(opt.state().params, [null, null]);
    pd.tidy(() => {
      p.grad = pd.keep(pd.tensor([1, -1, 0], [3], be()));
      opt.step();
      opt.zeroGrad();
    });
    const st = opt.state();
    assert.ok(st.params[0] && !st.params[0].m.disposed && !st.params[0].v.disposed);
    assert.is(st.params[1], null);
    // step 1 with bias correction: the update is lr·sign(g) (0 where g = 0)
    assertClose(await read(p), [0.9, 2.1, 3], { rtol: 1e-6, atol: 1e-6 }, 'first step');
    assertClose(await read(q), [4, 5], {}, 'untouched param');
    opt.dispose();
    p.dispose();
    q.dispose();
    assert.is(pd.liveTensors(), live);
  });

  test('globalGradNorm / clipGradNorm vs reference', async () => {
    const shapes = [[4, 33], [129], [1], [3, 3, 3]];
    for (const maxNorm of [0.5, 1e3]) {
      const gs = shapes.map((s, i) =>
        f32(
          randArray(
            s.reduce((a, b) => a * b, 1),
            70 + i,
          ),
        ),
      );
      const ps = shapes.map((s) => pd.param(pd.zeros(s, be())));
      const extra = pd.param(pd.zeros([5], be())); // no grad: ignored
      ps.forEach((p, i) => {
        p.grad = pd.tensor(gs[i], p.shape, be());
      });
      const [total, clipped] = clipGradNormRef(gs, maxNorm);
      const n0 = pd.globalGradNorm([...ps, extra]);
      assertClose(await read(n0), [total], { rtol: 1e-5 }, 'globalGradNorm');
      const n1 = pd.clipGradNorm([...ps, extra], maxNorm);
      assertClose(await read(n1), [total], { rtol: 1e-5 }, 'clipGradNorm total');
      for (const [i, p] of ps.entries())
        assertClose(await read(p.grad!), clipped[i], { rtol: 1e-5, atol: 1e-7 }, `clipGradNorm(${maxNorm}) grad ${i}`);
      assert.is(extra.grad, null);
      if (maxNorm < total) {
        const after = Math.hypot(...(await Promise.all(ps.map(async (p) => l2(await read(p.grad!))))));
        assertClose([after], [maxNorm], { rtol: 1e-4 }, 'total norm after clipping');
      }
      for (const t of [n0, n1, extra, ...ps]) t.dispose();
    }
  });

  test('clipGradients (per parameter, dino) vs reference', async () => {
    const shapes = [[4, 33], [129], [1], [3, 3, 3], [2, 2]];
    const scale = [1, 0.01, 5, 0.2, 0];
    const gs = shapes.map((s, i) =>
      f32(
        randArray(
          s.reduce((a, b) => a * b, 1),
          80 + i,
        ).map((v) => v * scale[i]),
      ),
    );
    const ps = shapes.map((s) => pd.param(pd.zeros(s, be())));
    ps.forEach((p, i) => {
      p.grad = pd.tensor(gs[i], p.shape, be());
    });
    const noGradParam = pd.param(pd.zeros([3], be()));
    const clip = 1.5;
    const [norms, clipped] = clipGradientsRef(gs, clip);
    assert.ok(norms.some((n) => n > clip) && norms.some((n) => n < clip), 'the case clips some params and not others');
    const got = pd.clipGradients([noGradParam, ...ps], clip);
    assert.is(got.length, ps.length);
    assertClose(await Promise.all(got.map((t) => t.item())), norms, { rtol: 1e-5, atol: 1e-7 }, 'per-param norms');
    for (const [i, p] of ps.entries())
      assertClose(await read(p.grad!), clipped[i], { rtol: 1e-5, atol: 1e-7 }, `clipGradients grad ${i}`);
    for (const t of [...got, noGradParam, ...ps]) t.dispose();
  });

  // The chain of tensor ops clipGradients ran before clipScale: the kernel must give its bits.
  function clipChain(g: pd.Tensor, clip: number): [pd.Tensor, pd.Tensor] {
    const ss = pd.sumSquares(pd.reshape(g, [g.size]));
    const norm = pd.sqrt(ss);
    const c = pd.minimum(pd.div(clip, pd.affine(norm, 1, 1e-6)), 1);
    return [norm, pd.mul(g, c)];
  }

  test('clipScale kernel: the op chain it replaced bit for bit, and the f64 reference', async () => {
    for (const n of [1, 5, 257, 4099, 100003]) {
      for (const scale of [0, 1e-3, 1, 40]) {
        for (const clip of [3, 1.5, 0, Infinity]) {
          const g = f32(randArray(n, 90 + n).map((v) => v * scale));
          const [want, out, norm] = pd.tidy(() => {
            const tg = pd.tensor(g, [n], be());
            const [chainNorm, chainOut] = clipChain(tg, clip);
            const ss = pd.sumSquares(pd.reshape(tg, [n]));
            const o = pd.empty([n], be());
            const nrm = pd.empty([], be());
            be().clipScale(tg.storage, ss.storage, o.storage, nrm.storage, n, clip);
            return [pd.concat([pd.reshape(chainNorm, [1]), chainOut], 0), o, nrm];
          });
          const what = `clipScale n=${n} scale ${scale} clip ${clip}`;
          const w = Float32Array.from(await read(want));
          const gotNorm = Float32Array.from(await read(norm));
          const gotOut = Float32Array.from(await read(out));
          assert.equal(Array.from(gotNorm), [w[0]], `${what}: norm`);
          assert.ok(
            gotOut.every((v, i) => Object.is(v, w[i + 1])),
            `${what}: out differs from the op chain's bits`,
          );
          const [norms, clipped] = clipGradientsRef([g], clip);
          assertClose([gotNorm[0]], norms, { rtol: 1e-5, atol: 1e-7 }, `${what}: norm vs f64`);
          if (Number.isFinite(clip))
            assertClose(Array.from(gotOut), clipped[0], { rtol: 1e-5, atol: 1e-7 }, `${what}: out vs f64`);
          for (const t of [want, out, norm]) t.dispose();
        }
      }
    }
  });

  test('clipScale: an empty gradient gets norm 0; NaN, Inf, Σ g² overflow and -0 as in the op chain', async () => {
    const e = pd.empty([0], be());
    const eOut = pd.empty([0], be());
    const ss = pd.zeros([], be());
    const nrm = pd.full([], 7, be());
    be().clipScale(e.storage, ss.storage, eOut.storage, nrm.storage, 0, 3);
    assert.equal(await read(nrm), [0]);
    const cases: [string, number[], number][] = [
      ['NaN', [1, -2, NaN, 0.5, 3], 3],
      ['Infinity', [1, -2, Infinity, 0.5, 3], 3],
      ['Σ g² overflowing to Infinity', [3e38, -3e38, 3e38, 1, -2], 3],
      ['-0 entries', [-0, 1, -0, -2, 0], 3],
      ['-0 entries, clip 0', [-0, 1, -0, -2, 0], 0],
    ];
    for (const [bad, values, clip] of cases) {
      const g = f32(values);
      const [want, got] = pd.tidy(() => {
        const tg = pd.tensor(g, [5], be());
        const [chainNorm, chainOut] = clipChain(tg, clip);
        const s2 = pd.sumSquares(tg);
        const o = pd.empty([5], be());
        const n2 = pd.empty([], be());
        be().clipScale(tg.storage, s2.storage, o.storage, n2.storage, 5, clip);
        return [pd.concat([pd.reshape(chainNorm, [1]), chainOut], 0), pd.concat([pd.reshape(n2, [1]), o], 0)];
      });
      const w = await read(want),
        r = await read(got);
      assert.ok(
        r.every((v, i) => (Number.isNaN(v) ? Number.isNaN(w[i]) : Object.is(v, w[i]))),
        `gradient with ${bad}: [${r}] against the op chain's [${w}]`,
      );
      want.dispose();
      got.dispose();
    }
    for (const t of [e, eOut, ss, nrm]) t.dispose();
  });

  test('errors', () => {
    const a = pd.param(pd.zeros([3], be()));
    const b = pd.zeros([4], be());
    assert.throws(() => pd.emaUpdate([a], [b], 0.9), /emaUpdate: pair 0: target \[3\] vs source \[4\]/);
    assert.throws(() => pd.emaUpdate([a], [a], 0.9), /share storage/);
    assert.throws(() => new pd.AdamW([b]), /does not require grad/);
    assert.throws(() => new pd.AdamW([{ params: [a] }, { params: [a] }]), /more than one group/);
    const opt = new pd.AdamW([a]);
    a.grad = pd.zeros([4], be());
    assert.throws(() => opt.step(), /gradient of #\d+ \[3\] has shape \[4\]/);
    assert.throws(
      () =>
        be().adamw(a.storage, a.storage, a.storage, a.storage, 3, {
          lr: 1,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0,
          step: 0,
        }),
      /step must be an integer/,
    );
    for (const clip of [-1, NaN])
      assert.throws(
        () => be().clipScale(b.storage, a.storage, b.storage, a.storage, 3, clip),
        /clipScale: clip must be ≥ 0/,
      );
    opt.dispose();
    assert.throws(() => opt.step(), /after dispose/);
    a.dispose();
    b.dispose();
  });
});
