// Evaluation on frozen features against independent torch / numpy results on the same features
// (test/fixtures/eval/eval.safetensors, made by scripts/make-eval-fixtures.py).
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import * as pd from '../../src/tensor/index.js';
import { fewShotEval, knnClassify, linearProbe, sampleEpisodes, type Episode } from '../../src/eval/index.js';
import { conformance } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import { evalBackends, fx, rejects } from './helpers.js';

function features(be: Backend, name: string): pd.Tensor {
  const { data, shape } = fx<Float32Array>(name);
  return pd.tensor(data, shape, be);
}
const ints = (name: string) => fx<Int32Array>(name).data;
const f64 = (name: string) => fx<Float64Array>(name).data;

function episodes(name: string): Episode[] {
  const cls = fx<Int32Array>(`fs.${name}.classes`),
    sup = fx<Int32Array>(`fs.${name}.support`),
    qry = fx<Int32Array>(`fs.${name}.query`);
  const [E, n] = cls.shape,
    s = sup.shape[1],
    q = qry.shape[1];
  return Array.from({ length: E }, (_, e) => ({
    classes: cls.data.slice(e * n, (e + 1) * n),
    support: sup.data.slice(e * s, (e + 1) * s),
    query: qry.data.slice(e * q, (e + 1) * q),
  }));
}

conformance(
  'eval/frozen',
  (test, be) => {
    test("weighted k-NN equals DINO's knn_classifier run in torch (k = 1, 5, 20, 50)", async () => {
      const xtr = features(be(), 'knn.train_x'),
        xte = features(be(), 'knn.test_x');
      const ytr = ints('knn.train_y'),
        yte = ints('knn.test_y');
      const ks = Array.from(ints('knn.ks'));
      const correct = ints('knn.correct'),
        preds = fx<Int32Array>('knn.predictions');
      const live = be().memory().liveBuffers;
      // chunks of 16 test rows: 120 = 7 full chunks and a partial one
      const res = await knnClassify(xtr, ytr, xte, yte, { k: ks, chunkRows: 16, numClasses: 8 });
      assert.is(be().memory().liveBuffers, live, 'no storage left behind');
      const M = yte.length;
      res.forEach((r, i) => {
        assert.is(r.k, ks[i]);
        assert.is(Math.round(r.top1 * M), correct[2 * i], `k = ${r.k}: top-1 count`);
        assert.is(Math.round(r.top5 * M), correct[2 * i + 1], `k = ${r.k}: top-5 count`);
        assert.equal(
          Array.from(r.predictions),
          Array.from(preds.data.subarray(i * M, (i + 1) * M)),
          `k = ${r.k}: predictions`,
        );
      });
      // default chunking and a host matrix give the same answer
      const host = { data: fx<Float32Array>('knn.train_x').data, shape: fx('knn.train_x').shape as [number, number] };
      const again = await knnClassify(host, ytr, xte, yte, { k: 20, backend: be() });
      assert.is(again[0].top1, res[2].top1);
      await rejects(knnClassify(xtr, ytr, xte, yte, { k: 301 }), /exceeds the 300 training rows/);
      await rejects(knnClassify(xtr, ytr.subarray(1), xte, yte), /trainLabels has 299 entries/);
      xtr.dispose();
      xte.dispose();
    });

    for (const name of ['sgd', 'adamw'] as const) {
      test(`linear probe (${name}, cosine schedule, full batch) follows torch step for step`, async () => {
        const xtr = features(be(), 'lin.train_x'),
          xte = features(be(), 'lin.test_x');
        const yte = ints('lin.test_y');
        const [lr, momentum, wd, epochs] = Array.from(f64(`lin.${name}.hyper`));
        const r = await linearProbe(xtr, ints('lin.train_y'), xte, yte, {
          optimizer: name,
          lr,
          momentum,
          weightDecay: wd,
          epochs,
          batchSize: 200,
          shuffle: false,
          schedule: 'cosine',
          init: { weight: fx<Float32Array>('lin.w0').data, bias: fx<Float32Array>('lin.b0').data },
        });
        xtr.dispose();
        xte.dispose();
        assertClose(r.epochLoss, f64(`lin.${name}.loss`), { rtol: 1e-5, atol: 1e-6 }, 'loss of each epoch');
        assertClose(r.weight, fx<Float32Array>(`lin.${name}.weight`).data, { rtol: 1e-5, atol: 1e-5 }, 'final weight');
        assertClose(r.bias, fx<Float32Array>(`lin.${name}.bias`).data, { rtol: 1e-5, atol: 1e-5 }, 'final bias');
        const preds = ints(`lin.${name}.predictions`);
        assert.equal(Array.from(r.predictions), Array.from(preds), 'test predictions');
        assert.is(r.top1, preds.filter((p, i) => p === yte[i]).length / yte.length);
        assert.ok(r.top5 === 1, 'four classes: all within the top 5');
        assert.is(r.lrs[0], lr);
        assert.ok(Math.abs(r.lrs[epochs - 1] - (lr * (1 + Math.cos((Math.PI * (epochs - 1)) / epochs))) / 2) < 1e-15);
      });
    }

    test('linear probe with shuffled mini-batches: seeded, reproducible, learns', async () => {
      const xtr = features(be(), 'lin.train_x'),
        xte = features(be(), 'lin.test_x');
      const ytr = ints('lin.train_y'),
        yte = ints('lin.test_y');
      const live = be().memory().liveBuffers;
      const opts = { epochs: 8, batchSize: 64, lr: 0.05, seed: 5 };
      const a = await linearProbe(xtr, ytr, xte, yte, opts);
      const b = await linearProbe(xtr, ytr, xte, yte, opts);
      const c = await linearProbe(xtr, ytr, xte, yte, { ...opts, seed: 6 });
      assert.is(be().memory().liveBuffers, live, 'no storage left behind');
      assert.equal(Array.from(a.weight), Array.from(b.weight), 'same seed, same weights');
      assert.ok(
        a.weight.some((v, i) => v !== c.weight[i]),
        'another seed, other weights',
      );
      assert.ok(a.epochLoss[7] < 0.6 * a.epochLoss[0], `loss ${a.epochLoss[0]} → ${a.epochLoss[7]}`);
      assert.ok(a.top1 > 0.7, `top-1 ${a.top1} (torch's full-batch probe: 0.8)`);
      const ad = await linearProbe(xtr, ytr, xte, yte, { ...opts, optimizer: 'adamw', lr: 0.02, normalize: true });
      assert.ok(ad.top1 > 0.7, `adamw on normalised features: top-1 ${ad.top1}`);
      xtr.dispose();
      xte.dispose();
    });

    test('few-shot nearest centroid equals numpy on the same episodes', async () => {
      const x = features(be(), 'fs.x');
      const y = ints('fs.y');
      for (const [name, metrics] of [
        ['a', ['euclidean', 'cosine']],
        ['b', ['euclidean', 'cosine']],
      ] as const) {
        const eps = episodes(name);
        for (const metric of metrics) {
          const r = await fewShotEval(x, y, { episodeList: eps, metric, chunkEpisodes: 40 });
          const what = `${name} (${r.nWay}-way ${r.kShot}-shot, ${metric})`;
          assert.is(r.episodes, 100, what);
          assert.equal(
            Array.from(r.episodeAccuracy),
            Array.from(f64(`fs.${name}.${metric}.acc`)),
            `${what}: per-episode accuracy`,
          );
          const [m, ci] = f64(`fs.${name}.${metric}.summary`);
          assert.ok(
            Math.abs(r.accuracy - m) < 1e-12 && Math.abs(r.ci95 - ci) < 1e-12,
            `${what}: ${r.accuracy} ± ${r.ci95} vs ${m} ± ${ci}`,
          );
        }
      }
      x.dispose();
    });

    test('sampled episodes: seeded, distinct rows of the right classes; sampled evaluation', async () => {
      const y = ints('fs.y');
      const opts = { nWay: 5, kShot: 5, nQuery: 10, episodes: 120, seed: 3 };
      const eps = sampleEpisodes(y, opts);
      assert.equal(sampleEpisodes(y, opts), eps, 'same seed, same episodes');
      assert.not.equal(sampleEpisodes(y, { ...opts, seed: 4 }), eps, 'another seed, other episodes');
      for (const e of eps) {
        assert.is(new Set(e.classes).size, 5);
        const rows = [...e.support, ...e.query];
        assert.is(new Set(rows).size, 75, 'no row twice in an episode');
        e.classes.forEach((c, ci) => {
          for (const i of e.support.subarray(ci * 5, ci * 5 + 5)) assert.is(y[i], c);
          for (const i of e.query.subarray(ci * 10, ci * 10 + 10)) assert.is(y[i], c);
        });
      }
      const seen = new Set(eps.flatMap((e) => Array.from(e.classes)));
      assert.is(seen.size, 12, 'every class gets drawn');
      assert.throws(() => sampleEpisodes(y, { nWay: 13 }), /13 classes/);
      assert.throws(() => sampleEpisodes(y, { kShot: 10, nQuery: 11 }), /≥ 21 rows/);

      const x = features(be(), 'fs.x');
      const r = await fewShotEval(x, y, opts);
      const direct = await fewShotEval(x, y, { episodeList: eps });
      assert.equal(r, direct, 'sampling inside = sampling outside');
      assert.ok(r.accuracy > 0.5 && r.accuracy <= 1 && r.ci95 > 0 && r.ci95 < 0.05, `${r.accuracy} ± ${r.ci95}`);
      const bad = [{ ...eps[0], query: eps[0].query.map((i, j) => (j === 0 ? eps[0].support[5] : i)) }];
      await rejects(fewShotEval(x, y, { episodeList: bad }), /row \d+ has label/);
      x.dispose();
    });
  },
  evalBackends(),
);
