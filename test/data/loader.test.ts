import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Loader, type LoaderOptions } from '../../src/data/loader.js';
import { EvalLoader } from '../../src/data/eval-loader.js';
import type { Batch } from '../../src/data/batch.js';
import { synthDataset } from './fixtures.js';

const ds = synthDataset(50, 1, 16, 16, 5);
const base: LoaderOptions = {
  dataset: ds,
  batchSize: 8,
  seed: 1234,
  workers: 2,
  prefetch: 3,
  crops: { globalSize: 16, localSize: 8, localCrops: 2, mean: [0.5], std: [0.3] },
};

const bytesOf = (b: Batch): Buffer => Buffer.from(b.buffer);

async function take(l: Loader, k: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < k; i++) out.push(await l.next());
  return out;
}

test('batches come in cursor order across epochs; each epoch is a fresh seeded permutation', async () => {
  const l = new Loader(base);
  assert.is(l.batchesPerEpoch, 6);
  const bs = await take(l, 13);
  assert.equal(
    bs.map((b) => [b.epoch, b.batch]),
    [...[0, 1, 2, 3, 4, 5].map((b) => [0, b]), ...[0, 1, 2, 3, 4, 5].map((b) => [1, b]), [2, 0]],
  );
  assert.equal(l.state(), { epoch: 2, batch: 1, seed: 1234, batchSize: 8, n: 50 });
  for (const e of [0, 1]) {
    const idx = bs.filter((b) => b.epoch === e).flatMap((b) => [...b.indices]);
    assert.is(new Set(idx).size, 48, 'no repeats within an epoch');
  }
  assert.not.equal([...bs[0].indices], [...bs[6].indices]);
  for (const b of bs) {
    assert.is(b.size, 8);
    assert.equal(
      b.crops.map((c) => c.length),
      [8 * 256, 8 * 256, 8 * 64, 8 * 64],
    );
    assert.is(b.globals.length, 2 * 8 * 256);
    assert.is(b.locals.length, 2 * 8 * 64);
    assert.is(b.globals[8 * 256], b.crops[1][0]);
    b.indices.forEach((i, j) => assert.is(b.labels[j], ds.labels[i]));
  }
  await l.close();
  assert.is(l.state().batch, 1, 'the cursor stays readable after close, for the checkpoint');
});

test('content depends only on (seed, epoch, batch): workers, prefetch and inline agree byte for byte', async () => {
  const a = new Loader(base);
  // Also a dataset not in shared memory: the loader shares a copy with its workers.
  const b = new Loader({ ...base, dataset: { ...ds, images: ds.images.slice() }, workers: 1, prefetch: 1 });
  const c = new Loader({ ...base, workers: 0 });
  const [ba, bb, bc] = await Promise.all([take(a, 8), take(b, 8), take(c, 8)]);
  ba.forEach((x, i) => {
    assert.ok(bytesOf(x).equals(bytesOf(bb[i])), `batch ${i}: 2 workers vs 1`);
    assert.ok(bytesOf(x).equals(bytesOf(bc[i])), `batch ${i}: workers vs inline`);
  });
  const d = new Loader({ ...base, seed: 1235, workers: 0 });
  assert.not.ok(bytesOf(await d.next()).equals(bytesOf(ba[0])), 'another seed, other batches');
  await Promise.all([a.close(), b.close(), c.close(), d.close()]);
});

test('resuming from a saved cursor yields the batches an uninterrupted run yields', async () => {
  const full = new Loader(base);
  const straight = await take(full, 10);
  await full.close();
  const first = new Loader(base);
  await take(first, 4);
  const saved = JSON.parse(JSON.stringify(first.state()));
  await first.close();
  assert.equal(saved, { epoch: 0, batch: 4, seed: 1234, batchSize: 8, n: 50 });
  const resumed = new Loader({ ...base, workers: 1, prefetch: 2, resume: saved });
  const rest = await take(resumed, 6);
  rest.forEach((x, i) => {
    assert.equal([x.epoch, x.batch], [straight[4 + i].epoch, straight[4 + i].batch]);
    assert.ok(bytesOf(x).equals(bytesOf(straight[4 + i])), `resumed batch ${i}`);
  });
  await resumed.close();
  assert.throws(() => new Loader({ ...base, seed: 1, resume: saved }), /saved with seed=1234, this loader has seed=1/);
  assert.throws(() => new Loader({ ...base, resume: { ...saved, batch: 6 } }), /outside \[0, 6\)/);
});

test('epoch iterator, kept short last batch, closed loader', async () => {
  const l = new Loader({ ...base, dropLast: false, workers: 1 });
  assert.is(l.batchesPerEpoch, 7);
  const sizes: number[] = [];
  for await (const b of l.epoch()) sizes.push(b.size);
  assert.equal(sizes, [8, 8, 8, 8, 8, 8, 2]);
  assert.equal(l.state().epoch, 1);
  await l.close();
  try {
    await l.next();
    assert.unreachable('next after close');
  } catch (e) {
    assert.match((e as Error).message, /closed/);
  }
});

test('eval loader: every image once, in order, normalised; resize keeps a constant image constant', () => {
  const ev = new EvalLoader({ dataset: ds, batchSize: 16, mean: [0.5], std: [0.3] });
  assert.is(ev.length, 4);
  const all = [...ev];
  assert.equal(
    all.map((b) => b.size),
    [16, 16, 16, 2],
  );
  const b = all[1];
  assert.is(b.images.length, 16 * 256);
  for (let p = 0; p < 256; p++) assert.ok(Math.abs(b.images[p] - (ds.images[16 * 256 + p] / 255 - 0.5) / 0.3) < 1e-6);
  assert.equal(
    [...b.indices],
    Array.from({ length: 16 }, (_, i) => 16 + i),
  );
  const flat = { ...synthDataset(3, 1, 10, 10), images: new Uint8Array(300).fill(51) };
  const r = new EvalLoader({ dataset: flat, batchSize: 4, size: 7, mean: [0], std: [1] }).batch(0);
  assert.is(r.images.length, 3 * 49);
  for (const v of r.images) assert.ok(Math.abs(v - 0.2) < 1e-6);
});

test('throughput (printed, not asserted): batch 64, 2 global 28px + 6 local 12px crops', async () => {
  const mnistLike = synthDataset(4096, 1, 28, 28);
  const opts: LoaderOptions = {
    dataset: mnistLike,
    batchSize: 64,
    seed: 0,
    workers: 1,
    prefetch: 3,
    crops: { globalSize: 28, localSize: 12, localCrops: 6, mean: [0.286], std: [0.353] },
  };
  for (const workers of [0, 1, 2]) {
    const l = new Loader({ ...opts, workers });
    await l.next();
    const t0 = performance.now();
    let k = 0;
    while (performance.now() - t0 < 700) {
      await l.next();
      k++;
    }
    const dt = (performance.now() - t0) / 1000;
    console.log(
      `    loader throughput, ${workers === 0 ? 'inline' : `${workers} worker(s)`}: ${(k / dt).toFixed(1)} batches/s (${((k * 64) / dt).toFixed(0)} images/s)`,
    );
    await l.close();
  }
});

test.run();
