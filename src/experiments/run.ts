// One run of the grid: trained (or resumed) in its own directory, evaluated from its checkpoint, and
// written as result.json; a directory lock lets several processes share one grid.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { classCounts, longTailCounts } from '../data/index.js';
import {
  countUniquePrototypes,
  fewShotEval,
  knnClassify,
  linearProbe,
  longTailAccuracy,
  perClassAccuracy,
} from '../eval/index.js';
import { train } from '../train/trainer.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { processAlive } from '../util/process.js';
import { readJsonl } from '../train/log.js';
import { validate, DEFAULTS, type TrainConfig } from '../train/config.js';
import { embedDataset } from '../train/evaluate.js';
import { buildNetwork, type DinoNetwork } from '../train/network.js';
import { epochDiagnostics, headUsage } from '../train/diagnostics.js';
import {
  checkpointConfig,
  checkpointStats,
  evalData,
  networkFromCheckpoint,
  readRunCheckpoint,
  type EvalData,
} from '../train/run-data.js';

import { LONG_TAIL_RATIO, type EvalSizes, type ExperimentRun } from './grid.js';
import { EPS_METRICS, SWEEP_EPS, type EpsMetric } from '../eval/unique.js';

export interface RunMetrics {
  unique: Record<string, number>;
  uniqueComponents: Record<string, number>;
  prototypes: number;
  /** Prototypes that are the teacher's argmax for at least one test image. */
  usageUsed: number;
  usageEntropyFraction: number;
  knnTop1: number;
  knnTop5: number;
  linearTop1: number;
  fewShot5way5shot: number;
  fewShot5way5shotCi95: number;
  fewShot5way1shot: number;
  /**
   * Accuracy of the head / medium / tail thirds of the classes by training count; in balanced runs the
   * same classes as in the long-tailed ones.
   */
  knnHead?: number;
  knnMedium?: number;
  knnTail?: number;
  linearHead?: number;
  linearMedium?: number;
  linearTail?: number;
  knnPerClass?: number[];
  linearPerClass?: number[];
  /**
   * Unique prototypes (greedy rule) over SWEEP_EPS in both readings of ε: the Euclidean distance
   * between unit prototypes and 1 − cosine. Absent in results written before it was measured.
   */
  uniqueSweep?: Record<EpsMetric, Record<string, number>>;
}

export interface CurvePoint {
  step: number;
  epoch: number;
  unique: Record<string, number>;
  knnTop1?: number;
  usageUsed?: number;
}

/** A finished run: its grid entry (config as given to train(); a finished run with another config is not reused) and what it measured. */
export interface RunResult extends ExperimentRun {
  steps: number;
  trainSeconds: number;
  evalSeconds: number;
  evalSizes?: EvalSizes;
  metrics: RunMetrics;
  curve: CurvePoint[];
  /**
   * Median seconds per training step over the log's step records (checkpoint writes and epoch
   * diagnostics not counted). Absent in results written before the log had it, and for untrained runs.
   */
  stepSeconds?: number;
  /** The most bytes the backend held live at once while training (Backend.peakLiveBytes); absent likewise. */
  peakBytes?: number;
}

/** Final evaluation of a run's teacher from its checkpoint: prototypes, usage, k-NN, linear, few-shot, long tail. */
export async function evaluateRun(
  dir: string,
  be: Backend,
  sizes: EvalSizes,
): Promise<{ steps: number; metrics: RunMetrics }> {
  const run = readRunCheckpoint('experiments', join(dir, 'checkpoint.safetensors'));
  const data = await evalData(run.cfg, { stats: checkpointStats(run.ck) });
  const net = networkFromCheckpoint(run, be, data.train.channels, 'teacher');
  return { steps: run.ck.meta.step, metrics: await evaluateNetworkFull(net, run.cfg, data, be, sizes) };
}

/** The baseline: the teacher as training would start it (the demo's random-initialisation k-NN). */
export async function evaluateInit(config: Partial<TrainConfig>, be: Backend, sizes: EvalSizes): Promise<RunMetrics> {
  const cfg = validate({ ...DEFAULTS, ...config });
  const data = await evalData(cfg);
  return evaluateNetworkFull(buildNetwork(cfg, be, data.train.channels, cfg.seed, 0), cfg, data, be, sizes);
}

/** Every final metric of `net` (disposed here). */
async function evaluateNetworkFull(
  net: DinoNetwork,
  cfg: TrainConfig,
  data: EvalData,
  be: Backend,
  sizes: EvalSizes,
): Promise<RunMetrics> {
  let tr, te, usage, protos;
  const sweep = {} as Record<EpsMetric, Record<string, number>>;
  try {
    protos = await countUniquePrototypes(net.head.last_layer.weight_v, { eps: [0.025, 0.1], rule: 'both' });
    for (const metric of EPS_METRICS) {
      const r = await countUniquePrototypes(net.head.last_layer.weight_v, {
        eps: [...SWEEP_EPS],
        rule: 'greedy',
        metric,
      });
      sweep[metric] = Object.fromEntries(r.perEps.map((e) => [String(e.eps), e.greedy!.unique]));
    }
    tr = await embedDataset(net, data.train, { max: sizes.trainMax, mean: data.mean, std: data.std });
    te = await embedDataset(net, data.test, { max: sizes.testMax, mean: data.mean, std: data.std });
    usage = await headUsage(net, te.features, cfg.teacher_temp);
  } finally {
    net.dispose();
  }
  const C = data.train.classes.length;
  const knn = (
    await knnClassify(tr.features, tr.labels, te.features, te.labels, {
      k: 20,
      temperature: 0.07,
      numClasses: C,
      backend: be,
    })
  )[0];
  const lin = await linearProbe(tr.features, tr.labels, te.features, te.labels, {
    numClasses: C,
    epochs: sizes.linearEpochs,
    batchSize: 256,
    lr: 1e-3,
    optimizer: 'adamw',
    seed: cfg.seed,
    backend: be,
  });
  const shot5 = await fewShotEval(te.features, te.labels, {
    nWay: 5,
    kShot: 5,
    nQuery: 15,
    episodes: sizes.episodes,
    seed: cfg.seed,
    backend: be,
  });
  const shot1 = await fewShotEval(te.features, te.labels, {
    nWay: 5,
    kShot: 1,
    nQuery: 15,
    episodes: sizes.episodes,
    seed: cfg.seed,
    backend: be,
  });
  const unique: Record<string, number> = {},
    uniqueComponents: Record<string, number> = {};
  for (const e of protos.perEps) {
    unique[String(e.eps)] = e.greedy!.unique;
    uniqueComponents[String(e.eps)] = e.components!.unique;
  }
  const metrics: RunMetrics = {
    unique,
    uniqueComponents,
    prototypes: protos.prototypes,
    usageUsed: usage.used,
    usageEntropyFraction: usage.entropyFraction,
    knnTop1: knn.top1,
    knnTop5: knn.top5,
    linearTop1: lin.top1,
    fewShot5way5shot: shot5.accuracy,
    fewShot5way5shotCi95: shot5.ci95,
    fewShot5way1shot: shot1.accuracy,
    uniqueSweep: sweep,
  };
  // Long-tailed runs: groups by the class counts of the images the k-NN bank and the probe saw.
  // Balanced runs get the same split of the classes (the long tail makes class c rarer as c grows), as
  // the reference the long-tailed runs' tail accuracy is read against: Fashion-MNIST's last classes
  // (sneaker, bag, ankle boot) are easy ones, so a tail accuracy alone says little.
  const counts = data.longTailCounts
    ? classCounts({ labels: tr.labels, classes: data.train.classes })
    : longTailCounts(1000, C, LONG_TAIL_RATIO);
  const kpc = perClassAccuracy(knn.predictions, te.labels, C),
    lpc = perClassAccuracy(lin.predictions, te.labels, C);
  const k = longTailAccuracy(kpc, counts),
    l = longTailAccuracy(lpc, counts);
  Object.assign(metrics, {
    knnHead: k.head.accuracy,
    knnMedium: k.medium.accuracy,
    knnTail: k.tail.accuracy,
    linearHead: l.head.accuracy,
    linearMedium: l.medium.accuracy,
    linearTail: l.tail.accuracy,
    knnPerClass: Array.from(kpc.accuracy),
    linearPerClass: Array.from(lpc.accuracy),
  });
  return metrics;
}

/** Unique prototypes, k-NN and usage after each epoch, from the run's log. */
export function readCurve(dir: string): CurvePoint[] {
  const path = join(dir, 'log.jsonl');
  if (!existsSync(path)) return [];
  const byEpoch = new Map<number, CurvePoint>();
  for (const r of readJsonl(path).records) {
    if (r.event !== 'epoch' || typeof r.step !== 'number' || typeof r.epoch !== 'number') continue;
    const unique: Record<string, number> = {};
    if (r.unique_prototypes && typeof r.unique_prototypes === 'object') {
      for (const [e, n] of Object.entries(r.unique_prototypes as Record<string, unknown>))
        if (typeof n === 'number') unique[e] = n;
    }
    byEpoch.set(r.epoch, {
      step: r.step,
      epoch: r.epoch,
      unique,
      ...(typeof r.knn_top1 === 'number' ? { knnTop1: r.knn_top1 } : {}),
      ...(typeof r.usage_used === 'number' ? { usageUsed: r.usage_used } : {}),
    });
  }
  return [...byEpoch.values()].sort((a, b) => a.step - b.step);
}

/** A run's cost from its log's step records: the median step time and the highest peak of live bytes. */
export function readCost(dir: string): Pick<RunResult, 'stepSeconds' | 'peakBytes'> {
  const path = join(dir, 'log.jsonl');
  if (!existsSync(path)) return {};
  // A resumed run logs again the steps after its checkpoint: the later record of a step is kept.
  const byStep = new Map<number, Record<string, unknown>>();
  for (const r of readJsonl(path).records) if (r.event === 'step' && typeof r.step === 'number') byStep.set(r.step, r);
  const times: number[] = [];
  let peak = -1;
  for (const r of byStep.values()) {
    if (typeof r.step_s === 'number' && Number.isFinite(r.step_s) && r.step_s > 0) times.push(r.step_s);
    if (typeof r.peak_bytes === 'number' && r.peak_bytes > peak) peak = r.peak_bytes;
  }
  return { ...(times.length ? { stepSeconds: median(times) } : {}), ...(peak >= 0 ? { peakBytes: peak } : {}) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b),
    m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function sameConfig(a: Partial<TrainConfig>, b: Partial<TrainConfig>): boolean {
  const norm = (c: Partial<TrainConfig>) =>
    JSON.stringify(
      Object.entries(c)
        .filter(([k]) => k !== 'output_dir' && k !== 'backend' && k !== 'threads')
        .sort(),
    );
  return norm(a) === norm(b);
}

export interface RunOutcome {
  result: RunResult;
  /** 'done': found finished; 'trained': trained (or resumed) now; 'evaluated': only the final evaluation ran. */
  status: 'done' | 'trained' | 'evaluated';
}

/**
 * Claims a run directory for this process (a `.lock` file holding the pid), so several
 * `protodino experiments` processes can share one grid; a lock left by a dead process is taken over.
 */
function claim(dir: string): (() => void) | null {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) return null;
      rmSync(path, { force: true });
    }
  }
  return null;
}

/**
 * Trains (or resumes) one run in `outDir/<name>` and evaluates it; a finished run is read back.
 * null when another process is working on the run.
 */
export async function runExperiment(
  run: ExperimentRun,
  outDir: string,
  be: Backend,
  sizes: EvalSizes,
  print: (line: string) => void = (l) => console.log(l),
): Promise<RunOutcome | null> {
  const dir = join(outDir, run.name);
  const resultPath = join(dir, 'result.json');
  const finished = (): RunOutcome | null => {
    if (!existsSync(resultPath)) return null;
    const prev = JSON.parse(readFileSync(resultPath, 'utf8')) as RunResult;
    // Written before balanced runs measured the tail classes: evaluated again from the checkpoint.
    if (prev.metrics.knnTail === undefined) return null;
    if (!sameConfig(prev.config, run.config)) {
      throw new Error(
        `${resultPath}: this run finished with another config (steps, seeds or quick mode changed); ` +
          'remove the directory or choose another --out',
      );
    }
    return { result: prev, status: 'done' };
  };
  const done = finished();
  if (done) return done;
  mkdirSync(dir, { recursive: true });
  const release = claim(dir);
  if (!release) return null;
  try {
    // Another process may have finished it between the check and the claim.
    return finished() ?? (await trainAndEvaluate(run, dir, be, sizes, print));
  } finally {
    release();
  }
}

async function trainAndEvaluate(
  run: ExperimentRun,
  dir: string,
  be: Backend,
  sizes: EvalSizes,
  print: (line: string) => void,
): Promise<RunOutcome> {
  const ckPath = join(dir, 'checkpoint.safetensors');
  const resume = existsSync(ckPath);
  if (resume) {
    const stored = checkpointConfig(ckPath, readCheckpoint(ckPath));
    if (
      !sameConfig(
        Object.fromEntries(Object.keys(run.config).map((k) => [k, stored[k as keyof TrainConfig]])),
        run.config,
      )
    ) {
      throw new Error(
        `${ckPath}: the checkpoint was trained with another config; remove ${dir} or choose another --out`,
      );
    }
  } else {
    // No checkpoint: whatever the log holds is from a run killed in its first epoch.
    rmSync(join(dir, 'log.jsonl'), { force: true });
  }
  const cfg = validate({ ...DEFAULTS, ...run.config, output_dir: dir, resume });
  if (run.method === 'init') {
    const t = performance.now();
    const metrics = await evaluateInit(cfg, be, sizes);
    return {
      result: writeResult(dir, run, {
        steps: 0,
        trainSeconds: 0,
        evalSeconds: (performance.now() - t) / 1000,
        sizes,
        metrics,
      }),
      status: 'evaluated',
    };
  }
  const t0 = performance.now();
  const diag = epochDiagnostics(cfg, (l) => print(`  ${run.name} ${l}`));
  const trained = await train(cfg, { backend: be, onEpoch: diag });
  const trainSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const { steps, metrics } = await evaluateRun(dir, be, sizes);
  const result = writeResult(dir, run, {
    steps,
    trainSeconds,
    evalSeconds: (performance.now() - t1) / 1000,
    sizes,
    metrics,
  });
  return { result, status: trained.steps > 0 && trained.history.length > 0 ? 'trained' : 'evaluated' };
}

function writeResult(
  dir: string,
  run: ExperimentRun,
  r: { steps: number; trainSeconds: number; evalSeconds: number; sizes: EvalSizes; metrics: RunMetrics },
): RunResult {
  const resultPath = join(dir, 'result.json');
  const result: RunResult = {
    ...run,
    steps: r.steps,
    trainSeconds: r.trainSeconds,
    evalSeconds: r.evalSeconds,
    evalSizes: r.sizes,
    metrics: r.metrics,
    curve: readCurve(dir),
    ...readCost(dir),
  };
  // Written whole, then renamed: a result.json that exists is complete.
  writeFileSync(resultPath + '.tmp', JSON.stringify(result, null, 1));
  renameSync(resultPath + '.tmp', resultPath);
  return result;
}
