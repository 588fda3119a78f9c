// protodino eval <checkpoint>: frozen-feature evaluation of a trained network (weighted k-NN, linear
// probe, few-shot, per-class and long-tail accuracy) or of the raw-pixel baseline. A run's images and
// network come from src/train/run-data.ts; prototype usage and the per-epoch diagnostics live in
// src/train/diagnostics.ts.
import { parseArgs } from 'node:util';
import { createBackend } from '../backend/index.js';
import { classCounts, EvalLoader, firstImages, type Dataset } from '../data/index.js';
import {
  fewShotEval,
  knnClassify,
  linearProbe,
  longTailAccuracy,
  perClassAccuracy,
  type GroupAccuracy,
  type PerClassAccuracy,
} from '../eval/index.js';
import { DEFAULTS } from '../train/config.js';
import { embedDataset, type Embedded } from '../train/evaluate.js';
import { checkpointStats, evalData, networkFromCheckpoint, readRunCheckpoint } from '../train/run-data.js';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';

const KS = [10, 20, 100, 200];

/** The baseline a learned representation must beat: each image's normalised pixels (as the eval loader feeds a network) as its feature. */
function pixelFeatures(ds: Dataset, max: number, mean: number[], std: number[]): Embedded {
  const data = firstImages(ds, max);
  const n = data.n;
  const loader = new EvalLoader({ dataset: data, batchSize: 1024, mean, std });
  const D = data.channels * loader.size * loader.size;
  const features = new Float32Array(n * D);
  const labels = new Int32Array(n);
  let off = 0;
  for (const b of loader) {
    features.set(b.images, off * D);
    labels.set(b.labels, off);
    off += b.size;
  }
  return { features: { data: features, shape: [n, D] }, labels };
}

function nums(a: ArrayLike<number>): (number | null)[] {
  return Array.from(a, (v) => (Number.isFinite(v) ? v : null));
}

function groupJson(g: GroupAccuracy): Record<string, unknown> {
  return { classes: Array.from(g.classes), samples: g.samples, accuracy: g.accuracy, classAccuracy: g.classAccuracy };
}

function classReport(pc: PerClassAccuracy, counts: number[] | null): Record<string, unknown> {
  const out: Record<string, unknown> = { perClass: nums(pc.accuracy), meanClassAccuracy: pc.meanClassAccuracy };
  if (counts) {
    const lt = longTailAccuracy(pc, counts);
    out.longTail = { head: groupJson(lt.head), medium: groupJson(lt.medium), tail: groupJson(lt.tail) };
  }
  return out;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a';
}

export async function evalCmd(argv: string[]): Promise<void> {
  const cmd = 'eval';
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      knn: { type: 'boolean', default: false },
      linear: { type: 'boolean', default: false },
      fewshot: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      student: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      train_max: { type: 'string' },
      test_max: { type: 'string' },
      long_tail: { type: 'string' },
      ...BACKEND_OPTION,
      linear_epochs: { type: 'string' },
      linear_lr: { type: 'string' },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      baseline: { type: 'string' },
    },
  });
  const baseline = values.baseline;
  if (baseline !== undefined && baseline !== 'pixels')
    throw new Error(`${cmd}: --baseline must be pixels, got '${baseline}'`);
  if (baseline !== undefined && positionals.length !== 0)
    throw new Error(
      `${cmd}: --baseline pixels evaluates the raw pixels of the default dataset; give no checkpoint with it`,
    );
  if (baseline === undefined && positionals.length !== 1)
    throw new Error(
      `${cmd}: give exactly one protodino checkpoint (.safetensors, or a checkpoint.pth that train_ddp.py or export --to pth wrote), or --baseline pixels`,
    );
  const kind = backendKind(cmd, values.backend);
  const trainMax = intFlag(cmd, 'train_max', values.train_max, 10000);
  const testMax = intFlag(cmd, 'test_max', values.test_max, 2000);
  const linearEpochs = intFlag(cmd, 'linear_epochs', values.linear_epochs, 20);
  const episodes = intFlag(cmd, 'episodes', values.episodes, 600, 100);
  const seed = intFlag(cmd, 'seed', values.seed, 0, 0);
  const linearLr = values.linear_lr === undefined ? 1e-3 : Number(values.linear_lr);
  if (!(linearLr > 0 && Number.isFinite(linearLr)))
    throw new Error(`${cmd}: --linear_lr must be a positive number, got '${values.linear_lr}'`);
  let ratio: number | undefined;
  if (values.long_tail !== undefined) {
    ratio = Number(values.long_tail);
    if (!(ratio >= 1 && Number.isFinite(ratio)))
      throw new Error(`${cmd}: --long_tail is an imbalance ratio ≥ 1, got '${values.long_tail}'`);
  }
  const none = !values.knn && !values.linear && !values.fewshot;
  const run = {
    knn: values.all || none || values.knn!,
    linear: values.all || none || values.linear!,
    fewshot: values.all || none || values.fewshot!,
  };
  const path = baseline ? 'pixels' : positionals[0];
  const saved = baseline ? null : readRunCheckpoint(cmd, path);
  const ck = saved?.ck ?? null,
    cfg = saved?.cfg ?? DEFAULTS;
  const which = baseline ? 'raw pixels' : values.student ? 'student' : 'teacher';
  const data = await evalData(cfg, { longTail: ratio ?? cfg.long_tail, stats: ck && checkpointStats(ck) });
  const be = await createBackend({ kind });
  const log = (s: string) => {
    if (!values.json) console.log(s);
  };
  try {
    let tr: Embedded, te: Embedded;
    const t0 = performance.now();
    if (!saved) {
      tr = pixelFeatures(data.train, trainMax, data.mean, data.std);
      te = pixelFeatures(data.test, testMax, data.mean, data.std);
    } else {
      const net = networkFromCheckpoint(saved, be, data.train.channels, which as 'student' | 'teacher');
      try {
        tr = await embedDataset(net, data.train, { max: trainMax, mean: data.mean, std: data.std });
        te = await embedDataset(net, data.test, { max: testMax, mean: data.mean, std: data.std });
      } finally {
        net.dispose();
      }
    }
    const C = data.train.classes.length;
    const report: Record<string, unknown> = {
      checkpoint: path,
      network: which,
      arch: ck ? cfg.arch : 'pixels',
      dataset: cfg.dataset,
      epoch: ck?.meta.epoch ?? null,
      step: ck?.meta.step ?? null,
      classes: data.train.classes,
      trainRows: tr.labels.length,
      testRows: te.labels.length,
      dim: tr.features.shape[1],
      longTailRatio: data.longTailCounts ? data.longTailRatio : null,
      ...(data.longTailCounts
        ? {
            longTailCounts: data.longTailCounts,
            bankCounts: classCounts({ labels: tr.labels, classes: data.train.classes }),
          }
        : {}),
      embedSeconds: (performance.now() - t0) / 1000,
    };
    log(
      `${path}: ${ck ? `${which} ${cfg.arch}, epoch ${ck.meta.epoch} (step ${ck.meta.step})` : 'raw pixels (normalised)'}; ${cfg.dataset} ${tr.labels.length} train / ${te.labels.length} test images, ` +
        `${tr.features.shape[1]}-d features${data.longTailCounts ? `, long tail ${data.longTailRatio}` : ''}`,
    );
    const counts = data.longTailCounts;
    const groupsLine = (r: Record<string, unknown>) => {
      const lt = r.longTail as Record<string, { accuracy: number }> | undefined;
      return lt
        ? `; head ${pct(lt.head.accuracy)} medium ${pct(lt.medium.accuracy)} tail ${pct(lt.tail.accuracy)}`
        : '';
    };
    if (run.knn) {
      const ks = KS.filter((k) => k <= tr.labels.length);
      if (ks.length === 0)
        throw new Error(
          `${cmd}: k-NN needs at least ${KS[0]} training images, have ${tr.labels.length} (raise --train_max)`,
        );
      const res = await knnClassify(tr.features, tr.labels, te.features, te.labels, {
        k: ks,
        temperature: 0.07,
        numClasses: C,
        backend: be,
      });
      const ref = res.find((r) => r.k === 20) ?? res[0];
      const cls = classReport(perClassAccuracy(ref.predictions, te.labels, C), counts);
      report.knn = {
        temperature: 0.07,
        results: res.map((r) => ({ k: r.k, top1: r.top1, top5: r.top5 })),
        skippedK: KS.filter((k) => !ks.includes(k)),
        classesFromK: ref.k,
        ...cls,
      };
      log(
        `k-NN (T 0.07): ${res.map((r) => `k=${r.k} ${pct(r.top1)}`).join(', ')}; per-class mean ${pct(cls.meanClassAccuracy as number)} (k=${ref.k})${groupsLine(cls)}`,
      );
    }
    if (run.linear) {
      const t1 = performance.now();
      const r = await linearProbe(tr.features, tr.labels, te.features, te.labels, {
        numClasses: C,
        epochs: linearEpochs,
        batchSize: 256,
        lr: linearLr,
        optimizer: 'adamw',
        seed,
        backend: be,
      });
      const cls = classReport(perClassAccuracy(r.predictions, te.labels, C), counts);
      report.linear = {
        top1: r.top1,
        top5: r.top5,
        epochs: linearEpochs,
        lr: linearLr,
        optimizer: 'adamw',
        batchSize: 256,
        finalLoss: r.epochLoss[linearEpochs - 1],
        seconds: (performance.now() - t1) / 1000,
        ...cls,
      };
      log(
        `linear probe (AdamW, ${linearEpochs} epochs, lr ${linearLr}): top-1 ${pct(r.top1)} top-5 ${pct(r.top5)}; per-class mean ${pct(cls.meanClassAccuracy as number)}${groupsLine(cls)}`,
      );
    }
    if (run.fewshot) {
      const out = [];
      for (const kShot of [1, 5]) {
        let r;
        try {
          r = await fewShotEval(te.features, te.labels, { nWay: 5, kShot, nQuery: 15, episodes, seed, backend: be });
        } catch (e) {
          throw new Error(
            `${cmd}: few-shot 5-way ${kShot}-shot on the ${te.labels.length} test images: ${(e as Error).message} (raise --test_max)`,
          );
        }
        out.push({
          nWay: r.nWay,
          kShot: r.kShot,
          nQuery: r.nQuery,
          episodes: r.episodes,
          accuracy: r.accuracy,
          std: r.std,
          ci95: r.ci95,
        });
        log(
          `few-shot 5-way ${kShot}-shot (${r.episodes} episodes, nearest centroid): ${pct(r.accuracy)} ± ${pct(r.ci95)}`,
        );
      }
      report.fewshot = out;
    }
    if (values.json) console.log(JSON.stringify(report));
  } finally {
    be.destroy();
  }
}
