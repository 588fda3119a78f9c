// The experiments driver (protodino experiments) in quick mode: the grid's shape, two tiny frozen runs
// trained, evaluated and written where `protodino report` reads them, resuming (a finished run is
// skipped, a run with a checkpoint but no result is only re-evaluated, to the same numbers; a run
// another live process holds is left alone), a changed config refused, the untrained baseline, an
// iBOT run, the mean ± std aggregation against hand-computed values and the summary plots.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import {
  aggregate,
  experimentGrid,
  markdownTable,
  pairedDifferences,
  pairedTable,
  quickEvalSizes,
  runConfig,
  runExperiment,
  stat,
  writeResults,
  type ExperimentRun,
  type RemedyComparison,
  type RunResult,
} from '../../src/experiments/index.js';
import { writeExperimentPlots } from '../../src/experiments/plots.js';
import { loadRun } from '../../src/report/runs.js';
import { readJsonl } from '../../src/train/log.js';
import { loadFashionMNIST, longTail } from '../../src/data/index.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;
const dir = mkdtempSync(join(tmpdir(), 'protodino-experiments-'));
const quiet = () => {};

function tinyRun(kp: number, steps = 8): ExperimentRun {
  // Long-tailed, so the head / medium / tail split is exercised too; 8 steps of 32 = one epoch of the 256-image subset.
  return {
    name: `frozen-longtail-dino${kp ? '-kp' : ''}-s0`,
    setting: 'frozen',
    data: 'longtail',
    method: 'dino',
    koleoProto: kp,
    seed: 0,
    tier: 'main',
    config: runConfig('frozen', 'longtail', 'dino', kp, 0, { quick: true, frozenSteps: steps }),
  };
}

test('grid: main comparison first, same seeds with and without KoLeo-proto, unique names', async () => {
  const grid = experimentGrid({ seeds: 3, variantSeeds: 1, quick: false });
  const names = grid.map((r) => r.name);
  assert.is(new Set(names).size, names.length, 'run names repeat');
  const firstVariant = grid.findIndex((r) => r.tier === 'variant');
  assert.ok(
    grid.slice(firstVariant).every((r) => r.tier === 'variant'),
    'a main run comes after a variant',
  );
  const main = grid.filter((r) => r.tier === 'main');
  // frozen: 2 data × {centering, sinkhorn} × ±KP × 3 seeds; full: 2 head sizes × 2 data × DINO × ±KP
  // × 3 seeds, and the untrained network of each data and seed.
  assert.is(main.length, 24 + 24 + 6);
  assert.equal(
    main
      .filter((r) => r.method === 'init')
      .map((r) => r.name)
      .sort(),
    [
      'full-k1024-balanced-init-s0',
      'full-k1024-balanced-init-s1',
      'full-k1024-balanced-init-s2',
      'full-k1024-longtail-init-s0',
      'full-k1024-longtail-init-s1',
      'full-k1024-longtail-init-s2',
    ],
  );
  // The full runs follow the ResNet recipe at K = 1024 and 4096; iBOT, which masks patch tokens, a ViT.
  const full = grid.filter((r) => r.setting === 'full');
  assert.equal([...new Set(full.filter((r) => r.tier === 'main').map((r) => r.config.out_dim))], [1024, 4096]);
  assert.ok(full.every((r) => r.config.out_dim === r.prototypes && r.name.startsWith(`full-k${r.prototypes}-`)));
  assert.ok(
    full
      .filter((r) => r.method !== 'ibot')
      .every((r) => r.config.arch === 'resnet_cpu' && r.config.preset === 'fmnist-resnet'),
  );
  assert.ok(full.filter((r) => r.tier === 'variant').every((r) => r.prototypes === 1024));
  assert.is(full.find((r) => r.method === 'ibot')!.config.arch, 'vit_cpu');
  assert.is(full.find((r) => r.method === 'dino')!.config.max_steps, 928);
  // The first published grid still reproduces: vit_cpu, K = 1024, 300 steps.
  const v1 = experimentGrid({ seeds: 1, variantSeeds: 0, quick: false, fullRecipe: 'grid-full-v1' }).filter(
    (r) => r.setting === 'full',
  );
  assert.ok(v1.every((r) => r.config.arch === 'vit_cpu' && r.config.out_dim === 1024 && r.config.max_steps === 300));
  assert.throws(
    () => experimentGrid({ seeds: 1, variantSeeds: 0, quick: false, fullRecipe: 'nope' }),
    /--full_recipe takes one of/,
  );
  assert.equal(
    [
      ...new Set(
        experimentGrid({ seeds: 1, variantSeeds: 0, quick: false, fullKs: [512] })
          .filter((r) => r.setting === 'full')
          .map((r) => r.prototypes),
      ),
    ],
    [512],
  );
  for (const r of main.filter((x) => x.koleoProto > 0)) {
    const twin = main.find((x) => x.name === r.name.replace('-kp-', '-'))!;
    assert.ok(twin, `${r.name} has no run without KoLeo-proto`);
    assert.equal(
      { ...twin.config, koleo_proto: 0.1 },
      r.config,
      `${r.name} differs from its twin in more than koleo_proto`,
    );
  }
  const lt = grid.find((r) => r.data === 'longtail')!,
    bal = grid.find((r) => r.data === 'balanced')!;
  assert.is(lt.config.long_tail, 100);
  // Balanced runs train on as many images as the long-tailed set the trainer builds has.
  const fm = await loadFashionMNIST({ split: 'train' });
  assert.is(bal.config.subset, longTail(fm, { ratio: 100, seed: 0 }).dataset.n);
  assert.ok(
    !grid.some((r) => r.setting === 'frozen' && r.method === 'ibot'),
    'iBOT needs a ViT; it has no frozen-PCA run',
  );
  assert.is(grid.find((r) => r.method === 'vmf')!.config.norm_last_layer, false);
});

test("'em' is a selectable method of both settings, in no default grid's cells", () => {
  const cfg = runConfig('full', 'balanced', 'em', 0, 1, { quick: true }, 256);
  assert.is(cfg.prototypes, 'em');
  assert.is(cfg.koleo_proto, 0);
  // KoLeo-proto has nothing to act on.
  assert.throws(() => runConfig('full', 'balanced', 'em', 0.1, 1, { quick: true }), /--koleo_proto/);
  assert.throws(() => runConfig('frozen', 'balanced', 'em', 0.1, 1, { quick: true }), /--koleo_proto/);
  // Frozen: the PCA-64 cell of every other method, with EM fitting its prototype matrix.
  const frozen = runConfig('frozen', 'balanced', 'em', 0, 1, { quick: false });
  assert.equal(
    { ...frozen, prototypes: undefined },
    { ...runConfig('frozen', 'balanced', 'dino', 0, 1, { quick: false }), prototypes: undefined },
  );
  assert.is(frozen.prototypes, 'em');
  assert.is(frozen.arch, 'pca');
  assert.is(frozen.prototypes_only, true);
  for (const quick of [true, false]) {
    const grid = experimentGrid({ seeds: 2, variantSeeds: 1, quick });
    assert.ok(grid.length > 0);
    assert.not.ok(
      grid.some((r) => r.method === 'em' || r.config.prototypes === 'em'),
      'an em cell in the default grid',
    );
  }
});

test('stat, aggregate and plots: mean and sample std over seeds', async () => {
  assert.equal(stat([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(5 / 3), n: 4 });
  assert.equal(stat([7]), { mean: 7, std: 0, n: 1 });
  assert.is(stat([NaN]), null);
  const mk = (seed: number, kp: number, u: number, knn: number): RunResult => ({
    name: `x${seed}${kp}`,
    setting: 'frozen',
    data: 'balanced',
    method: 'dino',
    koleoProto: kp,
    seed,
    tier: 'main',
    config: {},
    steps: 10,
    trainSeconds: 0,
    evalSeconds: 0,
    curve: [{ step: 10, epoch: 1, unique: { '0.025': u, '0.1': u } }],
    metrics: {
      unique: { '0.025': u, '0.1': u - 1 },
      uniqueComponents: {},
      prototypes: 64,
      usageUsed: 5,
      usageEntropyFraction: 0.5,
      knnTop1: knn,
      knnTop5: 1,
      linearTop1: 0.5,
      fewShot5way5shot: 0.6,
      fewShot5way5shotCi95: 0.01,
      fewShot5way1shot: 0.4,
    },
  });
  const groups = aggregate([mk(0, 0, 10, 0.8), mk(1, 0, 14, 0.6), mk(0, 0.1, 64, 0.7)]);
  assert.is(groups.length, 2);
  const dino = groups.find((g) => g.koleoProto === 0)!;
  assert.equal(dino.seeds, [0, 1]);
  assert.is(dino.metrics['unique@0.025']!.mean, 12);
  assert.ok(Math.abs(dino.metrics['unique@0.025']!.std - Math.SQRT2 * 2) < 1e-12);
  assert.ok(Math.abs(dino.metrics.knnTop1!.mean - 0.7) < 1e-12);
  assert.is(dino.curve[0].unique['0.025'].mean, 12);
  const table = markdownTable(groups);
  assert.match(table, '| frozen | balanced | DINO (centering) | 0 | 2 | 12 ± 3 / 64 | 11 ± 3 / 64 | 70.0 ± 14.1 |');
  assert.match(table, '| frozen | balanced | DINO (centering) | 0.1 | 1 | 64 / 64 |');
  const full = aggregate([
    { ...mk(0, 0, 64, 0.6), setting: 'full' },
    { ...mk(0, 0.1, 64, 0.65), setting: 'full' },
  ]);
  const svgs = await writeExperimentPlots([...groups, ...full], join(dir, 'plots'));
  assert.equal(svgs, [join(dir, 'plots', 'experiments-unique.svg'), join(dir, 'plots', 'experiments-accuracy.svg')]);
  // Vega labels every mark it draws (aria-label), so the data that reached the plot can be read back.
  const unique = readFileSync(svgs[0], 'utf8'),
    acc = readFileSync(svgs[1], 'utf8');
  assert.match(unique, 'centering + KoLeo-proto 0.1');
  assert.ok(
    (unique.match(/aria-roledescription="line mark"/g) ?? []).length >= 2,
    'no curve in the unique-prototype plot',
  );
  assert.match(acc, 'metric: k-NN top-1; accuracy (%): 60; kp: no KoLeo-proto');
  assert.match(acc, 'metric: k-NN top-1; accuracy (%): 65; kp: KoLeo-proto 0.1');
  assert.not.match(acc, 'frozen', 'the frozen setting (a fixed PCA backbone) has no place in the accuracy plot');
});

test('paired differences: KoLeo-proto minus none at the same seed, with a 95% t-interval', () => {
  const mk = (seed: number, kp: number, knn: number, u: number, k = 1024): RunResult => ({
    name: `r${seed}${kp}${k}`,
    setting: 'full',
    data: 'longtail',
    method: 'dino',
    koleoProto: kp,
    seed,
    tier: 'main',
    config: {},
    steps: 1,
    trainSeconds: 0,
    evalSeconds: 0,
    curve: [],
    metrics: {
      unique: { '0.025': u, '0.1': u },
      uniqueComponents: {},
      prototypes: k,
      usageUsed: 1,
      usageEntropyFraction: 1,
      knnTop1: knn,
      knnTop5: 1,
      linearTop1: 0.5,
      fewShot5way5shot: 0.5,
      fewShot5way5shotCi95: 0,
      fewShot5way1shot: 0.5,
    },
  });
  const runs = [
    mk(0, 0, 0.7, 10),
    mk(1, 0, 0.6, 20),
    mk(2, 0, 0.8, 30),
    mk(0, 0.1, 0.72, 110),
    mk(1, 0.1, 0.63, 120),
    mk(2, 0.1, 0.81, 130),
    // Unpaired (no run without KoLeo-proto at seed 3) and another head size: left out of the pairs above.
    mk(3, 0.1, 0.9, 5),
    mk(0, 0, 0.5, 7, 4096),
  ];
  const p = pairedDifferences(runs);
  assert.is(p.length, 1);
  assert.equal(p[0].seeds, [0, 1, 2]);
  const knn = p[0].diffs.knnTop1!;
  assert.equal(
    knn.perSeed.map((d) => Math.round(d * 1000)),
    [20, 30, 10],
  );
  assert.ok(Math.abs(knn.mean - 0.02) < 1e-12);
  // sd of (0.02, 0.03, 0.01) is 0.01; t(2) = 4.303.
  assert.ok(Math.abs(knn.ci95! - (4.303 * 0.01) / Math.sqrt(3)) < 1e-9);
  assert.is(p[0].diffs['unique@0.025']!.mean, 100);
  assert.is(p[0].diffs['unique@0.025']!.ci95, 0);
  assert.match(
    pairedTable(p),
    '| full | 1024 | long-tail 100 | DINO (centering) | 3 | +100 ± 0 | +100 ± 0 | +2.0 ± 2.5 |',
  );
});

test('quick runs: trained, evaluated, readable by the report, then resumed without retraining', async () => {
  const be = await getBackend(wasmCase);
  const sizes = quickEvalSizes();
  const a = (await runExperiment(tinyRun(0), dir, be, sizes, quiet))!;
  const b = (await runExperiment(tinyRun(0.1), dir, be, sizes, quiet))!;
  assert.is(a.status, 'trained');
  assert.is(b.status, 'trained');
  for (const o of [a, b]) {
    const m = o.result.metrics;
    assert.is(o.result.steps, 8);
    assert.is(m.prototypes, 64);
    for (const e of ['0.025', '0.1'])
      assert.ok(m.unique[e] >= 1 && m.unique[e] <= 64, `unique at ε ${e} = ${m.unique[e]}`);
    assert.ok(m.unique['0.1'] <= m.unique['0.025'], 'a larger ε cannot give more unique prototypes');
    // The same ε is a looser threshold read as 1 − cos than as a distance between unit vectors.
    const sw = m.uniqueSweep!;
    assert.is(sw.euclidean['0.025'], m.unique['0.025']);
    for (const e of ['0.025', '0.05', '0.1', '0.25', '0.5']) assert.ok(sw.cosine[e] <= sw.euclidean[e], `ε ${e}`);
    for (const k of ['knnTop1', 'linearTop1', 'fewShot5way5shot', 'knnHead', 'knnTail', 'linearTail'] as const) {
      assert.ok(typeof m[k] === 'number' && m[k]! >= 0 && m[k]! <= 1, `${o.result.name} ${k} = ${m[k]}`);
    }
    // Eight steps of one 8-step epoch: one evaluation point, logged by the epoch diagnostics.
    assert.equal(
      o.result.curve.map((c) => c.step),
      [8],
    );
    // The cost: the median of the log's step times, the highest of its peaks of live bytes.
    const steps = readJsonl(join(dir, o.result.name, 'log.jsonl')).records.filter((r) => r.event === 'step');
    assert.ok(steps.length >= 2, `${steps.length} step records`);
    const times = steps.map((r) => r.step_s as number).sort((x, y) => x - y);
    assert.ok(times.every((t) => t > 0 && Number.isFinite(t)));
    const mid = times.length >> 1;
    assert.is(o.result.stepSeconds, times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2);
    assert.is(o.result.peakBytes, Math.max(...steps.map((r) => r.peak_bytes as number)));
    // At least the teacher's and the student's prototypes, which are live throughout.
    assert.ok(o.result.peakBytes! > 2 * 64 * 4, `peak ${o.result.peakBytes} bytes`);
    const run = loadRun(join(dir, o.result.name));
    assert.is(run.epochs.length, 1);
    assert.equal(run.epochs[0].unique, o.result.curve[0].unique);
    assert.ok(run.checkpoint, 'no checkpoint for the report');
  }
  const start = readJsonl(join(dir, b.result.name, 'log.jsonl')).records.find((r) => r.event === 'start')!;
  assert.is((start.config as Record<string, unknown>).koleo_proto, 0.1);

  // Finished: read back, nothing runs.
  const again = (await runExperiment(tinyRun(0), dir, be, sizes, quiet))!;
  assert.is(again.status, 'done');
  assert.equal(again.result, a.result);

  // Checkpoint but no result (killed during the final evaluation): evaluated again, same numbers.
  rmSync(join(dir, a.result.name, 'result.json'));
  // ... unless another live process holds the run's lock; a dead one's lock is taken over.
  const lock = join(dir, a.result.name, '.lock');
  writeFileSync(lock, String(process.ppid));
  assert.is(await runExperiment(tinyRun(0), dir, be, sizes, quiet), null, 'ran a run another process holds');
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(lock, String(gone));
  const re = (await runExperiment(tinyRun(0), dir, be, sizes, quiet))!;
  assert.not.ok(existsSync(lock), 'the lock outlived the run');
  assert.is(re.status, 'evaluated');
  assert.equal(re.result.metrics, a.result.metrics);
  assert.equal(re.result.curve, a.result.curve);
  assert.is(re.result.stepSeconds, a.result.stepSeconds, 'the cost is read back from the log');
  assert.is(re.result.peakBytes, a.result.peakBytes);

  // Another step count is another experiment: refused, naming the file.
  try {
    await runExperiment(tinyRun(0, 16), dir, be, sizes, quiet);
    assert.unreachable('a finished run with another config was reused');
  } catch (e) {
    assert.match((e as Error).message, join(dir, a.result.name, 'result.json'));
    assert.match((e as Error).message, 'another config');
  }

  // The baseline: the untrained ViT, evaluated without a training step.
  const init: ExperimentRun = {
    name: 'full-k1024-longtail-init-s0',
    setting: 'full',
    data: 'longtail',
    method: 'init',
    koleoProto: 0,
    seed: 0,
    tier: 'main',
    config: runConfig('full', 'longtail', 'init', 0, 0, { quick: true }, 1024),
  };
  const base = (await runExperiment(init, dir, be, sizes, quiet))!;
  assert.is(base.status, 'evaluated');
  assert.is(base.result.steps, 0);
  assert.is(
    base.result.metrics.unique['0.025'],
    64,
    'randomly initialised prototypes are all distinct (quick mode: K / 16)',
  );
  assert.ok(
    base.result.metrics.knnTop1 > 0.1 && base.result.metrics.knnTop1 <= 1,
    `init k-NN ${base.result.metrics.knnTop1}`,
  );
  assert.not.ok(existsSync(join(dir, init.name, 'checkpoint.safetensors')), 'the baseline trained');
  assert.is(base.result.stepSeconds, undefined, 'an untrained baseline has no step time');
  assert.is(base.result.peakBytes, undefined);

  // iBOT checkpoints carry the mask token; the final evaluation rebuilds the network with it.
  const ibot: ExperimentRun = {
    name: 'full-k1024-balanced-ibot-s0',
    setting: 'full',
    data: 'balanced',
    method: 'ibot',
    koleoProto: 0,
    seed: 0,
    tier: 'variant',
    config: runConfig('full', 'balanced', 'ibot', 0, 0, { quick: true, fullSteps: 2 }, 1024),
  };
  const ib = (await runExperiment(ibot, dir, be, sizes, quiet))!;
  assert.is(ib.status, 'trained');
  assert.is(ib.result.steps, 2);

  const opts = { seeds: 1, variantSeeds: 0, quick: true };
  const groups = writeResults(dir, opts, [tinyRun(0), tinyRun(0.1)], [re.result, b.result]);
  const saved = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as {
    groups: unknown[];
    missing: string[];
    runs: unknown[];
    remedies: Record<'frozen' | 'full', RemedyComparison[]>;
  };
  assert.is(saved.groups.length, 2);
  // DINO + KoLeo-proto against DINO: its cost as ratios to the run at the same seed.
  assert.is(saved.remedies.full.length, 0);
  const [kp] = saved.remedies.frozen;
  assert.is(kp.koleoProto, 0.1);
  assert.is(kp.stepTimeFrom, 'step');
  assert.is(kp.stepTimeRatio!.mean, b.result.stepSeconds! / re.result.stepSeconds!);
  assert.is(kp.memoryRatio!.mean, b.result.peakBytes! / re.result.peakBytes!);
  assert.is(groups.find((g) => g.koleoProto > 0)!.peakBytes!.mean, b.result.peakBytes);
  assert.equal(saved.missing, []);
  assert.is(groups.find((g) => g.koleoProto > 0)!.metrics['unique@0.025']!.mean, b.result.metrics.unique['0.025']);
  assert.ok(existsSync(join(dir, b.result.name, 'checkpoint.safetensors')));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
