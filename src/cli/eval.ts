// protodino eval <checkpoint>: frozen-feature evaluation of a trained network (weighted k-NN, linear
// probe, few-shot, per-class and long-tail accuracy), plus the pieces the embed / analyze commands
// and the per-epoch training diagnostics share: flag parsing and prototype usage of the head on
// un-augmented images. A run's images and network come from src/train/run-data.ts.
import { parseArgs } from 'node:util';
import { createBackend } from '../backend/index.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { classCounts, EvalLoader, subset, type Dataset } from '../data/index.js';
import {
  countUniquePrototypes, fewShotEval, knnClassify, linearProbe, longTailAccuracy, perClassAccuracy, prototypeUsage,
  type GroupAccuracy, type HostMatrix, type PerClassAccuracy, type PrototypeUsage,
} from '../eval/index.js';
import { DEFAULTS, type TrainConfig } from '../train/config.js';
import type { DinoNetwork } from '../train/network.js';
import { embedDataset, type Embedded } from '../train/evaluate.js';
import { checkpointStats, evalData, networkFromCheckpoint, readRunCheckpoint, type EvalData } from '../train/run-data.js';
import type { TrainHooks } from '../train/trainer.js';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';


/** Usage of the head's prototypes on already-embedded features, softmax at temperature `temp`. */
export async function headUsage(net: DinoNetwork, features: HostMatrix, temp: number, batchSize = 512): Promise<PrototypeUsage> {
  const [n, d] = features.shape;
  const be = net.backend;
  const wasTraining = net.training;
  net.eval();
  async function* logits() {
    for (let s = 0; s < n; s += batchSize) {
      const m = Math.min(batchSize, n - s);
      const t = noGrad(() => tidy(() => net.head.forward(tensor(features.data.subarray(s * d, (s + m) * d), [m, d], be))));
      try {
        yield t;
      } finally {
        t.dispose();
      }
    }
  }
  try {
    return await prototypeUsage(logits(), { temperature: temp });
  } finally {
    net.train(wasTraining);
  }
}

export function usageJson(u: PrototypeUsage, temperature: number): Record<string, number> {
  return {
    samples: u.samples, prototypes: u.prototypes, used: u.used, entropy: u.entropy,
    entropyFraction: u.entropyFraction, perplexity: u.perplexity, temperature,
  };
}

/**
 * The train command's per-epoch diagnostics: unique prototypes at ε = 0.025 and 0.1, usage of the
 * teacher's prototypes and k-NN top-1 on held-out images; returned into the log's epoch record.
 */
export function epochDiagnostics(cfg: TrainConfig, print: (line: string) => void = (l) => console.log(l)): NonNullable<TrainHooks['onEpoch']> {
  let data: Promise<EvalData> | null = null;
  return async ({ epoch, teacher }) => {
    const t0 = performance.now();
    data ??= evalData(cfg);
    const d = await data;
    const protos = await countUniquePrototypes(teacher.head.last_layer.weight_v, { eps: [0.025, 0.1], rule: 'greedy' });
    const unique: Record<string, number> = {};
    for (const e of protos.perEps) unique[String(e.eps)] = e.greedy!.unique;
    const opts = { mean: d.mean, std: d.std };
    const tr = await embedDataset(teacher, d.train, { ...opts, max: cfg.eval_train_max });
    const te = await embedDataset(teacher, d.test, { ...opts, max: cfg.eval_test_max });
    const usage = await headUsage(teacher, te.features, cfg.teacher_temp);
    const k = Math.min(20, tr.labels.length);
    const knn = (await knnClassify(tr.features, tr.labels, te.features, te.labels, { k, temperature: 0.07, backend: teacher.backend }))[0];
    const rec = {
      unique_prototypes: unique, prototypes: protos.prototypes,
      usage_used: usage.used, usage_entropy: usage.entropy, usage_entropy_fraction: usage.entropyFraction,
      knn_top1: knn.top1, knn_k: k, eval_train_rows: tr.labels.length, eval_test_rows: te.labels.length,
      eval_seconds: (performance.now() - t0) / 1000,
    };
    print(`epoch ${epoch + 1}: unique ${unique['0.025']} (ε 0.025) ${unique['0.1']} (ε 0.1) of ${protos.prototypes}; `
      + `usage ${usage.used} used, entropy ${(100 * usage.entropyFraction).toFixed(1)}% of max; `
      + `k-NN@${k} top-1 ${(100 * knn.top1).toFixed(2)}% (${tr.labels.length}/${te.labels.length} images, ${rec.eval_seconds.toFixed(1)} s)`);
    return rec;
  };
}

const KS = [10, 20, 100, 200];

/** The baseline a learned representation must beat: each image's normalised pixels (as the eval loader feeds a network) as its feature. */
function pixelFeatures(ds: Dataset, max: number, mean: number[], std: number[]): Embedded {
  const n = Math.min(max, ds.n);
  const data = n < ds.n ? subset(ds, Array.from({ length: n }, (_, i) => i)) : ds;
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
    args: argv, allowPositionals: true, strict: true,
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
  if (baseline !== undefined && baseline !== 'pixels') throw new Error(`${cmd}: --baseline must be pixels, got '${baseline}'`);
  if (baseline !== undefined && positionals.length !== 0) throw new Error(`${cmd}: --baseline pixels evaluates the raw pixels of the default dataset; give no checkpoint with it`);
  if (baseline === undefined && positionals.length !== 1) throw new Error(`${cmd}: give exactly one protodino checkpoint (.safetensors), or --baseline pixels`);
  const kind = backendKind(cmd, values.backend);
  const trainMax = intFlag(cmd, 'train_max', values.train_max, 10000);
  const testMax = intFlag(cmd, 'test_max', values.test_max, 2000);
  const linearEpochs = intFlag(cmd, 'linear_epochs', values.linear_epochs, 20);
  const episodes = intFlag(cmd, 'episodes', values.episodes, 600, 100);
  const seed = intFlag(cmd, 'seed', values.seed, 0, 0);
  const linearLr = values.linear_lr === undefined ? 1e-3 : Number(values.linear_lr);
  if (!(linearLr > 0 && Number.isFinite(linearLr))) throw new Error(`${cmd}: --linear_lr must be a positive number, got '${values.linear_lr}'`);
  let ratio: number | undefined;
  if (values.long_tail !== undefined) {
    ratio = Number(values.long_tail);
    if (!(ratio >= 1 && Number.isFinite(ratio))) throw new Error(`${cmd}: --long_tail is an imbalance ratio ≥ 1, got '${values.long_tail}'`);
  }
  const none = !values.knn && !values.linear && !values.fewshot;
  const run = { knn: values.all || none || values.knn!, linear: values.all || none || values.linear!, fewshot: values.all || none || values.fewshot! };
  const path = baseline ? 'pixels' : positionals[0];
  const saved = baseline ? null : readRunCheckpoint(cmd, path);
  const ck = saved?.ck ?? null, cfg = saved?.cfg ?? DEFAULTS;
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
      checkpoint: path, network: which, arch: ck ? cfg.arch : 'pixels', dataset: cfg.dataset, epoch: ck?.meta.epoch ?? null, step: ck?.meta.step ?? null,
      classes: data.train.classes, trainRows: tr.labels.length, testRows: te.labels.length, dim: tr.features.shape[1],
      longTailRatio: data.longTailCounts ? data.longTailRatio : null,
      ...(data.longTailCounts ? { longTailCounts: data.longTailCounts, bankCounts: classCounts({ labels: tr.labels, classes: data.train.classes }) } : {}),
      embedSeconds: (performance.now() - t0) / 1000,
    };
    log(`${path}: ${ck ? `${which} ${cfg.arch}, epoch ${ck.meta.epoch} (step ${ck.meta.step})` : 'raw pixels (normalised)'}; ${cfg.dataset} ${tr.labels.length} train / ${te.labels.length} test images, `
      + `${tr.features.shape[1]}-d features${data.longTailCounts ? `, long tail ${data.longTailRatio}` : ''}`);
    const counts = data.longTailCounts;
    const groupsLine = (r: Record<string, unknown>) => {
      const lt = r.longTail as Record<string, { accuracy: number }> | undefined;
      return lt ? `; head ${pct(lt.head.accuracy)} medium ${pct(lt.medium.accuracy)} tail ${pct(lt.tail.accuracy)}` : '';
    };
    if (run.knn) {
      const ks = KS.filter((k) => k <= tr.labels.length);
      if (ks.length === 0) throw new Error(`${cmd}: k-NN needs at least ${KS[0]} training images, have ${tr.labels.length} (raise --train_max)`);
      const res = await knnClassify(tr.features, tr.labels, te.features, te.labels, { k: ks, temperature: 0.07, numClasses: C, backend: be });
      const ref = res.find((r) => r.k === 20) ?? res[0];
      const cls = classReport(perClassAccuracy(ref.predictions, te.labels, C), counts);
      report.knn = {
        temperature: 0.07, results: res.map((r) => ({ k: r.k, top1: r.top1, top5: r.top5 })),
        skippedK: KS.filter((k) => !ks.includes(k)), classesFromK: ref.k, ...cls,
      };
      log(`k-NN (T 0.07): ${res.map((r) => `k=${r.k} ${pct(r.top1)}`).join(', ')}; per-class mean ${pct(cls.meanClassAccuracy as number)} (k=${ref.k})${groupsLine(cls)}`);
    }
    if (run.linear) {
      const t1 = performance.now();
      const r = await linearProbe(tr.features, tr.labels, te.features, te.labels, {
        numClasses: C, epochs: linearEpochs, batchSize: 256, lr: linearLr, optimizer: 'adamw', seed, backend: be,
      });
      const cls = classReport(perClassAccuracy(r.predictions, te.labels, C), counts);
      report.linear = {
        top1: r.top1, top5: r.top5, epochs: linearEpochs, lr: linearLr, optimizer: 'adamw', batchSize: 256,
        finalLoss: r.epochLoss[linearEpochs - 1], seconds: (performance.now() - t1) / 1000, ...cls,
      };
      log(`linear probe (AdamW, ${linearEpochs} epochs, lr ${linearLr}): top-1 ${pct(r.top1)} top-5 ${pct(r.top5)}; per-class mean ${pct(cls.meanClassAccuracy as number)}${groupsLine(cls)}`);
    }
    if (run.fewshot) {
      const out = [];
      for (const kShot of [1, 5]) {
        let r;
        try {
          r = await fewShotEval(te.features, te.labels, { nWay: 5, kShot, nQuery: 15, episodes, seed, backend: be });
        } catch (e) {
          throw new Error(`${cmd}: few-shot 5-way ${kShot}-shot on the ${te.labels.length} test images: ${(e as Error).message} (raise --test_max)`);
        }
        out.push({ nWay: r.nWay, kShot: r.kShot, nQuery: r.nQuery, episodes: r.episodes, accuracy: r.accuracy, std: r.std, ci95: r.ci95 });
        log(`few-shot 5-way ${kShot}-shot (${r.episodes} episodes, nearest centroid): ${pct(r.accuracy)} ± ${pct(r.ci95)}`);
      }
      report.fewshot = out;
    }
    if (values.json) console.log(JSON.stringify(report));
  } finally {
    be.destroy();
  }
}
