// Checkpoints are backend-neutral: a run started on webgpu resumes on wasm and the other way round,
// ending within float tolerance of an uninterrupted run (the backends round differently; the data
// cursor and random streams are the same on both). A webgpu run resumed on webgpu ends within 1e-5.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { readResumable, train } from '../../src/train/trainer.js';
import { readCheckpoint, type LoadedCheckpoint } from '../../src/train/checkpoint.js';
import type { TrainConfig } from '../../src/train/config.js';
import type { Backend } from '../../src/backend/backend.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;
const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;

// 6 steps, a checkpoint after 3; drop path on, so the random stream crosses over too.
const STEPS = 6,
  HALF = 3;
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
  drop_path_rate: 0.1,
  freeze_last_layer: 0,
  koleo_proto: 0.1,
  log_every: 1,
  quiet: true,
  seed: 4,
};

// AdamW's first steps move each weight by about ±lr whatever the size of its gradient, so a tiny
// gradient whose sign two backends round differently moves a weight 2·lr the other way: that is the
// absolute slack, on top of a bound relative to each tensor's largest value.
const LR = (0.0005 * 4) / 256; // DEFAULTS.lr scaled by batch_size / 256, as the trainer does
const ATOL = 2 * LR;

/** Every weight, teacher weight and center within atol + rtol·(the tensor's largest |value|) of the reference. */
function assertNear(got: LoadedCheckpoint, want: LoadedCheckpoint, rtol: number, atol: number, what: string): number {
  assert.is(got.meta.step, want.meta.step, `${what}: steps`);
  assert.equal(got.meta.loader, want.meta.loader, `${what}: data cursor`);
  assert.equal(got.meta.generators, want.meta.generators, `${what}: random streams`);
  let worst = 0;
  let compared = 0;
  for (const [name, t] of want.tensors) {
    if (name.startsWith('optimizer.')) continue;
    const u = got.tensors.get(name);
    assert.ok(u, `${what}: ${name} missing`);
    let scale = 0,
      diff = 0;
    for (let i = 0; i < t.data.length; i++) {
      scale = Math.max(scale, Math.abs(t.data[i]));
      diff = Math.max(diff, Math.abs(u!.data[i] - t.data[i]));
    }
    assert.ok(
      diff <= atol + rtol * scale,
      `${what}: ${name} differs by ${diff.toExponential(2)}, its largest value is ${scale.toExponential(2)} (allowed ${atol} + ${rtol}·that)`,
    );
    worst = Math.max(worst, diff);
    compared++;
  }
  assert.ok(compared > 40, `${what}: compared ${compared} tensors`);
  return worst;
}

async function run(be: Backend, dir: string, cfg: Partial<TrainConfig>): Promise<void> {
  await train({ ...tiny, ...cfg, output_dir: dir }, { backend: be });
}

test('a run resumes across backends (webgpu → wasm, wasm → webgpu) and on webgpu itself', async () => {
  const wasm = await getBackend(wasmCase),
    gpu = await getBackend(gpuCase);
  const root = mkdtempSync(join(tmpdir(), 'protodino-xresume-'));
  try {
    const d = (name: string) => join(root, name);
    const final = (name: string) => readCheckpoint(join(d(name), 'checkpoint.safetensors'));
    await run(wasm, d('wasm'), {});
    await run(gpu, d('gpu'), {});
    await run(gpu, d('gpu-half'), { max_steps: HALF });
    await run(wasm, d('wasm-half'), { max_steps: HALF });
    assert.is(readResumable(join(d('gpu-half'), 'checkpoint.safetensors'), true)!.meta.step, HALF);
    cpSync(d('gpu-half'), d('gpu-gpu'), { recursive: true });
    cpSync(d('gpu-half'), d('gpu-wasm'), { recursive: true });
    cpSync(d('wasm-half'), d('wasm-gpu'), { recursive: true });
    await run(wasm, d('gpu-wasm'), { resume: true });
    await run(gpu, d('wasm-gpu'), { resume: true });
    await run(gpu, d('gpu-gpu'), { resume: true });

    const wasmRef = final('wasm'),
      gpuRef = final('gpu');
    assert.is(wasmRef.meta.step, STEPS);
    const worst = {
      'webgpu vs wasm, uninterrupted': assertNear(gpuRef, wasmRef, 1e-4, ATOL, 'uninterrupted webgpu vs wasm'),
      'webgpu → wasm': assertNear(final('gpu-wasm'), wasmRef, 1e-4, ATOL, 'webgpu → wasm resume'),
      'wasm → webgpu': assertNear(final('wasm-gpu'), gpuRef, 1e-4, ATOL, 'wasm → webgpu resume'),
      // Same backend on both sides: no sign-flip slack.
      'webgpu → webgpu': assertNear(final('gpu-gpu'), gpuRef, 1e-5, 0, 'webgpu → webgpu resume'),
    };
    console.log(
      `\n  largest absolute difference: ${Object.entries(worst)
        .map(([k, v]) => `${k} ${v.toExponential(1)}`)
        .join('; ')}`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
