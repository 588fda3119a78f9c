// KoLeo (DINOv2's KoLeoLoss) on features against an independent float64 PyTorch implementation
// (test/fixtures/ssl/koleo.safetensors, scripts/make-ssl-fixtures.py). KoLeo-proto, the same loss on
// the head's prototypes, is checked in head.test.ts.
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';
import { backward, tidy } from '../../src/tensor/index.js';
import { koleoLoss } from '../../src/ssl/regularizers.js';
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
});
