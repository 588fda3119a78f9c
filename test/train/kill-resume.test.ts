// Exact resume after SIGKILL: the real CLI is killed at a seeded-random step past its first
// checkpoints, resumed with --resume, and must end with a final checkpoint bit-identical to an
// uninterrupted run's (wasm) — every tensor, the data cursor and the random streams. A copy of the
// killed run whose latest checkpoint is then truncated resumes from checkpoint.safetensors.prev,
// says so, and also ends bit-identical. Drop path is on, so the drop-path random stream must be
// restored too, and iBOT, so its per-step masks and its patch center are covered.
// A second run stops between two refreshes of the KoLeo-proto candidate cache and resumes: the
// cache comes back from the checkpoint, and the run ends bit-identical too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from '../helpers/check.js';
import { readCheckpoint, type LoadedCheckpoint } from '../../src/train/checkpoint.js';

// Resolved from this file, so a private dist-NAME build runs its own CLI; PROTODINO_BUILD_DIR
// reaches the children through the inherited environment.
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

// 16 steps per epoch, 3 epochs; checkpoints every 5 steps and at each epoch's end (16, 32, 48).
// Small crops keep a run to a few seconds on a loaded machine.
const STEPS = 48;
const SAVE_EVERY = 5;
const flags = [
  '--arch',
  'vit_cpu',
  '--subset',
  '64',
  '--batch_size',
  '4',
  '--epochs',
  '3',
  '--local_crops_number',
  '2',
  '--global_crops_size',
  '16',
  '--local_crops_size',
  '8',
  '--out_dim',
  '64',
  '--hidden_dim',
  '32',
  '--bottleneck_dim',
  '16',
  '--drop_path_rate',
  '0.2',
  '--ibot',
  '--seed',
  '5',
  '--save_every',
  String(SAVE_EVERY),
  '--log_every',
  '1',
  '--eval_every_epoch',
  'false',
  '--backend',
  'wasm',
  '--threads',
  '1',
];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs `protodino train`; with `killAt`, sends SIGKILL as soon as log.jsonl records a step ≥ killAt
 * (the run may have gone a little further by then: the kill lands wherever the run is).
 */
function train(dir: string, extra: string[], killAt?: number, base: string[] = flags): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'train', ...base, '--output_dir', dir, ...extra], {
      env: process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d.toString()));
    let timer: NodeJS.Timeout | undefined;
    if (killAt !== undefined) {
      const log = join(dir, 'log.jsonl');
      timer = setInterval(() => {
        if (lastStep(log) >= killAt) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 5);
    }
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve({ code, signal, stderr });
    });
  });
}

function records(log: string): Record<string, unknown>[] {
  if (!existsSync(log)) return [];
  // A line the kill cut short is not a record yet.
  return readFileSync(log, 'utf8')
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

function lastStep(log: string): number {
  const steps = records(log)
    .filter((r) => r.event === 'step')
    .map((r) => r.step as number);
  return steps.length ? steps[steps.length - 1] : 0;
}

function assertSameState(got: LoadedCheckpoint, want: LoadedCheckpoint, what: string): void {
  assert.is(got.meta.step, want.meta.step, `${what}: steps`);
  assert.equal(got.meta.loader, want.meta.loader, `${what}: data cursor`);
  assert.equal(got.meta.generators, want.meta.generators, `${what}: random streams`);
  assert.equal(got.meta.em, want.meta.em, `${what}: EM split stream`);
  assert.is(got.meta.optimizerStep, want.meta.optimizerStep, `${what}: optimizer steps`);
  assert.equal(got.meta.optimizerSteps, want.meta.optimizerSteps, `${what}: per-parameter optimizer steps`);
  assert.equal([...got.tensors.keys()].sort(), [...want.tensors.keys()].sort(), `${what}: tensor names`);
  for (const [name, t] of want.tensors) {
    const u = got.tensors.get(name)!;
    assert.equal(u.shape, t.shape, `${what}: ${name} shape`);
    // Bit patterns, not values: -0 and NaN payloads count.
    const a = Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength);
    const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (!a.equals(b)) {
      let i = 0;
      while (u.data[i] === t.data[i] || (Number.isNaN(u.data[i]) && Number.isNaN(t.data[i]))) i++;
      assert.unreachable(
        `${what}: ${name} differs from the uninterrupted run at element ${i}: ${u.data[i]} vs ${t.data[i]}`,
      );
    }
  }
}

test('a run killed with SIGKILL at a random step resumes bit-identical from its own flags, also from .prev when the latest checkpoint is truncated (wasm)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'protodino-kill-'));
  try {
    const [full, killed, torn, other] = ['full', 'killed', 'torn', 'other'].map((d) => join(root, d));
    // From lo on two checkpoints exist, so a .prev is there to fall back to; up to hi the run has
    // steps enough left that the kill lands before it ends, even on a loaded machine.
    const lo = 2 * SAVE_EVERY + 1,
      hi = STEPS - 14;
    const killAt = lo + Math.floor(rng(Number(process.env.PROTODINO_KILL_SEED ?? 11))() * (hi - lo + 1));
    const [a, k] = await Promise.all([train(full, ['--quiet']), train(killed, ['--quiet'], killAt)]);
    assert.is(a.code, 0, `uninterrupted run: exit ${a.code}: ${a.stderr}`);
    assert.is(
      k.signal,
      'SIGKILL',
      `the run to kill ended by itself (exit ${k.code}) before step ${killAt}: ${k.stderr}`,
    );
    const killedAt = lastStep(join(killed, 'log.jsonl'));
    assert.ok(killedAt >= killAt && killedAt < STEPS, `killed after step ${killedAt}, wanted ${killAt}..${STEPS - 1}`);

    cpSync(killed, torn, { recursive: true });
    const latest = join(torn, 'checkpoint.safetensors');
    // The kill may have landed between the rotation to .prev and the new write: then there is no latest.
    const hadLatest = existsSync(latest);
    if (hadLatest) truncateSync(latest, Math.floor(statSync(latest).size / 2));

    cpSync(full, other, { recursive: true });
    // Not --quiet: the warnings go to stderr. `other` is finished, so its resume only warns. The
    // killed run resumes with no training flags at all: they come from its checkpoint.
    const [r, t, o] = await Promise.all([
      train(killed, ['--quiet', '--resume'], undefined, []),
      train(torn, ['--resume']),
      train(other, ['--resume', '--lr', '0.001']),
    ]);
    assert.is(o.code, 0, `resumed finished run: exit ${o.code}: ${o.stderr}`);
    assert.match(o.stderr, /with other training flags than it was trained with: --lr 0\.001 \(was 0\.0005\)\n/);
    assert.is(r.code, 0, `resumed run: exit ${r.code}: ${r.stderr}`);
    assert.is(t.code, 0, `resumed torn run: exit ${t.code}: ${t.stderr}`);
    assert.match(
      t.stderr,
      hadLatest
        ? /checkpoint\.safetensors is unreadable \(.+\); resuming from the previous checkpoint .*checkpoint\.safetensors\.prev/
        : /checkpoint\.safetensors is missing .*; resuming from the previous checkpoint/,
    );

    const resumeOf = (dir: string) => records(join(dir, 'log.jsonl')).find((x) => x.event === 'resume');
    const rr = resumeOf(killed)!,
      tr = resumeOf(torn)!;
    assert.ok(rr, 'no resume event in the log');
    assert.ok(
      (rr.step as number) >= killAt - 2 * SAVE_EVERY && (rr.step as number) <= killedAt,
      `resumed from step ${rr.step}, killed after ${killedAt}`,
    );
    assert.ok(
      typeof tr.fallback === 'string' && String(tr.from).endsWith('.prev'),
      `torn run resumed from ${tr.from} (${tr.fallback})`,
    );
    // The unreadable file leaves the rotation, so the next save cannot rotate it over the good .prev.
    assert.is(existsSync(`${latest}.corrupt`), hadLatest, 'the truncated checkpoint was not set aside');
    assert.ok(
      (tr.step as number) < (rr.step as number) || !hadLatest,
      `torn run resumed from step ${tr.step}, the intact one from ${rr.step}`,
    );

    const want = readCheckpoint(join(full, 'checkpoint.safetensors'));
    assert.is(want.meta.step, STEPS);
    assert.ok(
      want.tensors.has('ibot_loss.center2') && want.tensors.has('dino_loss.center'),
      'centers missing from the checkpoint',
    );
    // Drop path drew from the student's stream; the teacher's (no drop path) stayed where init left it.
    assert.ok(
      want.meta.generators!.student.offset > want.meta.generators!.teacher.offset,
      'the drop-path stream was not used',
    );
    assertSameState(
      readCheckpoint(join(killed, 'checkpoint.safetensors')),
      want,
      `resumed after a kill at step ${killedAt}`,
    );
    assertSameState(readCheckpoint(latest), want, `resumed from .prev after a kill at step ${killedAt}`);
    for (const dir of [killed, torn]) {
      const left = readdirSync(dir).filter((f) => f.includes('.tmp-'));
      assert.equal(left, [], `temporary checkpoint files left in ${dir}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('with the KoLeo-proto candidate cache, a run stopped between refreshes resumes bit-identical (wasm)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'protodino-koleo-cache-'));
  try {
    const [full, part] = ['full', 'part'].map((d) => join(root, d));
    // Refreshes at steps 1, 4, 7, 10, 13; the stop after step 8 leaves a cache built at step 7 to restore.
    const cache = [
      '--quiet',
      '--koleo_proto',
      '0.1',
      '--koleo_proto_exact_every',
      '3',
      '--koleo_proto_candidates',
      '4',
    ];
    const [a, b] = await Promise.all([
      train(full, [...cache, '--max_steps', '14']),
      train(part, [...cache, '--max_steps', '8']),
    ]);
    assert.is(a.code, 0, `uninterrupted run: exit ${a.code}: ${a.stderr}`);
    assert.is(b.code, 0, `first part: exit ${b.code}: ${b.stderr}`);
    const saved = readCheckpoint(join(part, 'checkpoint.safetensors'));
    assert.is(saved.meta.koleoCacheBuiltAt, 6, 'the checkpoint records the cache built at the 7th step');
    assert.equal(saved.tensors.get('koleo_proto.candidates')?.shape, [64, 4]);
    const r = await train(part, [...cache, '--max_steps', '14', '--resume']);
    assert.is(r.code, 0, `resumed run: exit ${r.code}: ${r.stderr}`);
    const want = readCheckpoint(join(full, 'checkpoint.safetensors'));
    assert.is(want.meta.step, 14);
    assertSameState(readCheckpoint(join(part, 'checkpoint.safetensors')), want, 'resumed with the cache');
    const events = records(join(full, 'log.jsonl')).filter((x) => x.event === 'koleo_cache');
    assert.equal(
      events.map((e) => e.step),
      [4, 7, 10, 13],
      'a koleo_cache event at each refresh after the first',
    );
    for (const e of events) {
      assert.ok((e.agree as number) >= 0 && (e.agree as number) <= 1, `agree ${e.agree}`);
      assert.ok(
        Number.isFinite(e.koleo_exact) && Number.isFinite(e.koleo_cached),
        `KoLeo values ${e.koleo_exact}, ${e.koleo_cached}`,
      );
      assert.is(e.built_at, (e.step as number) - 3);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('with --prototypes em, a run stopped mid-annealing resumes bit-identical, EM state included (wasm)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'protodino-em-resume-'));
  try {
    const [full, part] = ['full', 'part'].map((d) => join(root, d));
    // β rises over 10 steps, so the resumed steps 9–14 anneal on from where the stop left them; the
    // responsibilities target makes the E-step part of the loss too.
    const em = ['--quiet', '--prototypes', 'em', '--em_beta_warmup', '10', '--em_target', 'responsibilities'];
    const [a, b] = await Promise.all([
      train(full, [...em, '--max_steps', '14']),
      train(part, [...em, '--max_steps', '8']),
    ]);
    assert.is(a.code, 0, `uninterrupted run: exit ${a.code}: ${a.stderr}`);
    assert.is(b.code, 0, `first part: exit ${b.code}: ${b.stderr}`);
    const saved = readCheckpoint(join(part, 'checkpoint.safetensors'));
    assert.equal(saved.tensors.get('em.sum')?.shape, [64, 16]);
    const r = await train(part, [...em, '--max_steps', '14', '--resume']);
    assert.is(r.code, 0, `resumed run: exit ${r.code}: ${r.stderr}`);
    const want = readCheckpoint(join(full, 'checkpoint.safetensors'));
    assert.is(want.meta.step, 14);
    assert.ok(want.meta.em!.generator.offset > saved.meta.em!.generator.offset, 'the split stream moved on');
    assertSameState(readCheckpoint(join(part, 'checkpoint.safetensors')), want, 'resumed with --prototypes em');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
