// The collapse alarms in tiny real runs (wasm, 1 thread): each kind triggered by a setting known to
// collapse that way, once, in log.jsonl and on stderr; the uniform streak carried across a resume;
// and the same frozen run that collapses its prototypes raising nothing with KoLeo-proto.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { DEFAULTS, validate, type TrainConfig } from '../../src/train/config.js';
import { epochDiagnostics } from '../../src/train/diagnostics.js';
import { createBackend } from '../../src/backend/index.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'protodino-alarm-'));
}

function logRecords(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

const alarmRecords = (dir: string) => logRecords(dir).filter((r) => r.event === 'alarm' || r.event === 'alarm_cleared');

async function trainWithDiagnostics(config: Partial<TrainConfig>) {
  const cfg = validate({ ...DEFAULTS, backend: 'wasm', threads: 1, quiet: true, ...config });
  const be = await createBackend({ kind: 'wasm', threads: 1 });
  try {
    return await train(cfg, { backend: be, onEpoch: epochDiagnostics(cfg, () => {}) });
  } finally {
    be.destroy();
  }
}

// Teacher and student at temperature 100: both output near-uniform distributions, so the loss sits
// at ln 64 from the first step (4 steps per epoch of 64 images).
const uniformRun = [
  '--arch',
  'pca',
  '--prototypes_only',
  '--subset',
  '64',
  '--batch_size',
  '16',
  '--out_dim',
  '64',
  '--local_crops_number',
  '0',
  '--teacher_temp',
  '100',
  '--warmup_teacher_temp',
  '100',
  '--student_temp',
  '100',
  '--collapse_window',
  '3',
  '--no-eval_every_epoch',
  '--log_every',
  '1',
  '--backend',
  'wasm',
  '--threads',
  '1',
  '--quiet',
];

function cliTrain(args: string[]) {
  const run = spawnSync(process.execPath, [cli, 'train', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: process.env,
  });
  assert.is(run.status, 0, `exit ${run.status}: ${run.stderr}`);
  return run;
}

test('uniform collapse: a loss at ln K for --collapse_window steps warns on stderr even with --quiet, once, and is logged', () => {
  const dir = tmp();
  try {
    const run = cliTrain([...uniformRun, '--output_dir', dir]);
    assert.match(
      run.stderr,
      /protodino: alarm: uniform collapse - loss 4\.159 within 1% of ln 64 = 4\.159 for 3 steps \(steps 1-3\)/,
    );
    assert.is(run.stderr.match(/alarm:/g)?.length, 1, run.stderr);
    const alarms = alarmRecords(dir);
    assert.is(alarms.length, 1, JSON.stringify(alarms));
    assert.is(alarms[0].event, 'alarm');
    assert.is(alarms[0].kind, 'uniform');
    assert.is(alarms[0].step, 3);
    assert.is(alarms[0].epoch, 1);
    assert.ok(Math.abs((alarms[0].loss as number) - Math.log(64)) < 0.01 * Math.log(64));
    assert.equal((readCheckpoint(join(dir, 'checkpoint.safetensors')).meta.alarms as { active: string[] }).active, [
      'uniform',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uniform collapse: the streak survives a resume (2 steps before, 1 after complete the window of 3)', () => {
  const dir = tmp();
  try {
    const first = cliTrain([...uniformRun, '--max_steps', '2', '--output_dir', dir]);
    assert.not.match(first.stderr, /alarm/);
    assert.is(
      (readCheckpoint(join(dir, 'checkpoint.safetensors')).meta.alarms as { uniform_streak: number }).uniform_streak,
      2,
    );
    // Had the streak restarted at the resume, steps 3 and 4 would be 2 of 3 and nothing would fire.
    const second = cliTrain([...uniformRun, '--max_steps', '4', '--resume', '--output_dir', dir]);
    assert.match(second.stderr, /alarm: uniform collapse .* \(steps 1-3\)/);
    const alarms = alarmRecords(dir);
    assert.equal(
      alarms.map((r) => [r.kind, r.step]),
      [['uniform', 3]],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage collapse: without centering (--center_momentum 1) a sharp teacher sends every image to one prototype', async () => {
  const dir = tmp();
  try {
    // Frozen random ViT, trained MLP head: the head learns to output one prototype for everything.
    const r = await trainWithDiagnostics({
      arch: 'vit_cpu',
      freeze_backbone: true,
      subset: 128,
      batch_size: 32,
      epochs: 2,
      out_dim: 256,
      local_crops_number: 0,
      lr: 0.5,
      freeze_last_layer: 0,
      center_momentum: 1,
      teacher_temp: 0.01,
      warmup_teacher_temp: 0.01,
      momentum_teacher: 0.9,
      eval_train_max: 100,
      eval_test_max: 100,
      output_dir: dir,
    });
    const usage = r.alarms.filter((a) => a.kind === 'usage');
    assert.is(usage.length, 1, 'raised once although both epochs are collapsed');
    assert.is(usage[0].event, 'alarm');
    assert.is(usage[0].step, 4);
    assert.is(usage[0].epoch, 1);
    assert.ok((usage[0].used as number) < 2.56, `used ${usage[0].used}`);
    assert.match(
      usage[0].message,
      /usage collapse - the teacher's argmax uses \d of 256 prototypes on 100 evaluation images/,
    );
    assert.equal(
      alarmRecords(dir)
        .filter((a) => a.kind === 'usage')
        .map((a) => a.step),
      [4],
    );
    const epochs = logRecords(dir).filter((e) => e.event === 'epoch');
    assert.ok(
      epochs.every((e) => (e.usage_used as number) < 2.56),
      'still collapsed in epoch 2',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The frozen PCA setting with centering collapses prototypes (README "The default job"); a faster
// teacher (momentum 0.9) and a high lr make it visible within 300 steps. Epochs of 100 steps.
const frozen: Partial<TrainConfig> = {
  arch: 'pca',
  prototypes_only: true,
  out_dim: 1024,
  subset: 3200,
  batch_size: 32,
  epochs: 20,
  max_steps: 300,
  lr: 0.32,
  momentum_teacher: 0.9,
  freeze_last_layer: 0,
  local_crops_number: 2,
  log_every: 100,
  eval_train_max: 50,
  eval_test_max: 500,
  collapse_window: 20,
};

test("partial collapse: unique prototypes fall below half the run's highest (frozen PCA, centering)", async () => {
  const dir = tmp();
  try {
    const r = await trainWithDiagnostics({ ...frozen, output_dir: dir });
    const partial = r.alarms.filter((a) => a.kind === 'partial');
    assert.is(partial.length, 1, JSON.stringify(r.alarms));
    const p = partial[0];
    assert.is(p.event, 'alarm');
    assert.ok((p.unique as number) < (p.peak_unique as number) / 2, `${p.unique} vs ${p.peak_unique}`);
    const epochs = logRecords(dir).filter((e) => e.event === 'epoch');
    const atAlarm = epochs.find((e) => e.step === p.step)!;
    assert.is((atAlarm.unique_prototypes as Record<string, number>)['0.025'], p.unique);
    assert.is(Math.max(...epochs.map((e) => (e.unique_prototypes as Record<string, number>)['0.025'])), p.peak_unique);
    assert.equal(
      alarmRecords(dir)
        .filter((a) => a.kind === 'partial')
        .map((a) => a.step),
      [p.step],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a healthy run raises no alarm: the same frozen run with KoLeo-proto keeps its prototypes and usage', async () => {
  const dir = tmp();
  try {
    const r = await trainWithDiagnostics({ ...frozen, koleo_proto: 0.1, max_steps: 200, output_dir: dir });
    assert.equal(r.alarms, []);
    assert.equal(alarmRecords(dir), []);
    // The run really was judged, and not near any threshold (measured: loss 4.18 against ln 1024 =
    // 6.93, usage 41-43 against 10.24, 1024 unique prototypes throughout).
    const epochs = logRecords(dir).filter((e) => e.event === 'epoch');
    assert.is(epochs.length, 2);
    assert.ok(
      epochs.every(
        (e) => (e.usage_used as number) > 20 && (e.unique_prototypes as Record<string, number>)['0.025'] > 900,
      ),
      JSON.stringify(epochs),
    );
    assert.ok(
      r.history.every((h) => h.loss < 0.8 * Math.log(1024)),
      r.history.map((h) => h.loss).join(' '),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
