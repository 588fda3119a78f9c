// A training step on WebGPU is one command buffer and one CPU wait: the divergence guard's
// read-back (health, loss and DINO term together) submits the step's forward and backward with the
// previous step's update, and nothing else in the step submits or waits. The counts are in the
// result, and --profile prints them (the profiler's own submits and waits left out). On wasm both
// stay 0. Losses are those of the profiled run too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { tinyTrainConfig } from '../helpers/tiny-config.js';
import { train } from '../../src/train/trainer.js';
import { profileTable } from '../../src/backend/profile.js';

const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;
const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;

// 4 steps with drop path and KoLeo-proto: every kind of upload (crops, random state) and kernel of a DINO step.
const config = tinyTrainConfig({
  arch: 'vit_cpu',
  subset: 16,
  epochs: 1,
  log_every: 1,
  koleo_proto: 0.1,
  drop_path_rate: 0.1,
  seed: 7,
});

test('webgpu: at most one submit and one CPU wait per step; --profile prints them', async () => {
  const be = await getBackend(gpuCase);
  const dirs = [mkdtempSync(join(tmpdir(), 'protodino-traffic-')), mkdtempSync(join(tmpdir(), 'protodino-traffic-'))];
  try {
    const plain = await train({ ...config, output_dir: dirs[0] }, { backend: be });
    assert.is(plain.traffic.steps, 4);
    assert.ok(plain.traffic.maxSubmits <= 1, `${plain.traffic.maxSubmits} submits in one step`);
    assert.is(plain.traffic.maxWaits, 1, `${plain.traffic.maxWaits} CPU waits in one step`);
    assert.is(plain.traffic.waits, 4);

    const profiled = await train({ ...config, output_dir: dirs[1], profile: true }, { backend: be });
    assert.equal(
      profiled.history.map((h) => h.loss),
      plain.history.map((h) => h.loss),
    );
    assert.equal(profiled.traffic, plain.traffic);
    const r = profiled.profile!;
    assert.ok(r.traffic.maxSubmits <= 1 && r.traffic.maxWaits === 1, JSON.stringify(r.traffic));
    assert.ok(r.traffic.profilerWaits >= 1, 'the profiler waits for the device at the end of each step');
    assert.match(profileTable(r), /device traffic per step: 1 submit\(s\) and 1 CPU wait\(s\)/);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('wasm: no submits, no waits', async () => {
  const be = await getBackend(wasmCase);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-traffic-'));
  try {
    const r = await train({ ...config, output_dir: dir }, { backend: be });
    assert.equal(r.traffic, { steps: 4, submits: 0, waits: 0, maxSubmits: 0, maxWaits: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
