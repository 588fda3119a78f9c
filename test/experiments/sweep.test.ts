// protodino experiments --sweep: FLAG=v1,v2 parsed by the training flag table (unknown flags, bad
// values and flags the grid sets itself refused), the cells a one-at-a-time sweep adds and their
// names, a sweep on a method that refuses the flag, and a tiny frozen grid with EM run end to end
// through the driver and the CLI: rows carrying the swept values, in the table and results.json.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  experimentGrid,
  markdownTable,
  parseSweep,
  runExperiments,
  sweepLabel,
  sweepRows,
  sweepTable,
  sweepSuffix,
  type ExperimentsOptions,
  type SweepRow,
} from '../../src/experiments/index.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'protodino-sweep-'));

test('--sweep FLAG=v1,v2: values parsed by the flag table; unknown flags, bad values, grid-owned flags refused', () => {
  assert.equal(parseSweep('em_eta=0.005,0.02, 0.08'), { flag: 'em_eta', values: [0.005, 0.02, 0.08] });
  assert.equal(parseSweep('em_target=softmax,responsibilities'), {
    flag: 'em_target',
    values: ['softmax', 'responsibilities'],
  });
  assert.equal(parseSweep('norm_last_layer=true,false'), { flag: 'norm_last_layer', values: [true, false] });
  assert.equal(parseSweep('out_dim=256,1024').values, [256, 1024]);
  assert.throws(() => parseSweep('em_eta'), /--sweep takes FLAG=v1,v2,\.\.\. .*got 'em_eta'/);
  assert.throws(() => parseSweep('em_etta=0.1'), /'em_etta' is not a training flag/);
  assert.throws(() => parseSweep('em_eta=0.1,fast'), /--sweep em_eta: --em_eta: expects a finite number, got 'fast'/);
  assert.throws(() => parseSweep('out_dim=1.5'), /--out_dim: expects an integer, got '1\.5'/);
  assert.throws(() => parseSweep('em_target=mean'), /--em_target: must be one of softmax, responsibilities/);
  assert.throws(() => parseSweep('norm_last_layer=yes'), /expects true or false/);
  assert.throws(() => parseSweep('em_eta=0.1,0.1'), /a value is given twice/);
  for (const f of ['seed', 'koleo_proto', 'centering', 'threads', 'eval_test_max'])
    assert.throws(() => parseSweep(`${f}=1,2`), new RegExp(`--${f} cannot be swept`));
});

test('cell names carry the swept value, without the method prefix of the flag', () => {
  assert.is(sweepLabel('em_eta', 'em'), 'eta');
  assert.is(sweepLabel('teacher_temp', 'dino'), 'teacher_temp');
  assert.is(sweepSuffix({ em_beta_start: 1 }, 'em'), '-beta_start1');
  assert.is(sweepSuffix(undefined, 'em'), '');
});

test('one-at-a-time: every cell of the sweep methods once per value that differs from its own', () => {
  const grid = experimentGrid({
    seeds: 2,
    variantSeeds: 0,
    quick: false,
    frozenSteps: 700,
    frozenMethods: ['dino', 'em'],
    data: ['balanced'],
    koleoProtos: [0],
    sweeps: [parseSweep('em_eta=0.005,0.02,0.08'), parseSweep('em_beta_start=0.05,0.2,1')],
    sweepMethods: ['em'],
  }).filter((r) => r.setting === 'frozen');
  // The defaults (η 0.02, β₀ 0.2) are the plain em cell, shared by both sweeps.
  assert.equal(
    grid.map((r) => r.name),
    [0, 1].flatMap((s) => [
      `frozen-balanced-dino-s${s}`,
      `frozen-balanced-em-s${s}`,
      `frozen-balanced-em-eta0.005-s${s}`,
      `frozen-balanced-em-eta0.08-s${s}`,
      `frozen-balanced-em-beta_start0.05-s${s}`,
      `frozen-balanced-em-beta_start1-s${s}`,
    ]),
  );
  const eta = grid.find((r) => r.name === 'frozen-balanced-em-eta0.005-s1')!;
  const plain = grid.find((r) => r.name === 'frozen-balanced-em-s1')!;
  assert.equal(eta.sweep, { em_eta: 0.005 });
  assert.equal(eta.config, { ...plain.config, em_eta: 0.005 });
  assert.is(plain.sweep, undefined);
  assert.is(eta.config.max_steps, 700);
  // A method the flag has no meaning for is an error naming the sweep, the method and the remedy.
  assert.throws(
    () =>
      experimentGrid({
        seeds: 1,
        variantSeeds: 0,
        quick: true,
        frozenMethods: ['dino', 'em'],
        sweeps: [parseSweep('em_eta=0.005')],
      }),
    /--sweep em_eta=0\.005 on frozen dino: --em_eta: .*only applies with --prototypes em.*--sweep_methods/,
  );
  // A value out of the trainer's range is refused when the cell is built.
  assert.throws(
    () =>
      experimentGrid({
        seeds: 1,
        variantSeeds: 0,
        quick: true,
        frozenMethods: ['em'],
        sweeps: [parseSweep('em_eta=1.5')],
      }),
    /--em_eta: must be in \(0, 1\)/,
  );
});

test('a tiny frozen sweep with EM: trained, rows with the swept values, resumed without retraining', async () => {
  const opts: ExperimentsOptions = {
    seeds: 1,
    variantSeeds: 0,
    quick: true,
    frozenSteps: 4,
    frozenMethods: ['dino', 'em'],
    data: ['balanced'],
    koleoProtos: [0],
    sweeps: [parseSweep('em_eta=0.005,0.02'), parseSweep('em_beta_start=1')],
    sweepMethods: ['em'],
    out: dir,
    backend: 'wasm',
    threads: 1,
    settings: ['frozen'],
    tiers: ['main'],
    aggregateOnly: false,
    print: () => {},
  };
  const sweeps = opts.sweeps!;
  const s = await runExperiments(opts);
  assert.equal(
    s.grid.map((r) => r.name),
    [
      'frozen-balanced-dino-s0',
      'frozen-balanced-em-s0',
      'frozen-balanced-em-eta0.005-s0',
      'frozen-balanced-em-beta_start1-s0',
    ],
  );
  assert.equal(
    s.outcomes.map((o) => o.status),
    ['trained', 'trained', 'trained', 'trained'],
  );
  const rows = sweepRows(s.results, sweeps);
  const values = (r: SweepRow) => [r.method, r.values.em_eta, r.values.em_beta_start];
  assert.equal(rows.map(values), [
    ['dino', null, null],
    ['em', 0.005, 0.2],
    ['em', 0.02, 0.2],
    ['em', 0.02, 1],
  ]);
  for (const r of rows) {
    assert.equal(r.seeds, [0]);
    for (const metric of ['euclidean', 'cosine'] as const)
      for (const e of ['0.025', '0.1'] as const) {
        const u = r.unique[metric][e]!;
        assert.ok(u.mean >= 1 && u.mean <= r.prototypes, `${r.runs[0]} ${metric} ${e}: ${u.mean}`);
      }
    assert.ok(r.usageUsed!.mean >= 1 && r.usageUsed!.mean <= r.prototypes);
    assert.ok(r.knnTop1!.mean > 0 && r.knnTop1!.mean <= 1);
  }
  // The frozen features are fixed, so every cell's k-NN is the same number.
  assert.is(new Set(rows.map((r) => r.knnTop1!.mean)).size, 1);
  const table = sweepTable(rows, sweeps);
  assert.match(table, '| --em_eta | --em_beta_start |');
  assert.match(table, /\| EM prototypes \(decoupled\) \| 0\.005 \| 0\.2 \| 1 \|/);
  assert.match(table, /\| DINO \(centering\) \| – \| – \| 1 \|/);
  assert.match(markdownTable(s.groups), 'EM prototypes (decoupled) (em_eta=0.005)');
  const saved = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { sweep: SweepRow[] };
  assert.equal(saved.sweep.map(values), rows.map(values));
  const em = s.results.find((r) => r.name === 'frozen-balanced-em-eta0.005-s0')!;
  assert.equal(em.sweep, { em_eta: 0.005 });
  assert.is(em.config.prototypes, 'em');

  // The same grid from the command line: every cell found finished, the sweep table printed.
  const args = [
    cli,
    'experiments',
    '--quick',
    '--only',
    'frozen',
    '--tier',
    'main',
    '--seeds',
    '1',
    '--frozen_steps',
    '4',
    '--frozen_methods',
    'dino,em',
    '--data',
    'balanced',
    '--koleo_proto',
    '0',
    '--sweep',
    'em_eta=0.005,0.02',
    '--sweep',
    'em_beta_start=1',
    '--sweep_methods',
    'em',
    '--backend',
    'wasm',
    '--threads',
    '1',
    '--out',
    dir,
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, '4 runs into');
  assert.match(r.stdout, /frozen-balanced-em-beta_start1-s0: done/);
  assert.match(r.stdout, 'Sweep (--em_eta 0.005, 0.02; --em_beta_start 1;');
  assert.match(r.stdout, /\| EM prototypes \(decoupled\) \| 0\.02 \| 1 \|/);
  const bad = spawnSync(process.execPath, [...args.slice(0, 2), '--sweep', 'em_etta=1', '--list'], {
    encoding: 'utf8',
  });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, "'em_etta' is not a training flag");
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.run();
