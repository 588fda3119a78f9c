// The parameter-norm alarm: a parameter 100× over its starting norm raises an alarm (log.jsonl and
// the result, printed like the collapse alarms) once; --on_nan stop ends the run there, keeping the
// last checkpoint; the baseline is saved in checkpoints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { DivergenceError, train, type TrainHooks } from '../../src/train/trainer.js';
import { NormWatch, parameterNorms, parseInitialNorms } from '../../src/train/norm-watch.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readJsonl } from '../../src/train/log.js';
import { DEFAULTS, validate, type TrainConfig } from '../../src/train/config.js';
import { buildNetwork } from '../../src/train/network.js';
import type { Backend } from '../../src/backend/backend.js';
import { tinyTrainConfig } from '../helpers/tiny-config.js';

const tiny = tinyTrainConfig({ arch: 'vit_cpu', subset: 16, epochs: 2, log_every: 1, seed: 4 });

/** Multiplies a parameter by `factor` in place at step `at`, before that step's update. */
function inflate(be: Backend, name: string, at: number, factor: number): TrainHooks {
  return {
    backend: be,
    afterBackward({ step, student }) {
      if (step !== at) return;
      const p = new Map(student.namedParameters()).get(name)!;
      be.unary('affine', p.storage, p.storage, p.size, factor, 0);
    },
  };
}

const alarms = (dir: string) =>
  readJsonl(join(dir, 'log.jsonl')).records.filter((r) => r.event === 'alarm' && r.kind === 'norm_growth');

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-norm-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('NormWatch: 100× over a positive start, once per parameter, largest first; zero starts unwatched', () => {
  const w = new NormWatch({ a: 1, b: 0.5, z: 0 });
  assert.equal(w.check({ a: 99, b: 10, z: 5 }, 1, 1), []);
  const r = w.check({ a: 150, b: 60, z: 1e9 }, 2, 1);
  assert.equal(
    r.map((x) => [x.tensor, x.ratio]),
    [
      ['a', 150],
      ['b', 120],
    ],
  );
  assert.match(r[0].message, /the norm of a grew 150× over its initial value \(1 → 150\) by step 2/);
  assert.equal(w.check({ a: 1e4, b: 1e4 }, 3, 1), [], 'raised once');
  assert.equal(w.check({ c: 1e9 }, 3, 1), [], 'a parameter without a baseline is not judged');
  assert.equal(parseInitialNorms({ a: 1, b: 0 }), { a: 1, b: 0 });
  assert.is(parseInitialNorms({ a: 'x' }), null);
  assert.is(parseInitialNorms(undefined), null);
});

test('--on_nan stop: a parameter blown up 1000× stops the run naming it; the last checkpoint stays', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  await withDir(async (dir) => {
    const name = 'head.mlp.2.weight';
    let err: unknown;
    try {
      await train({ ...tiny, save_every: 2, output_dir: dir }, inflate(be, name, 3, 1000));
    } catch (e) {
      err = e;
    }
    assert.instance(err, DivergenceError);
    const d = err as DivergenceError;
    assert.is(d.step, 3);
    assert.is(d.tensor, name);
    assert.match(d.message, /diverged at step 3 \(epoch 1\): the norm of head\.mlp\.2\.weight grew \d+(\.\d+)?× over/);
    assert.match(d.message, /checkpoint\.safetensors \(step 2\) is kept/);
    assert.is(readCheckpoint(join(dir, 'checkpoint.safetensors')).meta.step, 2);
    assert.equal(
      alarms(dir).map((r) => [r.step, r.tensor]),
      [[3, name]],
    );
  });
});

test('--on_nan skip: the alarm is raised once and training goes on; the baseline is in the checkpoint', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  await withDir(async (dir) => {
    const name = 'head.mlp.2.weight';
    const r = await train({ ...tiny, on_nan: 'skip', output_dir: dir }, inflate(be, name, 3, 1000));
    assert.is(r.steps, 8);
    assert.equal(
      r.alarms.map((a) => [a.kind, a.step, a.tensor]),
      [['norm_growth', 3, name]],
    );
    assert.is(alarms(dir).length, 1);
    const ck = readCheckpoint(r.checkpoint);
    const cfg = validate({ ...DEFAULTS, ...tiny });
    const fresh = buildNetwork(cfg, be, 1, cfg.seed);
    try {
      const want = await parameterNorms(fresh.namedParameters().filter(([, p]) => p.requiresGrad));
      assert.equal(ck.meta.initialNorms, want, 'the norms of the weights training started from');
    } finally {
      fresh.dispose();
    }
  });
});

test.run();
