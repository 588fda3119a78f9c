// The divergence guard: a non-finite loss or gradient is caught before the update. --on_nan stop
// throws a DivergenceError naming the step and the tensor and leaves the last good checkpoint in
// place; --on_nan skip applies nothing of the step (weights, optimizer, EMA, centers, BatchNorm
// statistics), logs it and goes on, giving up after MAX_CONSECUTIVE_SKIPS skipped steps in a row.
// Faults are injected through the afterBackward hook, so the step and tensor are known exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { DivergenceError, MAX_CONSECUTIVE_SKIPS, train, type TrainHooks } from '../../src/train/trainer.js';
import { readCheckpoint, type LoadedCheckpoint } from '../../src/train/checkpoint.js';
import { readJsonl } from '../../src/train/log.js';
import type { TrainConfig } from '../../src/train/config.js';
import { add, keep, liveTensors, tensor } from '../../src/tensor/index.js';
import type { Backend } from '../../src/backend/backend.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;

// 6 steps per epoch; BatchNorm in the head, so skipping must also undo its running statistics.
const tiny: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  subset: 24,
  local_crops_number: 2,
  global_crops_size: 16,
  local_crops_size: 8,
  out_dim: 64,
  hidden_dim: 32,
  bottleneck_dim: 16,
  use_bn_in_head: true,
  drop_path_rate: 0.1,
  freeze_last_layer: 0,
  log_every: 1,
  quiet: true,
  seed: 2,
};

/** Puts a NaN (or ±Inf) into one element of `name`'s gradient at the given steps. */
function poison(be: Backend, name: string, steps: number[], value = NaN): TrainHooks {
  return {
    backend: be,
    afterBackward({ step, student }) {
      if (!steps.includes(step)) return;
      const p = new Map(student.namedParameters()).get(name);
      if (!p?.grad) throw new Error(`test: ${name} has no gradient at step ${step}`);
      const bump = new Float32Array(p.size);
      bump[Math.floor(p.size / 2)] = value;
      const g = p.grad;
      p.grad = keep(add(g, tensor(bump, p.shape, be)));
      g.dispose();
    },
  };
}

function finite(ck: LoadedCheckpoint): void {
  for (const [name, t] of ck.tensors) {
    const i = t.data.findIndex((v) => !Number.isFinite(v));
    assert.is(i, -1, `${name}[${i}] = ${t.data[i]}`);
  }
}

function events(dir: string, kind: string): Record<string, unknown>[] {
  return readJsonl(join(dir, 'log.jsonl')).records.filter((r) => r.event === kind);
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-nan-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('on_nan stop: a NaN gradient stops at its step naming the parameter; the last good checkpoint stays', async () => {
  const be = await getBackend(wasmCase);
  await withDir(async (dir) => {
    const name = 'head.mlp.0.weight';
    const live = liveTensors();
    let err: unknown;
    try {
      await train({ ...tiny, epochs: 2, save_every: 2, output_dir: dir }, poison(be, name, [5]));
    } catch (e) {
      err = e;
    }
    assert.instance(err, DivergenceError);
    assert.is(liveTensors(), live, 'tensors leaked when training stopped');
    const d = err as DivergenceError;
    assert.is(d.step, 5);
    assert.is(d.tensor, name);
    assert.match(
      d.message,
      /diverged at step 5 \(epoch 1\): the gradient of head\.mlp\.0\.weight has a non-finite norm \(NaN\)/,
    );
    assert.match(d.message, /checkpoint\.safetensors \(step 4\) is kept/);
    const ck = readCheckpoint(join(dir, 'checkpoint.safetensors'));
    assert.is(ck.meta.step, 4);
    finite(ck);
    assert.equal(
      events(dir, 'diverged').map((r) => [r.step, r.tensor]),
      [[5, name]],
    );
  });
});

test('on_nan stop: a non-finite loss is named as the loss; with no checkpoint yet the message says so', async () => {
  const be = await getBackend(wasmCase);
  await withDir(async (dir) => {
    const hooks: TrainHooks = {
      backend: be,
      // The loss tensor's value is overwritten after backward: only the check reads it.
      afterBackward: ({ step, loss }) => {
        if (step === 3) loss.backend.upload(loss.storage, Float32Array.of(Infinity));
      },
    };
    const err = await train({ ...tiny, output_dir: dir }, hooks).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, DivergenceError);
    assert.is((err as DivergenceError).tensor, 'loss');
    assert.match(
      (err as DivergenceError).message,
      /diverged at step 3 \(epoch 1\): the loss is Infinity; .*no checkpoint had been written yet/,
    );
  });
});

test('on_nan skip: a skipped step applies nothing — the run equals one stopped before it', async () => {
  const be = await getBackend(wasmCase);
  await withDir(async (dir) => {
    const clean = join(dir, 'clean'),
      skipped = join(dir, 'skipped');
    await train({ ...tiny, max_steps: 5, output_dir: clean }, { backend: be });
    const r = await train(
      { ...tiny, on_nan: 'skip', output_dir: skipped },
      poison(be, 'backbone.blocks.1.mlp.fc2.bias', [6], -Infinity),
    );
    assert.is(r.steps, 6);
    assert.equal(
      events(skipped, 'skip').map((x) => [x.step, x.tensor]),
      [[6, 'backbone.blocks.1.mlp.fc2.bias']],
    );
    const a = readCheckpoint(join(clean, 'checkpoint.safetensors'));
    const b = readCheckpoint(join(skipped, 'checkpoint.safetensors'));
    assert.is(b.meta.step, 6);
    assert.is(b.meta.optimizerStep, a.meta.optimizerStep);
    let buffers = 0;
    for (const [name, t] of a.tensors) {
      assert.equal(Array.from(b.tensors.get(name)!.data), Array.from(t.data), `${name} changed in the skipped step`);
      if (name.includes('running_')) buffers++;
    }
    assert.ok(buffers > 0, 'no BatchNorm statistics compared');
  });
});

test('on_nan skip: training continues past skipped steps and gives up after too many in a row', async () => {
  const be = await getBackend(wasmCase);
  await withDir(async (dir) => {
    const a = join(dir, 'a'),
      b = join(dir, 'b');
    const live = liveTensors();
    const r = await train(
      { ...tiny, epochs: 2, on_nan: 'skip', output_dir: a },
      poison(be, 'head.last_layer.weight_v', [2, 4, 5]),
    );
    assert.is(r.steps, 12);
    assert.is(liveTensors(), live, 'tensors leaked by skipped steps');
    assert.equal(
      events(a, 'skip').map((x) => x.step),
      [2, 4, 5],
    );
    assert.not.ok(
      r.history.some((h) => [2, 4, 5].includes(h.step)),
      'a skipped step was logged as a step',
    );
    const ck = readCheckpoint(join(a, 'checkpoint.safetensors'));
    assert.is(ck.meta.step, 12);
    assert.is(ck.meta.optimizerStep, 9);
    finite(ck);

    const every = Array.from({ length: 30 }, (_, i) => i + 2);
    const err = await train(
      { ...tiny, epochs: 3, on_nan: 'skip', save_every: 1, output_dir: b },
      poison(be, 'backbone.pos_embed', every),
    ).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, DivergenceError);
    const last = 1 + MAX_CONSECUTIVE_SKIPS;
    assert.is((err as DivergenceError).step, last);
    assert.match(
      (err as DivergenceError).message,
      new RegExp(
        `${MAX_CONSECUTIVE_SKIPS} steps in a row \\(2–${last}\\) were skipped, the last because the gradient of backbone\\.pos_embed`,
      ),
    );
    // Skipped steps change nothing, so saving after them keeps writing the step-1 state.
    const kept = readCheckpoint(join(b, 'checkpoint.safetensors'));
    assert.is(kept.meta.optimizerStep, 1);
    finite(kept);
  });
});

test('--save_every is validated like the other flags', async () => {
  const { parseTrainArgs } = await import('../../src/train/config.js');
  assert.throws(() => parseTrainArgs(['--save_every', '-3']), /--save_every: must be a non-negative integer, got -3/);
  assert.throws(() => parseTrainArgs(['--save_every', '2.5']), /--save_every: expects an integer, got '2.5'/);
  assert.is(parseTrainArgs(['--save_every', '7']).save_every, 7);
  assert.throws(() => parseTrainArgs(['--on_nan', 'ignore']), /--on_nan: must be one of stop, skip/);
});

test.run();
