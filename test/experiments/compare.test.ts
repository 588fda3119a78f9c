// The remedies side by side: --methods puts EM prototypes (without KoLeo-proto) and other methods in
// the full main comparison; each remedy is paired with plain DINO at the same seed (differences, a 95%
// interval, step time and peak memory relative to DINO's, whole training time for results that
// predate the logged step time); unique prototypes over ε in both readings of ε.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compareToDino,
  experimentGrid,
  remedyTable,
  uniqueSweepTables,
  type Method,
  type RunResult,
} from '../../src/experiments/index.js';

test('--methods dino,em: EM cells at every seed and head size, without KoLeo-proto, names unique', () => {
  const grid = experimentGrid({
    seeds: 3,
    variantSeeds: 1,
    quick: true,
    fullKs: [1024, 4096],
    fullMethods: ['dino', 'em'],
  });
  const em = grid.filter((r) => r.method === 'em');
  // 3 seeds × 2 data × 2 head sizes, one cell each.
  assert.is(em.length, 12);
  assert.ok(em.every((r) => r.koleoProto === 0 && r.tier === 'main' && r.config.prototypes === 'em'));
  assert.is(new Set(grid.map((r) => r.name)).size, grid.length, 'duplicate run names');
  assert.is(grid.filter((r) => r.setting === 'full' && r.method === 'dino').length, 24);
  // A variant promoted into the main comparison runs there only.
  const promoted = experimentGrid({ seeds: 2, variantSeeds: 1, quick: true, fullMethods: ['dino', 'sinkhorn'] });
  assert.ok(promoted.filter((r) => r.setting === 'full' && r.method === 'sinkhorn').every((r) => r.tier === 'main'));
  assert.is(new Set(promoted.map((r) => r.name)).size, promoted.length);
  const frozen = experimentGrid({ seeds: 3, variantSeeds: 1, quick: true, frozenMethods: ['dino'] }).filter(
    (r) => r.setting === 'frozen',
  );
  assert.equal([...new Set(frozen.map((r) => `${r.tier} ${r.method}`))], ['main dino', 'variant memax', 'variant vmf']);
  assert.is(frozen.filter((r) => r.tier === 'main').length, 12);
  assert.throws(
    () => experimentGrid({ seeds: 1, variantSeeds: 0, quick: true, frozenMethods: ['ibot'] }),
    /--frozen_methods takes dino, sinkhorn, memax, vmf, em, got 'ibot'/,
  );
  assert.throws(
    () => experimentGrid({ seeds: 1, variantSeeds: 0, quick: true, fullMethods: ['init' as Method] }),
    /--methods takes dino, sinkhorn, memax, vmf, ibot, em, got 'init'/,
  );
});

function mk(
  method: Method,
  kp: number,
  seed: number,
  knn: number,
  u: number,
  seconds: number,
  sweep = true,
  cost: { stepSeconds: number; peakBytes: number } | null = null,
): RunResult {
  return {
    name: `${method}${kp}${seed}`,
    setting: 'full',
    data: 'balanced',
    method,
    koleoProto: kp,
    seed,
    tier: 'main',
    config: {},
    steps: 100,
    trainSeconds: seconds,
    evalSeconds: 0,
    curve: [],
    ...cost,
    metrics: {
      unique: { '0.025': u, '0.1': u - 10 },
      uniqueComponents: {},
      prototypes: 256,
      usageUsed: 5,
      usageEntropyFraction: 0.5,
      knnTop1: knn,
      knnTop5: 1,
      linearTop1: 0.5,
      fewShot5way5shot: 0.6,
      fewShot5way5shotCi95: 0.01,
      fewShot5way1shot: 0.4,
      ...(sweep
        ? {
            uniqueSweep: {
              euclidean: { '0.025': u, '0.05': u - 1, '0.1': u - 10, '0.25': u - 20, '0.5': u - 40 },
              cosine: { '0.025': u - 50, '0.05': u - 60, '0.1': u - 70, '0.25': u - 80, '0.5': u - 90 },
            },
          }
        : {}),
    },
  };
}

test('each remedy against DINO at the same seed: differences, 95% interval, step time ratio', () => {
  const results = [
    mk('dino', 0, 0, 0.7, 200, 100),
    mk('dino', 0, 1, 0.72, 210, 110),
    mk('em', 0, 0, 0.73, 256, 150),
    mk('em', 0, 1, 0.73, 256, 165),
    // Seed 2 has no DINO partner: left out of the pairs.
    mk('em', 0, 2, 0.9, 256, 999),
    mk('dino', 0.1, 0, 0.71, 250, 120),
    mk('init', 0, 0, 0.6, 256, 0),
  ];
  const rows = compareToDino(results);
  assert.equal(
    rows.map((r) => [r.method, r.koleoProto, r.seeds]),
    [
      ['dino', 0.1, [0]],
      ['em', 0, [0, 1]],
    ],
  );
  const em = rows[1];
  // k-NN: +3 and +1 points → mean 2, std √2, t(1) = 12.706 → ±12.706 · √2 / √2.
  assert.ok(Math.abs(em.diffs.knnTop1!.mean - 0.02) < 1e-12);
  assert.ok(Math.abs(em.diffs.knnTop1!.ci95! - 0.12706) < 1e-9);
  assert.equal(em.diffs['unique@0.025']!.perSeed, [56, 46]);
  // These results predate the logged step time: whole training time per step, marked as such.
  assert.ok(Math.abs(em.stepTimeRatio!.mean - 1.5) < 1e-12);
  assert.is(em.stepTimeFrom, 'train');
  assert.is(em.memoryRatio, null);
  const table = remedyTable(rows);
  assert.match(table, '| 256 | balanced | EM prototypes (decoupled) | 2 | +51 ± 64 |');
  assert.match(table, '| 1.50 ± 0.00† | – |');
  assert.match(table, '| 256 | balanced | DINO + KoLeo-proto | 1 | +50 |');
  assert.match(table, '† Training seconds per step, epoch evaluation included');
  assert.match(table, '– in memory: results written before peak memory was recorded.');
});

test('step time and memory against DINO: ratios of the logged median step time and peak live bytes', () => {
  const cost = (stepSeconds: number, peakBytes: number) => ({ stepSeconds, peakBytes });
  const results = [
    mk('dino', 0, 0, 0.7, 200, 100, true, cost(0.1, 1000)),
    mk('dino', 0, 1, 0.72, 210, 110, true, cost(0.2, 1000)),
    // trainSeconds would give 1.5 and 1.5; the step times give 1.2 and 1.4.
    mk('em', 0, 0, 0.73, 256, 150, true, cost(0.12, 1500)),
    mk('em', 0, 1, 0.73, 256, 165, true, cost(0.28, 1500)),
    mk('dino', 0.1, 0, 0.71, 250, 120, true, cost(0.11, 1250)),
    // Seed 1 of KoLeo-proto predates the cost fields: the whole row falls back, its memory unknown.
    mk('dino', 0.1, 1, 0.71, 250, 165),
  ];
  const [kp, em] = compareToDino(results);
  assert.is(em.stepTimeFrom, 'step');
  assert.equal(
    em.stepTimeRatio!.perSeed.map((x) => Math.round(x * 1e9) / 1e9),
    [1.2, 1.4],
  );
  assert.equal(em.memoryRatio!.perSeed, [1.5, 1.5]);
  assert.is(em.memoryRatio!.ci95, 0);
  assert.is(kp.stepTimeFrom, 'train');
  assert.equal(
    kp.stepTimeRatio!.perSeed.map((x) => Math.round(x * 1e9) / 1e9),
    [1.2, 1.5],
  );
  assert.is(kp.memoryRatio, null);
  const table = remedyTable([em]);
  assert.match(table, '| 1.30 ± 1.27 | 1.50 ± 0.00 |');
  assert.match(table, 'Step time: median seconds per training step; memory: the most bytes');
  assert.not.match(table, '†');
  assert.not.match(table, '– in memory');
  assert.match(remedyTable([kp]), '| 1.35 ± 1.91† | – |');
});

test('unique prototypes over ε: one table per reading of ε, mean ± std, runs without a sweep left out', () => {
  const t = uniqueSweepTables([
    mk('dino', 0, 0, 0.7, 200, 1),
    mk('dino', 0, 1, 0.7, 210, 1),
    mk('em', 0, 0, 0.7, 256, 1, false),
  ]);
  assert.match(t, 'Unique prototypes, ‖a − b‖ < ε (unit prototypes):');
  assert.match(t, 'Unique prototypes, 1 − cos < ε:');
  assert.match(t, '| 256 | balanced | DINO (centering) | 2 | 205 ± 7 | 204 ± 7 | 195 ± 7 | 185 ± 7 | 165 ± 7 |');
  assert.match(t, '| 256 | balanced | DINO (centering) | 2 | 155 ± 7 | 145 ± 7 | 135 ± 7 | 125 ± 7 | 115 ± 7 |');
  assert.not.match(t, 'EM prototypes');
  assert.is(uniqueSweepTables([mk('em', 0, 0, 0.7, 256, 1, false)]), '');
  // A --sweep cell is a row of its own, named by its values, not averaged into its method's plain row.
  const swept = { ...mk('dino', 0, 0, 0.7, 100, 1), sweep: { teacher_temp: 0.07 } };
  const ts = uniqueSweepTables([mk('dino', 0, 0, 0.7, 200, 1), mk('dino', 0, 1, 0.7, 210, 1), swept]);
  assert.match(ts, '| 256 | balanced | DINO (centering) | 2 | 205 ± 7 |');
  assert.match(ts, '| 256 | balanced | DINO (centering) (teacher_temp=0.07) | 1 | 100 |');
});

test.run();
