import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classCounts } from '../../src/data/dataset.js';
import { longTail, longTailCounts } from '../../src/data/longtail.js';
import { heldOutSplit } from '../../src/data/split.js';
import { synthDataset } from './fixtures.js';

test('long-tail counts: n_max · ρ^(−c/(C−1)), floored', () => {
  assert.equal(longTailCounts(6000, 10, 100), [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]);
  assert.equal(longTailCounts(500, 5, 10), [500, 281, 158, 88, 50]);
  assert.equal(longTailCounts(7, 3, 1), [7, 7, 7]);
  assert.equal(longTailCounts(9, 1, 50), [9]);
  assert.throws(() => longTailCounts(10, 3, 0.5), /ratio must be >= 1/);
});

test('long-tail subset: exact per-class counts, seeded, sorted, subset of the source', () => {
  const ds = synthDataset(1000, 1, 2, 2, 5);
  const a = longTail(ds, { ratio: 10, seed: 3 });
  assert.equal(a.counts, [200, 112, 63, 35, 20]);
  assert.equal(classCounts(a.dataset), a.counts);
  assert.is(a.dataset.n, a.indices.length);
  for (let j = 1; j < a.indices.length; j++) assert.ok(a.indices[j] > a.indices[j - 1]);
  for (let j = 0; j < a.indices.length; j++) {
    const i = a.indices[j];
    assert.is(a.dataset.labels[j], ds.labels[i]);
    assert.equal(
      Array.from(a.dataset.images.subarray(4 * j, 4 * j + 4)),
      Array.from(ds.images.subarray(4 * i, 4 * i + 4)),
    );
  }
  assert.equal(Array.from(longTail(ds, { ratio: 10, seed: 3 }).indices), Array.from(a.indices));
  assert.not.equal(Array.from(longTail(ds, { ratio: 10, seed: 4 }).indices), Array.from(a.indices));
  const b = longTail(ds, { ratio: 4, seed: 1, nMax: 100 });
  assert.equal(classCounts(b.dataset), [100, 70, 50, 35, 25]);
  assert.throws(
    () => longTail(ds, { ratio: 2, seed: 1, nMax: 201 }),
    /class 0 \(c0\) has 200 images, the long tail asks for 201/,
  );
});

test('held-out split: stratified exact count, disjoint, covering, seeded', () => {
  const ds = longTail(synthDataset(1000, 1, 2, 2, 5), { ratio: 10, seed: 3 }).dataset;
  const s = heldOutSplit(ds, { fraction: 0.1, seed: 9 });
  assert.is(s.heldOut.n, Math.round(0.1 * ds.n));
  assert.is(s.train.n + s.heldOut.n, ds.n);
  const all = [...s.trainIndices, ...s.heldOutIndices].sort((a, b) => a - b);
  assert.equal(
    all,
    Array.from({ length: ds.n }, (_, i) => i),
  );
  const full = classCounts(ds);
  classCounts(s.heldOut).forEach((k, c) =>
    assert.ok(Math.abs(k - full[c] * 0.1) < 1, `class ${c}: ${k} of ${full[c]}`),
  );
  assert.equal(Array.from(heldOutSplit(ds, { fraction: 0.1, seed: 9 }).heldOutIndices), Array.from(s.heldOutIndices));
  assert.not.equal(
    Array.from(heldOutSplit(ds, { fraction: 0.1, seed: 10 }).heldOutIndices),
    Array.from(s.heldOutIndices),
  );
  const u = heldOutSplit(ds, { count: 37, seed: 1, stratified: false });
  assert.is(u.heldOut.n, 37);
  assert.throws(() => heldOutSplit(ds, { seed: 1 }), /exactly one of fraction and count/);
});

test.run();
