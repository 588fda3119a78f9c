// The step records' cost fields: step_s and img_per_s count training steps only, not the checkpoint
// and the epoch diagnostics between them, and peak_bytes is the backend's high-water mark of live
// bytes over the steps, not over what the epoch diagnostics allocate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { train } from '../../src/train/trainer.js';
import { readJsonl } from '../../src/train/log.js';
import { tensor } from '../../src/tensor/index.js';
import { tinyTrainConfig } from '../helpers/tiny-config.js';

const PAUSE_S = 2,
  BIG = 8 << 20; // floats: 32 MiB, far above the tiny run's own tensors

test('an epoch hook that sleeps and allocates leaves step time and peak memory alone', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-step-cost-'));
  try {
    let seen = 0;
    await train(
      { ...tinyTrainConfig({ arch: 'vit_cpu', subset: 16, epochs: 2, log_every: 2, seed: 3 }), output_dir: dir },
      {
        backend: be,
        async onEpoch() {
          const t = tensor(new Float32Array(BIG), [BIG], be);
          seen = be.peakLiveBytes();
          t.dispose();
          await sleep(PAUSE_S * 1000);
        },
      },
    );
    assert.ok(seen >= 4 * BIG, 'the hook allocation reached the backend');
    const steps = readJsonl(join(dir, 'log.jsonl')).records.filter((r) => r.event === 'step');
    assert.equal(
      steps.map((r) => r.step),
      [2, 4, 6, 8],
    );
    for (const r of steps) {
      const peak = r.peak_bytes as number;
      assert.ok(peak > 0 && peak < 4 * BIG, `step ${r.step}: peak ${peak} bytes`);
      // Four images per step: throughput and step time are read over the same seconds.
      assert.ok(Math.abs((r.img_per_s as number) * (r.step_s as number) - 4) < 1e-9, `step ${r.step}`);
    }
    // Steps 5 and 6 come after the first epoch's checkpoint and hook: the record's wall-clock gap holds
    // the pause, its step time does not.
    const gap = (steps[2].time as number) - (steps[1].time as number);
    assert.ok(gap >= PAUSE_S, `gap ${gap} s`);
    assert.ok(2 * (steps[2].step_s as number) <= gap - PAUSE_S + 0.05, `step_s ${steps[2].step_s}, gap ${gap} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
