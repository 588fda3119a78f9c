// KoLeo (DINOv2's KoLeoLoss) on features against an independent float64 PyTorch implementation
// (test/fixtures/ssl/koleo.safetensors, scripts/make-ssl-fixtures.py). KoLeo-proto, the same loss on
// the head's prototypes, is checked in head.test.ts.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { conformance } from '../helpers/backends.js';
import { backward, tidy } from '../../src/tensor/index.js';
import { EULER_GAMMA, koleoLoss, kozachenkoLeonenkoConstant } from '../../src/ssl/regularizers.js';
import { agree, agreeTensor, disposeAll, Fixture, leakFree } from './fixtures.js';

const f = new Fixture('koleo.safetensors');

conformance('ssl: KoLeo vs PyTorch', (test, be) => {
  test(
    'KoLeo value and gradient: [33, 24] features with a near-duplicate pair and a row of norm ~200',
    leakFree(async () => {
      assert.equal(f.shape('feats'), [f.num('N'), f.num('D')]);
      // The pair is close enough to dominate the loss and its gradient.
      assert.ok(f.num('near_duplicate_distance') < 0.05, 'the fixture has a near-duplicate pair');
      const x = f.param('feats', be());
      const l = tidy(() => {
        const r = koleoLoss(x);
        backward(r);
        return r;
      });
      agree([await l.item()], [f.scalar('loss')], 'KoLeo');
      await agreeTensor(x.grad, f.values('grad'), 'KoLeo gradient');
      disposeAll(x, l);
    }),
  );

  test(
    "the original Kozachenko-Leonenko form: d · DINOv2's − (log V_d + log(n − 1) + γ), gradient d times",
    leakFree(async () => {
      const [N, D] = [f.num('N'), f.num('D')];
      const x = f.param('feats', be());
      const kl = tidy(() => {
        const r = koleoLoss(x, 1e-8, { form: 'kozachenko-leonenko' });
        backward(r);
        return r;
      });
      const c = kozachenkoLeonenkoConstant(N, D);
      agree([await kl.item()], [D * f.scalar('loss') - c], 'Kozachenko-Leonenko');
      await agreeTensor(
        x.grad,
        Float64Array.from(f.values('grad'), (g) => D * g),
        'Kozachenko-Leonenko gradient',
      );
      // Host float64 from the definition: (d/n) Σ log ρ_i + log V_d + log(n − 1) + γ on unit rows.
      const rows = Array.from({ length: N }, (_, i) => {
        const v = Array.from(f.values('feats').subarray(i * D, (i + 1) * D));
        const n = Math.hypot(...v);
        return v.map((a) => a / n);
      });
      let sumLog = 0;
      for (let i = 0; i < N; i++) {
        let rho = Infinity;
        for (let j = 0; j < N; j++)
          if (j !== i) rho = Math.min(rho, Math.hypot(...rows[i].map((a, l) => a - rows[j][l])));
        sumLog += Math.log(rho);
      }
      const H = (D / N) * sumLog + c;
      agree([await kl.item()], [-H], 'Kozachenko-Leonenko from its definition');
      assert.throws(() => koleoLoss(x, 1e-8, { form: 'kl' as never }), /unknown form 'kl'/);
      disposeAll(x, kl);
    }),
  );
});

test('the Kozachenko-Leonenko constant: unit-ball volumes and log(n − 1) + γ', () => {
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
  close(kozachenkoLeonenkoConstant(2, 1), Math.log(2) + EULER_GAMMA, 'd = 1: V = 2, n = 2');
  close(kozachenkoLeonenkoConstant(3, 2), Math.log(Math.PI) + Math.log(2) + EULER_GAMMA, 'd = 2: V = π');
  close(kozachenkoLeonenkoConstant(5, 3), Math.log((4 * Math.PI) / 3) + Math.log(4) + EULER_GAMMA, 'd = 3: V = 4π/3');
  close(kozachenkoLeonenkoConstant(2, 4), Math.log((Math.PI * Math.PI) / 2) + EULER_GAMMA, 'd = 4: V = π²/2');
});
test.run();
