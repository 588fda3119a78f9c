// AdamW against torch.optim.AdamW run in float64 (test/fixtures/ssl/adamw.safetensors,
// scripts/make-ssl-fixtures.py): two parameter groups (the second without weight decay, at twice
// the lr), lr and weight decay changed before every step as DINO's schedules do, and one step where
// a parameter has no gradient (torch skips it, and its own step count does not advance). eps = 1e-6
// against gradients ~1e-4 makes where eps is added visible, and a last step with lr·wd = 0.04 the
// decoupled weight decay.
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { AdamW, keep, tensor } from '../../src/tensor/index.js';
import { agreeTensor, disposeAll, Fixture, leakFree } from '../ssl/fixtures.js';

const f = new Fixture('adamw.safetensors');

conformance('ssl: AdamW vs torch.optim.AdamW', (test, be) => {
  test(
    '5 steps, 2 groups, scheduled lr / weight decay, a skipped gradient',
    leakFree(async () => {
      const lrs = JSON.parse(f.meta('lr')) as number[];
      const wds = JSON.parse(f.meta('weight_decay')) as number[];
      const [beta1, beta2] = JSON.parse(f.meta('betas')) as [number, number];
      const skip = f.num('p1_no_grad_step');
      const p0 = f.param('p0', be());
      const p1 = f.param('p1', be());
      const opt = new AdamW([{ params: [p0] }, { params: [p1], weightDecay: 0 }], {
        betas: [beta1, beta2],
        eps: f.num('eps'),
      });
      for (let step = 0; step < lrs.length; step++) {
        opt.groups[0].lr = lrs[step];
        opt.groups[0].weightDecay = wds[step];
        opt.groups[1].lr = lrs[step] * f.num('p1_lr_factor');
        p0.grad = keep(tensor(f.values(`step${step}.grad.p0`), f.shape('p0'), be()));
        p1.grad = step === skip ? null : keep(tensor(f.values(`step${step}.grad.p1`), f.shape('p1'), be()));
        opt.step();
        await agreeTensor(p0, f.values(`step${step}.p0`), `p0 after step ${step + 1}`);
        await agreeTensor(p1, f.values(`step${step}.p1`), `p1 after step ${step + 1}`);
        opt.zeroGrad();
      }
      const state = opt.state();
      assert.is(state.params[0]?.step, lrs.length);
      assert.is(state.params[1]?.step, lrs.length - 1, 'the skipped step does not count for p1');
      opt.dispose();
      disposeAll(p0, p1);
    }),
  );
});
