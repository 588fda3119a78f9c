// protodino experiments: the seed paper's claims at this machine's scale. A grid of DINO runs with and
// without KoLeo-proto (same seeds) on balanced and long-tailed Fashion-MNIST, in the frozen-
// representation setting (PCA backbone, prototypes only) and in full training (a named recipe,
// fmnist-resnet by default, at one or more head sizes K), plus the Sinkhorn, me-max, iBOT and vMF variants. Every run keeps its run directory (log.jsonl, checkpoint,
// result.json) so `protodino report` can render it, and the grid resumes: finished runs are skipped,
// interrupted ones continue from their last epoch checkpoint.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/index.js';
import { classCounts, longTailCounts } from '../data/index.js';
import {
  countUniquePrototypes, fewShotEval, knnClassify, linearProbe, longTailAccuracy, perClassAccuracy,
} from '../eval/index.js';
import { train } from '../train/trainer.js';
import { readCheckpoint } from '../train/checkpoint.js';
import { processAlive } from '../util/process.js';
import { readJsonl } from '../train/log.js';
import { validate, DEFAULTS, type TrainConfig } from '../train/config.js';
import { embedDataset } from '../train/evaluate.js';
import { buildNetwork, type DinoNetwork } from '../train/network.js';
import { PRESETS } from '../train/presets.js';
import { epochDiagnostics, headUsage } from './eval.js';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';
import { checkpointConfig, checkpointStats, evalData, networkFromCheckpoint, readRunCheckpoint, type EvalData } from '../train/run-data.js';

export type Setting = 'frozen' | 'full';
export type DataKind = 'balanced' | 'longtail';
/** 'init': the full-training network at random initialisation, evaluated without training (the baseline). */
export type Method = 'dino' | 'sinkhorn' | 'memax' | 'vmf' | 'ibot' | 'init';
export type Tier = 'main' | 'variant';

export const LONG_TAIL_RATIO = 100;
export const KOLEO_PROTO = 0.1;
/** Images in long-tailed Fashion-MNIST at ratio 100 (6000 · 100^(−c/9) per class c). */
export const LONG_TAIL_IMAGES = longTailCounts(6000, 10, LONG_TAIL_RATIO).reduce((a, b) => a + b, 0);

export interface ExperimentRun {
  name: string;
  setting: Setting;
  /** Prototypes of the head (out_dim); absent in results written before grids had several. */
  prototypes?: number;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seed: number;
  tier: Tier;
  config: Partial<TrainConfig>;
}

export interface EvalSizes {
  trainMax: number;
  testMax: number;
  linearEpochs: number;
  episodes: number;
}

export interface GridOptions {
  /** Seeds of the main comparison (DINO and Sinkhorn frozen, DINO full; each ± KoLeo-proto). */
  seeds: number;
  /** Seeds of the variants (me-max, vMF, and in full training also Sinkhorn and iBOT). */
  variantSeeds: number;
  quick: boolean;
  /** Steps of a frozen / full run (default: 2000, the demo's, / the recipe's FULL_RECIPES steps). */
  frozenSteps?: number;
  fullSteps?: number;
  /** The preset full training starts from (default fmnist-resnet). */
  fullRecipe?: string;
  /** Head sizes of the full main comparison (default: the recipe's); the variants run at the first. */
  fullKs?: number[];
}

const METHOD_CONFIG: Record<Method, Partial<TrainConfig>> = {
  dino: { centering: 'centering' },
  sinkhorn: { centering: 'sinkhorn' },
  memax: { centering: 'memax' },
  vmf: { centering: 'centering', vmf: true, norm_last_layer: false },
  ibot: { centering: 'centering', ibot: true },
  init: { centering: 'centering' },
};

const MAIN: Record<Setting, Method[]> = { frozen: ['dino', 'sinkhorn'], full: ['dino'] };
// iBOT masks patch tokens, so it has no frozen-PCA form.
const VARIANTS: Record<Setting, Method[]> = { frozen: ['memax', 'vmf'], full: ['sinkhorn', 'memax', 'vmf', 'ibot'] };

export function quickEvalSizes(): EvalSizes {
  return { trainMax: 400, testMax: 300, linearEpochs: 3, episodes: 100 };
}

/** The final evaluation's sizes; a ViT bank of 5000 images, since embedding costs as much as training there. */
export function fullEvalSizes(setting: Setting): EvalSizes {
  return { trainMax: setting === 'frozen' ? 10000 : 5000, testMax: 2000, linearEpochs: 20, episodes: 600 };
}

/**
 * The presets full training can start from, with the grid's schedule for each: the epochs its cosine
 * schedules span, the steps a run stops at and the head sizes of the main comparison. Balanced and
 * long-tailed runs train on LONG_TAIL_IMAGES images (232 steps of 64 an epoch).
 * - fmnist-resnet: the full-training recipe (docs/experiments/full-training.md) with its schedules
 *   over 4 epochs, run to their end (928 steps, about 13 minutes a run on one core of a busy 2-core
 *   machine), at K = 1024 and 4096. Cut at 2 epochs (462 steps), seed 0 gave 71.9% k-NN, no better
 *   than the untrained network (about 72%): a comparison of regularisers means little there.
 * - grid-full-v1: the first published grid (vit_cpu, K = 1024, 300 steps), kept so it reproduces.
 */
export const FULL_RECIPES: Record<string, { epochs: number; steps: number; ks: number[] }> = {
  'fmnist-resnet': { epochs: 4, steps: 928, ks: [1024, 4096] },
  'grid-full-v1': { epochs: 4, steps: 300, ks: [1024] },
};
export const DEFAULT_FULL_RECIPE = 'fmnist-resnet';
const FROZEN = { ...PRESETS['demo-frozen'].config, preset: 'demo-frozen' };

function fullRecipe(opts: Pick<GridOptions, 'fullRecipe'>): string {
  const name = opts.fullRecipe ?? DEFAULT_FULL_RECIPE;
  if (!FULL_RECIPES[name]) throw new Error(`experiments: --full_recipe takes one of ${Object.keys(FULL_RECIPES).join(', ')}, got '${name}'`);
  return name;
}

/** Head sizes of the full main comparison. */
export function fullKs(opts: Pick<GridOptions, 'fullRecipe' | 'fullKs'>): number[] {
  return opts.fullKs ?? FULL_RECIPES[fullRecipe(opts)].ks;
}

/**
 * Training config of one cell. Balanced runs train on the first LONG_TAIL_IMAGES training images, as
 * many as the long-tailed set holds, so both see the same number of images and epochs have the same
 * length (232 steps of 64): epochs are the evaluation points of the curves over training. Full runs
 * keep their recipe's cosine schedules over FULL_RECIPES' epochs, cut at max_steps. iBOT masks patch
 * tokens, so under a ResNet recipe its runs train vit_cpu with the recipe's head and schedules.
 */
export function runConfig(setting: Setting, data: DataKind, method: Method, koleoProto: number, seed: number,
  opts: Pick<GridOptions, 'quick' | 'frozenSteps' | 'fullSteps' | 'fullRecipe'>, prototypes?: number): Partial<TrainConfig> {
  let base: Partial<TrainConfig>;
  if (setting === 'frozen') {
    base = { ...FROZEN, epochs: 12, max_steps: opts.frozenSteps ?? FROZEN.max_steps };
  } else {
    const name = fullRecipe(opts), r = FULL_RECIPES[name];
    // max_steps 0 would run the recipe's own 9370 steps over epochs that no longer match them.
    base = { ...PRESETS[name].config, preset: name, epochs: r.epochs, max_steps: opts.fullSteps ?? r.steps, eval_test_max: 2000 };
    if (method === 'ibot' && !String(base.arch).startsWith('vit')) base.arch = 'vit_cpu';
  }
  if (prototypes !== undefined) base.out_dim = prototypes;
  const cfg: Partial<TrainConfig> = {
    ...base, ...METHOD_CONFIG[method], koleo_proto: koleoProto, seed, dataset: 'fashion-mnist',
    long_tail: data === 'longtail' ? LONG_TAIL_RATIO : 1, subset: data === 'balanced' ? LONG_TAIL_IMAGES : 0,
    eval_every_epoch: true, log_every: 25, quiet: true,
    // The per-epoch k-NN: a smaller bank, as the final evaluation repeats it in full.
    ...(setting === 'full' ? { eval_train_max: 2000 } : {}),
  };
  if (opts.quick) {
    // Seconds per run: 256 images, batch 32 (8 steps an epoch, two epochs), a small head (1/16 of K).
    Object.assign(cfg, {
      subset: 256, batch_size: 32, out_dim: prototypes !== undefined ? Math.max(16, prototypes >> 4) : 64, epochs: 2, max_steps: opts[setting === 'frozen' ? 'frozenSteps' : 'fullSteps'] ?? 16,
      local_crops_number: 2, log_every: 4, eval_train_max: 256, eval_test_max: 128,
      ...(setting === 'full' ? { hidden_dim: 32, bottleneck_dim: 16 } : {}),
    });
  }
  validate({ ...DEFAULTS, ...cfg });
  return cfg;
}

/** Full runs name their head size: one grid holds several. */
export function runName(setting: Setting, data: DataKind, method: Method, koleoProto: number, seed: number, prototypes?: number): string {
  return `${setting}-${prototypes !== undefined ? `k${prototypes}-` : ''}${data}-${method}${koleoProto > 0 ? '-kp' : ''}-s${seed}`;
}

/** The grid in the order it runs: the main comparison seed by seed, then the variants. */
export function experimentGrid(opts: GridOptions): ExperimentRun[] {
  const runs: ExperimentRun[] = [];
  const ks = fullKs(opts);
  const push = (tier: Tier, setting: Setting, data: DataKind, method: Method, kp: number, seed: number, k?: number) => {
    const config = runConfig(setting, data, method, kp, seed, opts, k);
    const prototypes = config.out_dim ?? DEFAULTS.out_dim;
    runs.push({
      name: runName(setting, data, method, kp, seed, k === undefined ? undefined : prototypes), setting, prototypes, data, method,
      koleoProto: kp, seed, tier, config,
    });
  };
  const add = (tier: Tier, setting: Setting, methods: Method[], seeds: number, k?: number) => {
    for (let seed = 0; seed < seeds; seed++) {
      for (const data of ['balanced', 'longtail'] as const) {
        for (const method of methods) for (const kp of [0, KOLEO_PROTO]) push(tier, setting, data, method, kp, seed, k);
      }
    }
  };
  // Frozen runs are fast; the main comparison of both settings comes before any variant, and the
  // first head size's seeds before a larger one's.
  add('main', 'frozen', MAIN.frozen, opts.seeds);
  // The untrained baselines first: they take a minute and every trained cell is read against them.
  for (let seed = 0; seed < opts.seeds; seed++) {
    for (const data of ['balanced', 'longtail'] as const) push('main', 'full', data, 'init', 0, seed, ks[0]);
  }
  for (const k of ks) add('main', 'full', MAIN.full, opts.seeds, k);
  add('variant', 'frozen', VARIANTS.frozen, opts.variantSeeds);
  add('variant', 'full', VARIANTS.full, opts.variantSeeds, ks[0]);
  return runs;
}

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
}

/** Final evaluation of a run's teacher from its checkpoint: prototypes, usage, k-NN, linear, few-shot, long tail. */
export async function evaluateRun(dir: string, be: Backend, sizes: EvalSizes): Promise<{ steps: number; metrics: RunMetrics }> {
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
async function evaluateNetworkFull(net: DinoNetwork, cfg: TrainConfig, data: EvalData, be: Backend, sizes: EvalSizes): Promise<RunMetrics> {
  let tr, te, usage, protos;
  try {
    protos = await countUniquePrototypes(net.head.last_layer.weight_v, { eps: [0.025, 0.1], rule: 'both' });
    tr = await embedDataset(net, data.train, { max: sizes.trainMax, mean: data.mean, std: data.std });
    te = await embedDataset(net, data.test, { max: sizes.testMax, mean: data.mean, std: data.std });
    usage = await headUsage(net, te.features, cfg.teacher_temp);
  } finally {
    net.dispose();
  }
  const C = data.train.classes.length;
  const knn = (await knnClassify(tr.features, tr.labels, te.features, te.labels, { k: 20, temperature: 0.07, numClasses: C, backend: be }))[0];
  const lin = await linearProbe(tr.features, tr.labels, te.features, te.labels, {
    numClasses: C, epochs: sizes.linearEpochs, batchSize: 256, lr: 1e-3, optimizer: 'adamw', seed: cfg.seed, backend: be,
  });
  const shot5 = await fewShotEval(te.features, te.labels, { nWay: 5, kShot: 5, nQuery: 15, episodes: sizes.episodes, seed: cfg.seed, backend: be });
  const shot1 = await fewShotEval(te.features, te.labels, { nWay: 5, kShot: 1, nQuery: 15, episodes: sizes.episodes, seed: cfg.seed, backend: be });
  const unique: Record<string, number> = {}, uniqueComponents: Record<string, number> = {};
  for (const e of protos.perEps) {
    unique[String(e.eps)] = e.greedy!.unique;
    uniqueComponents[String(e.eps)] = e.components!.unique;
  }
  const metrics: RunMetrics = {
    unique, uniqueComponents, prototypes: protos.prototypes, usageUsed: usage.used, usageEntropyFraction: usage.entropyFraction,
    knnTop1: knn.top1, knnTop5: knn.top5, linearTop1: lin.top1,
    fewShot5way5shot: shot5.accuracy, fewShot5way5shotCi95: shot5.ci95, fewShot5way1shot: shot1.accuracy,
  };
  // Long-tailed runs: groups by the class counts of the images the k-NN bank and the probe saw.
  // Balanced runs get the same split of the classes (the long tail makes class c rarer as c grows), as
  // the reference the long-tailed runs' tail accuracy is read against: Fashion-MNIST's last classes
  // (sneaker, bag, ankle boot) are easy ones, so a tail accuracy alone says little.
  const counts = data.longTailCounts ? classCounts({ labels: tr.labels, classes: data.train.classes }) : longTailCounts(1000, C, LONG_TAIL_RATIO);
  const kpc = perClassAccuracy(knn.predictions, te.labels, C), lpc = perClassAccuracy(lin.predictions, te.labels, C);
  const k = longTailAccuracy(kpc, counts), l = longTailAccuracy(lpc, counts);
  Object.assign(metrics, {
    knnHead: k.head.accuracy, knnMedium: k.medium.accuracy, knnTail: k.tail.accuracy,
    linearHead: l.head.accuracy, linearMedium: l.medium.accuracy, linearTail: l.tail.accuracy,
    knnPerClass: Array.from(kpc.accuracy), linearPerClass: Array.from(lpc.accuracy),
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
      for (const [e, n] of Object.entries(r.unique_prototypes as Record<string, unknown>)) if (typeof n === 'number') unique[e] = n;
    }
    byEpoch.set(r.epoch, {
      step: r.step, epoch: r.epoch, unique,
      ...(typeof r.knn_top1 === 'number' ? { knnTop1: r.knn_top1 } : {}),
      ...(typeof r.usage_used === 'number' ? { usageUsed: r.usage_used } : {}),
    });
  }
  return [...byEpoch.values()].sort((a, b) => a.step - b.step);
}

function sameConfig(a: Partial<TrainConfig>, b: Partial<TrainConfig>): boolean {
  const norm = (c: Partial<TrainConfig>) => JSON.stringify(Object.entries(c).filter(([k]) => k !== 'output_dir' && k !== 'backend' && k !== 'threads').sort());
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
export async function runExperiment(run: ExperimentRun, outDir: string, be: Backend, sizes: EvalSizes,
  print: (line: string) => void = (l) => console.log(l)): Promise<RunOutcome | null> {
  const dir = join(outDir, run.name);
  const resultPath = join(dir, 'result.json');
  const finished = (): RunOutcome | null => {
    if (!existsSync(resultPath)) return null;
    const prev = JSON.parse(readFileSync(resultPath, 'utf8')) as RunResult;
    // Written before balanced runs measured the tail classes: evaluated again from the checkpoint.
    if (prev.metrics.knnTail === undefined) return null;
    if (!sameConfig(prev.config, run.config)) {
      throw new Error(`${resultPath}: this run finished with another config (steps, seeds or quick mode changed); `
        + 'remove the directory or choose another --out');
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
    return finished() ?? await trainAndEvaluate(run, dir, be, sizes, print);
  } finally {
    release();
  }
}

async function trainAndEvaluate(run: ExperimentRun, dir: string, be: Backend, sizes: EvalSizes,
  print: (line: string) => void): Promise<RunOutcome> {
  const ckPath = join(dir, 'checkpoint.safetensors');
  const resume = existsSync(ckPath);
  if (resume) {
    const stored = checkpointConfig(ckPath, readCheckpoint(ckPath));
    if (!sameConfig(Object.fromEntries(Object.keys(run.config).map((k) => [k, stored[k as keyof TrainConfig]])), run.config)) {
      throw new Error(`${ckPath}: the checkpoint was trained with another config; remove ${dir} or choose another --out`);
    }
  } else {
    // No checkpoint: whatever the log holds is from a run killed in its first epoch.
    rmSync(join(dir, 'log.jsonl'), { force: true });
  }
  const cfg = validate({ ...DEFAULTS, ...run.config, output_dir: dir, resume });
  if (run.method === 'init') {
    const t = performance.now();
    const metrics = await evaluateInit(cfg, be, sizes);
    return { result: writeResult(dir, run, { steps: 0, trainSeconds: 0, evalSeconds: (performance.now() - t) / 1000, sizes, metrics }), status: 'evaluated' };
  }
  const t0 = performance.now();
  const diag = epochDiagnostics(cfg, (l) => print(`  ${run.name} ${l}`));
  const trained = await train(cfg, { backend: be, onEpoch: diag });
  const trainSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const { steps, metrics } = await evaluateRun(dir, be, sizes);
  const result = writeResult(dir, run, { steps, trainSeconds, evalSeconds: (performance.now() - t1) / 1000, sizes, metrics });
  return { result, status: trained.steps > 0 && trained.history.length > 0 ? 'trained' : 'evaluated' };
}

function writeResult(dir: string, run: ExperimentRun,
  r: { steps: number; trainSeconds: number; evalSeconds: number; sizes: EvalSizes; metrics: RunMetrics }): RunResult {
  const resultPath = join(dir, 'result.json');
  const result: RunResult = {
    ...run, steps: r.steps, trainSeconds: r.trainSeconds, evalSeconds: r.evalSeconds, evalSizes: r.sizes, metrics: r.metrics,
    curve: readCurve(dir),
  };
  // Written whole, then renamed: a result.json that exists is complete.
  writeFileSync(resultPath + '.tmp', JSON.stringify(result, null, 1));
  renameSync(resultPath + '.tmp', resultPath);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Aggregation over seeds.

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single seed. */
  std: number;
  n: number;
}

export function stat(xs: number[]): Stat | null {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

export const METRIC_KEYS = [
  'unique@0.025', 'unique@0.1', 'usageUsed', 'knnTop1', 'linearTop1', 'fewShot5way5shot', 'fewShot5way1shot',
  'knnHead', 'knnMedium', 'knnTail', 'linearHead', 'linearMedium', 'linearTail',
] as const;

function metricValue(m: RunMetrics, key: (typeof METRIC_KEYS)[number]): number {
  if (key === 'unique@0.025') return m.unique['0.025'];
  if (key === 'unique@0.1') return m.unique['0.1'];
  return (m[key as keyof RunMetrics] as number | undefined) ?? NaN;
}

export interface Group {
  setting: Setting;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seeds: number[];
  runs: string[];
  prototypes: number;
  steps: number;
  metrics: Partial<Record<(typeof METRIC_KEYS)[number], Stat>>;
  /** Mean unique prototypes per evaluation step over the seeds that reached it. */
  curve: { step: number; unique: Record<string, Stat> }[];
}

export function aggregate(results: RunResult[]): Group[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const key = `${r.setting}|${r.metrics.prototypes}|${r.data}|${r.method}|${r.koleoProto}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.values()].map((rs) => {
    rs.sort((a, b) => a.seed - b.seed);
    const metrics: Group['metrics'] = {};
    for (const k of METRIC_KEYS) {
      const s = stat(rs.map((r) => metricValue(r.metrics, k)));
      if (s) metrics[k] = s;
    }
    const steps = [...new Set(rs.flatMap((r) => r.curve.map((c) => c.step)))].sort((a, b) => a - b);
    const curve = steps.map((step) => {
      const pts = rs.map((r) => r.curve.find((c) => c.step === step)).filter((c): c is CurvePoint => !!c);
      const unique: Record<string, Stat> = {};
      for (const e of ['0.025', '0.1']) {
        const s = stat(pts.map((p) => p.unique[e] ?? NaN));
        if (s) unique[e] = s;
      }
      return { step, unique };
    });
    const r0 = rs[0];
    return {
      setting: r0.setting, data: r0.data, method: r0.method, koleoProto: r0.koleoProto, seeds: rs.map((r) => r.seed), runs: rs.map((r) => r.name),
      prototypes: r0.metrics.prototypes, steps: r0.steps, metrics, curve,
    };
  });
}

const METHOD_LABEL: Record<Method, string> = {
  dino: 'DINO (centering)', sinkhorn: 'Sinkhorn-Knopp', memax: 'me-max', vmf: 'DINO-vMF', ibot: 'iBOT', init: 'random init (no training)',
};

function fmt(s: Stat | undefined, pct: boolean, digits = pct ? 1 : 0): string {
  if (!s) return '–';
  const k = pct ? 100 : 1;
  return s.n > 1 ? `${(k * s.mean).toFixed(digits)} ± ${(k * s.std).toFixed(digits)}` : (k * s.mean).toFixed(digits);
}

/** The README table: one row per (setting, data, method, KoLeo-proto), mean ± std over n seeds. */
export function markdownTable(groups: Group[]): string {
  const order = (g: Group) => [g.setting === 'frozen' ? 0 : 1, g.prototypes, g.data === 'balanced' ? 0 : 1,
    ['init', 'dino', 'sinkhorn', 'memax', 'vmf', 'ibot'].indexOf(g.method), g.koleoProto];
  const sorted = [...groups].sort((a, b) => {
    const x = order(a), y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  });
  const lines = [
    '| setting | data | method | KoLeo-proto | n | unique ε=0.025 | unique ε=0.1 | k-NN top-1 % | linear top-1 % | 5-way 5-shot % | tail classes k-NN % | tail classes linear % | prototypes used |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const g of sorted) {
    const m = g.metrics;
    lines.push(`| ${g.setting} | ${g.data === 'longtail' ? `long-tail ${LONG_TAIL_RATIO}` : 'balanced'} | ${METHOD_LABEL[g.method]} | ${g.koleoProto || 0} | ${g.seeds.length} `
      + `| ${fmt(m['unique@0.025'], false)} / ${g.prototypes} | ${fmt(m['unique@0.1'], false)} / ${g.prototypes} | ${fmt(m.knnTop1, true)} | ${fmt(m.linearTop1, true)} `
      + `| ${fmt(m.fewShot5way5shot, true)} | ${fmt(m.knnTail, true)} | ${fmt(m.linearTail, true)} | ${fmt(m.usageUsed, false)} |`);
  }
  return lines.join('\n');
}

export const PAIRED_KEYS = ['unique@0.025', 'unique@0.1', 'knnTop1', 'linearTop1', 'fewShot5way5shot', 'knnTail', 'linearTail'] as const;

/** Two-sided 95% quantile of Student's t with 1–30 degrees of freedom. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export interface PairedDiff {
  /** Mean of (with KoLeo-proto − without) over the seeds both ran. */
  mean: number;
  /** Half-width of the 95% t-interval of that mean; null for one seed. */
  ci95: number | null;
  n: number;
  perSeed: number[];
}

export interface Paired {
  setting: Setting;
  prototypes: number;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seeds: number[];
  diffs: Partial<Record<(typeof PAIRED_KEYS)[number], PairedDiff>>;
}

/**
 * KoLeo-proto's effect seed by seed: each run with it against the run without it at the same seed,
 * setting, head size, data and method, as a mean difference with a 95% t-interval. Pairing removes
 * the seed's own variation (initialisation and data order are shared by both runs of a pair).
 */
export function pairedDifferences(results: RunResult[]): Paired[] {
  const key = (r: RunResult) => `${r.setting}|${r.metrics.prototypes}|${r.data}|${r.method}`;
  const out: Paired[] = [];
  for (const kp of results.filter((r) => r.koleoProto > 0)) {
    if (out.some((p) => key(kp) === `${p.setting}|${p.prototypes}|${p.data}|${p.method}` && p.koleoProto === kp.koleoProto)) continue;
    const withKp = results.filter((r) => key(r) === key(kp) && r.koleoProto === kp.koleoProto);
    const pairs = withKp.map((a) => [a, results.find((b) => key(b) === key(a) && b.koleoProto === 0 && b.seed === a.seed)] as const)
      .filter((p): p is readonly [RunResult, RunResult] => p[1] !== undefined).sort((x, y) => x[0].seed - y[0].seed);
    if (pairs.length === 0) continue;
    const diffs: Paired['diffs'] = {};
    for (const k of PAIRED_KEYS) {
      const d = pairs.map(([a, b]) => metricValue(a.metrics, k) - metricValue(b.metrics, k));
      const s = stat(d);
      if (!s || s.n !== d.length) continue;
      diffs[k] = { mean: s.mean, ci95: s.n > 1 ? T975[Math.min(s.n - 1, T975.length) - 1] * s.std / Math.sqrt(s.n) : null, n: s.n, perSeed: d };
    }
    out.push({ setting: kp.setting, prototypes: kp.metrics.prototypes, data: kp.data, method: kp.method, koleoProto: kp.koleoProto,
      seeds: pairs.map(([a]) => a.seed), diffs });
  }
  return out.sort((a, b) => a.setting.localeCompare(b.setting) || a.prototypes - b.prototypes || a.data.localeCompare(b.data) || a.method.localeCompare(b.method));
}

function fmtDiff(d: PairedDiff | undefined, pct: boolean): string {
  if (!d) return '–';
  const k = pct ? 100 : 1, digits = pct ? 1 : 0;
  const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(k * x).toFixed(digits)}`;
  return d.ci95 === null ? sign(d.mean) : `${sign(d.mean)} ± ${(k * d.ci95).toFixed(digits)}`;
}

/** The paired differences as a Markdown table: mean ± 95% half-interval, in points for accuracies. */
export function pairedTable(paired: Paired[]): string {
  const lines = [
    '| setting | K | data | method | n | Δ unique ε=0.025 | Δ unique ε=0.1 | Δ k-NN | Δ linear | Δ 5-way 5-shot | Δ tail k-NN | Δ tail linear |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of paired) {
    const d = p.diffs;
    lines.push(`| ${p.setting} | ${p.prototypes} | ${p.data === 'longtail' ? `long-tail ${LONG_TAIL_RATIO}` : 'balanced'} | ${METHOD_LABEL[p.method]} | ${p.seeds.length} `
      + `| ${fmtDiff(d['unique@0.025'], false)} | ${fmtDiff(d['unique@0.1'], false)} | ${fmtDiff(d.knnTop1, true)} | ${fmtDiff(d.linearTop1, true)} `
      + `| ${fmtDiff(d.fewShot5way5shot, true)} | ${fmtDiff(d.knnTail, true)} | ${fmtDiff(d.linearTail, true)} |`);
  }
  return lines.join('\n');
}

/** Unique prototypes over training (mean over seeds) of the frozen groups, as a Markdown table. */
export function curveTable(groups: Group[], setting: Setting, data: DataKind, prototypes?: number): string {
  const gs = groups.filter((g) => g.setting === setting && g.data === data && (g.method === 'dino' || g.method === 'sinkhorn')
    && (prototypes === undefined || g.prototypes === prototypes))
    .sort((a, b) => a.method.localeCompare(b.method) || a.koleoProto - b.koleoProto);
  if (gs.length === 0) return '';
  const steps = [...new Set(gs.flatMap((g) => g.curve.map((c) => c.step)))].sort((a, b) => a - b);
  const head = `| step | ${gs.map((g) => `${METHOD_LABEL[g.method]}${g.koleoProto > 0 ? ' + KP' : ''}`).join(' | ')} |`;
  const lines = [head, `|---|${gs.map(() => '---').join('|')}|`];
  for (const step of steps) {
    lines.push(`| ${step} | ${gs.map((g) => {
      const c = g.curve.find((p) => p.step === step);
      return c ? `${fmt(c.unique['0.025'], false)} / ${fmt(c.unique['0.1'], false)}` : '–';
    }).join(' | ')} |`);
  }
  return lines.join('\n');
}

export function collectResults(outDir: string, runs: ExperimentRun[]): RunResult[] {
  const out: RunResult[] = [];
  for (const r of runs) {
    const p = join(outDir, r.name, 'result.json');
    if (existsSync(p)) out.push(JSON.parse(readFileSync(p, 'utf8')) as RunResult);
  }
  return out;
}

export function writeResults(outDir: string, opts: GridOptions, grid: ExperimentRun[], results: RunResult[]): Group[] {
  const groups = aggregate(results);
  const missing = grid.filter((r) => !results.some((x) => x.name === r.name)).map((r) => r.name);
  writeFileSync(join(outDir, 'results.json'), JSON.stringify({
    written: new Date().toISOString(), grid: { ...opts, longTailRatio: LONG_TAIL_RATIO, koleoProto: KOLEO_PROTO, balancedImages: LONG_TAIL_IMAGES },
    groups, paired: pairedDifferences(results), missing, runs: results,
  }, null, 1));
  return groups;
}

// ---------------------------------------------------------------------------------------------------
// Command line.

export interface ExperimentsOptions extends GridOptions {
  out: string;
  backend: 'wasm' | 'webgpu' | 'auto';
  threads?: number;
  settings: Setting[];
  tiers: Tier[];
  /** Only aggregate the runs already finished. */
  aggregateOnly: boolean;
  print?: (line: string) => void;
}

export interface ExperimentsSummary {
  grid: ExperimentRun[];
  outcomes: RunOutcome[];
  groups: Group[];
  table: string;
  seconds: number;
}

export async function runExperiments(opts: ExperimentsOptions): Promise<ExperimentsSummary> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const grid = experimentGrid(opts).filter((r) => opts.settings.includes(r.setting) && opts.tiers.includes(r.tier));
  mkdirSync(opts.out, { recursive: true });
  const outcomes: RunOutcome[] = [];
  if (!opts.aggregateOnly) {
    const be = await createBackend({ kind: opts.backend, ...(opts.threads ? { threads: opts.threads } : {}) });
    print(`protodino experiments: ${grid.length} runs into ${opts.out} on ${be.description}`);
    try {
      for (const [i, run] of grid.entries()) {
        const t = performance.now();
        const o = await runExperiment(run, opts.out, be, opts.quick ? quickEvalSizes() : fullEvalSizes(run.setting), print);
        if (!o) {
          print(`[${i + 1}/${grid.length}] ${run.name}: running in another process, skipped`);
          continue;
        }
        outcomes.push(o);
        const m = o.result.metrics;
        print(`[${i + 1}/${grid.length}] ${run.name}: ${o.status}${o.status === 'done' ? '' : ` in ${((performance.now() - t) / 1000).toFixed(0)} s`}; `
          + `unique ${m.unique['0.025']} / ${m.unique['0.1']} of ${m.prototypes}, k-NN ${(100 * m.knnTop1).toFixed(1)}%, linear ${(100 * m.linearTop1).toFixed(1)}%`
          + `${m.knnTail !== undefined ? `, tail k-NN ${(100 * m.knnTail).toFixed(1)}%` : ''}`);
        // Results after every run, so an interrupted grid still leaves a current table.
        writeResults(opts.out, opts, grid, collectResults(opts.out, grid));
      }
    } finally {
      be.destroy();
    }
  }
  const groups = writeResults(opts.out, opts, grid, collectResults(opts.out, grid));
  const table = markdownTable(groups);
  return { grid, outcomes, groups, table, seconds: (performance.now() - t0) / 1000 };
}

function listFlag<T extends string>(cmd: string, name: string, v: string | undefined, all: readonly T[]): T[] {
  if (v === undefined) return [...all];
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of xs) if (!all.includes(x as T)) throw new Error(`${cmd}: --${name} takes a comma list of ${all.join(', ')}, got '${x}'`);
  return xs as T[];
}

export async function experiments(argv: string[]): Promise<void> {
  const cmd = 'experiments';
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      seeds: { type: 'string' },
      variant_seeds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'runs/experiments' },
      ...BACKEND_OPTION,
      threads: { type: 'string' },
      only: { type: 'string' },
      tier: { type: 'string' },
      frozen_steps: { type: 'string' },
      full_steps: { type: 'string' },
      full_recipe: { type: 'string' },
      ks: { type: 'string' },
      aggregate: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      plots: { type: 'string' },
    },
  });
  const quick = values.quick!;
  const opts: ExperimentsOptions = {
    seeds: intFlag(cmd, 'seeds', values.seeds, quick ? 1 : 3),
    variantSeeds: intFlag(cmd, 'variant_seeds', values.variant_seeds, 1, 0),
    quick,
    ...(values.frozen_steps !== undefined ? { frozenSteps: intFlag(cmd, 'frozen_steps', values.frozen_steps, 0) } : {}),
    ...(values.full_steps !== undefined ? { fullSteps: intFlag(cmd, 'full_steps', values.full_steps, 0) } : {}),
    ...(values.full_recipe !== undefined ? { fullRecipe: values.full_recipe } : {}),
    ...(values.ks !== undefined ? { fullKs: values.ks.split(',').map((k) => intFlag(cmd, 'ks', k.trim(), 0, 2)) } : {}),
    out: values.out!,
    backend: backendKind(cmd, values.backend),
    ...(values.threads !== undefined ? { threads: intFlag(cmd, 'threads', values.threads, 0) } : {}),
    settings: listFlag(cmd, 'only', values.only, ['frozen', 'full'] as const),
    tiers: listFlag(cmd, 'tier', values.tier, ['main', 'variant'] as const),
    aggregateOnly: values.aggregate!,
  };
  if (values.list) {
    for (const r of experimentGrid(opts).filter((r) => opts.settings.includes(r.setting) && opts.tiers.includes(r.tier))) {
      console.log(`${r.name}  (${r.tier}, ${r.config.max_steps} steps)`);
    }
    return;
  }
  const s = await runExperiments(opts);
  console.log(`\n${s.table}\n`);
  const paired = pairedDifferences(collectResults(opts.out, s.grid));
  if (paired.length) console.log(`KoLeo-proto minus none, paired by seed (mean ± 95% interval; accuracies in points):\n\n${pairedTable(paired)}\n`);
  for (const data of ['balanced', 'longtail'] as const) {
    const t = curveTable(s.groups, 'frozen', data);
    if (t) console.log(`Unique prototypes over training (frozen, ${data}; ε = 0.025 / ε = 0.1, mean over seeds):\n\n${t}\n`);
  }
  for (const k of opts.settings.includes('full') ? fullKs(opts) : []) {
    for (const data of ['balanced', 'longtail'] as const) {
      const t = curveTable(s.groups, 'full', data, k);
      if (t) console.log(`Unique prototypes over training (full, K = ${k}, ${data}; ε = 0.025 / ε = 0.1, mean over seeds):\n\n${t}\n`);
    }
  }
  if (values.plots !== undefined) {
    const { writeExperimentPlots } = await import('./experiments-plots.js');
    for (const p of await writeExperimentPlots(s.groups, values.plots)) console.log(`wrote ${p}`);
  }
  console.log(`results: ${join(opts.out, 'results.json')}; ${s.outcomes.filter((o) => o.status !== 'done').length} runs trained or evaluated now, `
    + `${s.grid.length - collectResults(opts.out, s.grid).length} missing; ${(s.seconds / 60).toFixed(1)} min`);
}
