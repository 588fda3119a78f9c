import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import * as pd from '../../src/tensor/index.js';
import { longTailAccuracy, longTailGroups, perClassAccuracy, prototypeUsage } from '../../src/eval/index.js';
import { conformance } from '../helpers/backends.js';
import { evalBackends, rejects } from './helpers.js';

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

conformance(
  'eval/usage',
  (test, be) => {
    test('probabilities: argmax use, marginal and entropy against hand-computed values', async () => {
      const rows = [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0.5, 0.5, 0, 0],
        [0.25, 0.25, 0.25, 0.25],
      ];
      const p = pd.tensor(rows.flat(), [4, 4], be());
      const u = await prototypeUsage(p, { input: 'probs' });
      p.dispose();
      assert.is(u.samples, 4);
      assert.is(u.prototypes, 4);
      // argmax (first on ties): 0, 1, 0, 0
      assert.equal(Array.from(u.argmaxCounts), [3, 1, 0, 0]);
      assert.is(u.used, 2);
      // column means: 1.75/4, 1.75/4, 0.25/4, 0.25/4
      assert.equal(Array.from(u.marginal), [0.4375, 0.4375, 0.0625, 0.0625]);
      // −2·0.4375·ln 0.4375 − 2·0.0625·ln 0.0625 = 0.723346 + 0.346574
      near(u.entropy, 1.069917, 2e-6, 'entropy (nats)');
      near(u.entropyFraction, 1.069917 / 1.386294, 2e-6, 'fraction of ln 4');
      near(u.perplexity, Math.exp(1.069917), 1e-5, 'perplexity');
    });

    test('logits at a temperature, in batches and from an iterable', async () => {
      // softmax((0.1·ln p + c) / 0.1) = p for any row constant c
      const probs = [
        [0.7, 0.2, 0.1],
        [0.1, 0.1, 0.8],
        [0.2, 0.5, 0.3],
        [0.6, 0.3, 0.1],
      ];
      const logits = probs.flatMap((r, i) => r.map((v) => 0.1 * Math.log(v) + i));
      const x = pd.tensor(logits, [4, 3], be());
      const whole = await prototypeUsage(x, { temperature: 0.1 });
      const batched = await prototypeUsage(x, { temperature: 0.1, batchSize: 3 });
      const parts = [pd.slice(x, [0, 0], [1, 3]), pd.slice(x, [1, 0], [3, 3])];
      const iter = await prototypeUsage(parts, { temperature: 0.1 });
      assert.ok(!parts[0].disposed, 'caller-owned batches are left alone');
      for (const t of [x, ...parts]) t.dispose();
      for (const [u, what] of [
        [whole, 'whole'],
        [batched, 'batches of 3'],
        [iter, 'iterable'],
      ] as const) {
        assert.is(u.samples, 4, what);
        assert.equal(Array.from(u.argmaxCounts), [2, 1, 1], `${what}: argmax 0, 2, 1, 0`);
        assert.is(u.used, 3, what);
        [0.4, 0.275, 0.325].forEach((m, k) => near(u.marginal[k], m, 2e-6, `${what}: marginal ${k}`));
        // −(0.4 ln 0.4 + 0.275 ln 0.275 + 0.325 ln 0.325) = 0.366516 + 0.355030 + 0.365268
        near(u.entropy, 1.086814, 4e-6, `${what}: entropy`);
        near(u.entropyFraction, 1.086814 / Math.log(3), 4e-6, `${what}: fraction`);
      }
    });

    test('uniform logits over 1000 prototypes: entropy is ln K; errors', async () => {
      const x = pd.full([37, 1000], 0.5, be());
      const u = await prototypeUsage(x, { batchSize: 8 });
      x.dispose();
      assert.is(u.samples, 37);
      assert.is(u.used, 1, 'every tie goes to prototype 0');
      assert.is(u.argmaxCounts[0], 37);
      near(u.entropyFraction, 1, 1e-5, 'fraction');
      near(u.entropy, Math.log(1000), 1e-4, 'entropy');
      const one = pd.full([3, 1], 2, be());
      const u1 = await prototypeUsage(one);
      one.dispose();
      assert.is(u1.used, 1);
      assert.ok(Number.isNaN(u1.entropyFraction), 'K = 1 has no entropy scale');
      await rejects(prototypeUsage([]), /no samples/);
      const a = pd.zeros([2, 3], be()),
        b = pd.zeros([2, 4], be());
      await rejects(prototypeUsage([a, b]), /prototypes/);
      a.dispose();
      b.dispose();
    });
  },
  evalBackends(),
);

const classes = suite('eval/classes');

classes('per-class accuracy', () => {
  const labels = [0, 0, 0, 1, 1, 2, 3, 3];
  const preds = [0, 1, 0, 1, 1, 0, 3, 2];
  const pc = perClassAccuracy(preds, labels, 5);
  assert.equal(Array.from(pc.correct), [2, 2, 0, 1, 0]);
  assert.equal(Array.from(pc.total), [3, 2, 1, 2, 0]);
  assert.equal(Array.from(pc.accuracy.subarray(0, 4)), [2 / 3, 1, 0, 0.5]);
  assert.ok(Number.isNaN(pc.accuracy[4]), 'a class without test rows');
  near(pc.meanClassAccuracy, (2 / 3 + 1 + 0 + 0.5) / 4, 1e-15, 'balanced accuracy');
  assert.throws(() => perClassAccuracy([0], [7], 5), /labels\[0\] = 7/);
});

classes('head / medium / tail by thirds, counts and fractions', () => {
  const counts = [500, 300, 120, 90, 40, 25, 10, 5, 3];
  assert.equal(Array.from(longTailGroups(counts)), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  // shuffled order and ties: sorted by count, then class index
  assert.equal(Array.from(longTailGroups([5, 9, 5, 5])), [1, 0, 1, 2]);
  assert.equal(Array.from(longTailGroups([7, 7, 7, 7, 7, 7, 7, 7, 7, 7])), [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
  assert.equal(Array.from(longTailGroups(counts, { by: 'count' })), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  assert.equal(Array.from(longTailGroups(counts, { by: 'count', many: 250, few: 30 })), [0, 0, 1, 1, 1, 2, 2, 2, 2]);
  // fractions of the largest class (500): head above 250, tail below 25
  assert.equal(
    Array.from(longTailGroups(counts, { by: 'fraction', head: 0.5, tail: 0.05 })),
    [0, 0, 1, 1, 1, 1, 2, 2, 2],
  );
  assert.throws(() => longTailGroups(counts, { by: 'count', many: 10, few: 20 }), /tail threshold/);

  // 9 classes, test rows: class c has c + 1 rows, the first c // 2 + 1 of them right
  const labels: number[] = [],
    preds: number[] = [];
  for (let c = 0; c < 9; c++) {
    for (let r = 0; r <= c; r++) {
      labels.push(c);
      preds.push(r <= Math.floor(c / 2) ? c : (c + 1) % 9);
    }
  }
  const lt = longTailAccuracy(perClassAccuracy(preds, labels, 9), counts);
  // head 0,1,2: rows 1+2+3, right 1+1+2; medium 3,4,5: rows 4+5+6, right 2+3+3; tail: rows 7+8+9, right 4+4+5
  assert.equal(Array.from(lt.head.classes), [0, 1, 2]);
  assert.is(lt.head.samples, 6);
  near(lt.head.accuracy, 4 / 6, 1e-15, 'head');
  near(lt.head.classAccuracy, (1 + 1 / 2 + 2 / 3) / 3, 1e-15, 'head, class-averaged');
  near(lt.medium.accuracy, 8 / 15, 1e-15, 'medium');
  near(lt.tail.accuracy, 13 / 24, 1e-15, 'tail');
  near(lt.tail.classAccuracy, (4 / 7 + 4 / 8 + 5 / 9) / 3, 1e-15, 'tail, class-averaged');
});

classes.run();
