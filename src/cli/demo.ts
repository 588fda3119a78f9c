// The default job (npm start): the frozen-representation experiment, then a short full training, each
// as DINO with and without KoLeo-proto at the same seed, printing loss, unique prototypes and k-NN;
// then the committed full-training recipe's model, evaluated live. It times a few steps first and
// shortens its runs to fit a time budget on slow machines (demo-plan.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/index.js';
import { train } from '../train/trainer.js';
import { DEFAULTS, validate, type TrainConfig } from '../train/config.js';
import { buildNetwork } from '../train/network.js';
import { embedDataset, evaluateNetwork, type NetworkReport } from '../train/evaluate.js';
import {
  checkpointStats,
  evalData,
  networkFromCheckpoint,
  readRunCheckpoint,
  type EvalData,
} from '../train/run-data.js';
import { presetValues } from '../train/presets.js';
import { formatDuration } from '../train/progress.js';
import { packagePath } from '../util/paths.js';
import { JobClock, planDemo, type DemoRates, type DemoShape } from './demo-plan.js';
import { parseArgs } from 'node:util';
import { BACKEND_OPTION, backendKind } from './args.js';

const FROZEN = presetValues('demo-frozen');
const FULL = presetValues('demo-full');

/** The committed model of the full-training recipe and its published numbers (docs/experiments/full-training.md). */
export const HEADLINE_MODEL = 'docs/models/fmnist-resnet.safetensors';
export const HEADLINE_RESULTS = 'docs/experiments/full-training.json';

/**
 * The job's expected duration after calibration. `npm start` must finish within 8 minutes on a host
 * about 3× slower than the README's, build included: there the floors below (about 5–6 minutes of
 * work) apply; here the runs are shortened to about half.
 */
const BUDGET_S = 240;
const EVAL_TRAIN = 10000;
const EVAL_TEST = 2000;

interface Row {
  firstLoss: number;
  lastLoss: number;
  report: NetworkReport;
  seconds: number;
}

async function runOne(
  cfg: Partial<TrainConfig>,
  be: Backend,
  data: EvalData,
  withKnn: boolean,
  onStep?: (step: number) => void,
): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-demo-'));
  const t0 = performance.now();
  let report: NetworkReport | null = null;
  try {
    const r = await train(
      { ...cfg, output_dir: dir, log_every: 50, quiet: true, eval_every_epoch: false },
      {
        backend: be,
        ...(onStep ? { afterBackward: ({ step }) => onStep(step) } : {}),
        onEpoch: async ({ final, teacher }) => {
          if (final)
            report = await evaluateNetwork(teacher, data, be, {
              knn: withKnn,
              trainMax: EVAL_TRAIN,
              testMax: EVAL_TEST,
            });
        },
      },
    );
    const losses = r.history.map((h) => h.loss);
    return {
      firstLoss: losses[0],
      lastLoss: losses.at(-1)!,
      report: report!,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Seconds per step after warm-up: the median gap between consecutive steps past the first `skip`. */
async function timeSteps(
  cfg: Partial<TrainConfig>,
  steps: number,
  be: Backend,
): Promise<{ stepS: number; overheadS: number }> {
  const stamps: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'protodino-demo-cal-'));
  const t0 = performance.now();
  try {
    await train(
      { ...cfg, max_steps: steps, output_dir: dir, quiet: true, eval_every_epoch: false, log_every: 1000 },
      {
        backend: be,
        afterBackward: () => stamps.push(performance.now()),
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const gaps = stamps
    .slice(2)
    .map((t, i) => t - stamps[i + 1])
    .sort((a, b) => a - b);
  const stepS = gaps[Math.floor(gaps.length / 2)] / 1000;
  return { stepS, overheadS: Math.max(0, (performance.now() - t0) / 1000 - steps * stepS) };
}

async function measureRates(be: Backend, data: EvalData): Promise<DemoRates> {
  const frozen = await timeSteps(FROZEN, 12, be);
  const full = await timeSteps(FULL, 8, be);
  const net = buildNetwork(validate({ ...DEFAULTS, ...FULL }), be, data.train.channels, 0, 0);
  const opts = { mean: data.mean, std: data.std };
  try {
    await embedDataset(net, data.train, { ...opts, max: 256 });
    const t0 = performance.now();
    await embedDataset(net, data.train, { ...opts, max: 1024 });
    return {
      frozenStepS: frozen.stepS,
      fullStepS: full.stepS,
      embedImageS: (performance.now() - t0) / 1000 / 1024,
      runOverheadS: Math.max(frozen.overheadS, full.overheadS),
    };
  } finally {
    net.dispose();
  }
}

function pct(x: number): string {
  return (100 * x).toFixed(1);
}

interface HeadlineResults {
  preset: string;
  knn_top1: number;
  seeds?: number[];
  knn_top1_mean?: number;
  knn_top1_std?: number;
  steps: number;
  wall_minutes?: number;
}

/**
 * k-NN top-1 (k = 20) of a checkpoint's teacher on the first `trainMax` / `testMax` images of its
 * run, normalised with the run's training statistics: the figure `protodino eval --knn` prints.
 */
export async function checkpointKnn(path: string, be: Backend, trainMax: number, testMax: number): Promise<number> {
  const run = readRunCheckpoint('demo', path);
  const data = await evalData(run.cfg, { stats: checkpointStats(run.ck) });
  const net = networkFromCheckpoint(run, be, data.train.channels);
  try {
    return (await evaluateNetwork(net, data, be, { trainMax, testMax })).knnTop1;
  } finally {
    net.dispose();
  }
}

/** The committed recipe's model evaluated now on the demo's subset, next to its published full-set figure. */
async function headline(be: Backend): Promise<void> {
  const model = packagePath(HEADLINE_MODEL);
  const resultsPath = packagePath(HEADLINE_RESULTS);
  if (!existsSync(model) || !existsSync(resultsPath)) {
    console.log(
      `\n3. The full-training recipe: ${HEADLINE_MODEL} or ${HEADLINE_RESULTS} is missing from this checkout, so its model cannot be shown.`,
    );
    return;
  }
  const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as {
    headline: HeadlineResults;
    baselines?: { raw_pixels_knn_top1?: number };
  };
  const pub = results.headline;
  const pixels = results.baselines?.raw_pixels_knn_top1;
  const knn = await checkpointKnn(model, be, EVAL_TRAIN, EVAL_TEST);
  const spread =
    pub.knn_top1_mean !== undefined && pub.knn_top1_std !== undefined && pub.seeds && pub.seeds.length > 1
      ? ` (${pub.seeds.length} seeds: ${pct(pub.knn_top1_mean)} ± ${pct(pub.knn_top1_std)})`
      : ' (one seed)';
  console.log(
    `\n3. The full-training recipe (--preset ${pub.preset}, ${pub.steps} steps${pub.wall_minutes ? `, ${pub.wall_minutes.toFixed(0)} min on the README's machine` : ''}): ${HEADLINE_MODEL}`,
  );
  console.log(`   k-NN top-1 now, on the demo's ${EVAL_TRAIN / 1000}k / ${EVAL_TEST / 1000}k subset: ${pct(knn)}%`);
  console.log(
    `   published, full 60k bank / 10k test: ${pct(pub.knn_top1)}%${spread}${pixels === undefined ? '' : `; raw pixels on the same protocol: ${pct(pixels)}%`}`,
  );
}

export async function demo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { quick: { type: 'boolean', default: false }, ...BACKEND_OPTION, budget: { type: 'string' } },
  });
  const quick = values.quick!;
  const kind = backendKind('demo', values.backend);
  const budgetArg = values.budget;
  const budgetS = budgetArg === undefined ? BUDGET_S : Number(budgetArg);
  if (!(budgetS > 0 && Number.isFinite(budgetS)))
    throw new Error(`demo: --budget must be a positive number of seconds, got '${budgetArg}'`);
  const be = await createBackend({ kind });
  console.log(`protodino demo on ${be.description}\n`);
  // Every run of the job trains on the whole Fashion-MNIST training split, so they share one set of
  // evaluation images and training statistics.
  const data = await evalData(validate({ ...DEFAULTS, ...FULL }));
  try {
    const shape: DemoShape = {
      frozenRuns: 4,
      fullRuns: 2,
      evalImages: EVAL_TRAIN + EVAL_TEST,
      extraEvals: 2,
      frozenSteps: quick ? { max: 200, min: 50 } : { max: FROZEN.max_steps!, min: 300 },
      fullSteps: quick ? { max: 20, min: 10 } : { max: FULL.max_steps!, min: 100 },
    };
    const t0 = performance.now();
    const rates = await measureRates(be, data);
    const plan = planDemo(shape, rates, budgetS);
    console.log(
      `Timed on this machine: full-training step ${(1000 * rates.fullStepS).toFixed(0)} ms, frozen step ${(1000 * rates.frozenStepS).toFixed(1)} ms, ` +
        `embedding ${(1e6 * rates.embedImageS).toFixed(0)} µs/image (calibration ${formatDuration((performance.now() - t0) / 1000)}).`,
    );
    console.log(
      `Expected duration: ${formatDuration(plan.expectedS)}${
        plan.scale < 1
          ? ` — runs shortened to ${(100 * plan.scale).toFixed(0)}% to fit the ${formatDuration(budgetS)} budget on this machine (a faster one runs the full-size job)`
          : ''
      }.\n`,
    );
    const clock = new JobClock(plan.expectedS, (l) => process.stderr.write(`${l}\n`));
    const evalS = shape.evalImages * rates.embedImageS;

    console.log('1. Frozen representations: 64-d PCA of the pixels, only the K = 1024 prototypes trained');
    console.log(
      `   (${plan.frozenSteps} steps, batch ${FROZEN.batch_size}, lr ${FROZEN.lr}, teacher momentum ${FROZEN.momentum_teacher})\n`,
    );
    console.log('   regulariser   KoLeo-proto  loss first → last   unique ε=0.025  unique ε=0.1   time');
    let runNo = 0;
    const runs = shape.frozenRuns + shape.fullRuns;
    for (const centering of ['centering', 'sinkhorn'] as const) {
      for (const kp of [0, 0.1]) {
        const cfg = { ...FROZEN, centering, koleo_proto: kp, max_steps: plan.frozenSteps };
        runNo++;
        clock.start(plan.frozenSteps * rates.frozenStepS + rates.runOverheadS);
        const row = await runOne(cfg, be, data, false, (s) =>
          clock.progress(s / plan.frozenSteps, `run ${runNo}/${runs} step ${s}/${plan.frozenSteps}`),
        );
        clock.finish();
        const u = row.report.uniquePrototypes;
        console.log(
          `   ${centering.padEnd(12)}  ${String(kp).padEnd(11)}  ${row.firstLoss.toFixed(3)} → ${row.lastLoss.toFixed(3)}     ${String(u['0.025']).padStart(5)} / 1024    ${String(u['0.1']).padStart(5)} / 1024  ${row.seconds.toFixed(0)}s`,
        );
      }
    }
    const full = validate({ ...DEFAULTS, ...FULL, max_steps: plan.fullSteps });
    console.log(
      `\n2. Full training: ${full.arch}, ${full.max_steps} steps, batch ${full.batch_size}, 2 global + ${full.local_crops_number} local crops, lr ${full.lr}`,
    );
    console.log(
      `   (K = ${full.out_dim}${full.use_bn_in_head ? ', BatchNorm in the head' : ''}, teacher temperature ${full.teacher_temp}, teacher momentum ${full.momentum_teacher})`,
    );
    const init = buildNetwork(full, be, data.train.channels, full.seed, 0);
    clock.start(evalS);
    const base = await evaluateNetwork(init, data, be, { trainMax: EVAL_TRAIN, testMax: EVAL_TEST });
    clock.finish();
    init.dispose();
    console.log(
      `   random initialisation: k-NN top-1 ${pct(base.knnTop1)}%, unique prototypes ${base.uniquePrototypes['0.025']} / ${full.out_dim}\n`,
    );
    console.log('   KoLeo-proto  loss first → last   k-NN top-1 (init)   unique ε=0.025  unique ε=0.1   time');
    for (const kp of [0, 0.1]) {
      runNo++;
      clock.start(plan.fullSteps * rates.fullStepS + rates.runOverheadS + evalS);
      const row = await runOne({ ...full, koleo_proto: kp }, be, data, true, (s) =>
        clock.progress(s / plan.fullSteps, `run ${runNo}/${runs} step ${s}/${plan.fullSteps}`),
      );
      clock.finish();
      const u = row.report.uniquePrototypes;
      console.log(
        `   ${String(kp).padEnd(11)}  ${row.firstLoss.toFixed(3)} → ${row.lastLoss.toFixed(3)}     ${pct(row.report.knnTop1)}% (${pct(base.knnTop1)}%)     ${String(u['0.025']).padStart(5)} / ${full.out_dim}    ${String(u['0.1']).padStart(5)} / ${full.out_dim}  ${row.seconds.toFixed(0)}s`,
      );
    }
    console.log(
      `\nk-NN: DINO protocol (cosine, k = 20, T = 0.07), teacher backbone features, ${EVAL_TRAIN / 1000}k train / ${EVAL_TEST / 1000}k test images.`,
    );
    clock.start(evalS);
    await headline(be);
    clock.finish();
    console.log(
      `\nDone in ${formatDuration((performance.now() - t0) / 1000)} (expected ${formatDuration(plan.expectedS)}).`,
    );
  } finally {
    be.destroy();
  }
}
