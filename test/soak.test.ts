// Memory stays flat over many DINO steps on the real training step: a tiny ViT student and teacher
// (multi-crop, centering, KoLeo-proto, clipping, the last-layer freeze, AdamW, teacher EMA; every
// third step two accumulated micro-batches) trained with dinoAccumStep on fresh crops each step, on
// wasm and on webgpu. After a warm-up the live tensor count and the backend's buffer statistics
// (live and pooled bytes) must not move at all, and the process RSS, sampled after a full GC, may
// grow by at most a few MiB over the second half. bench/soak.ts is the 2000-step version.
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ALL_BACKENDS, conformance } from './helpers/backends.js';
import { rng } from './helpers/check.js';
import { liveTensors } from '../src/tensor/tensor.js';
import { AdamW, decayGroups } from '../src/tensor/ops/optim.js';
import { zeros } from '../src/tensor/create.js';
import { keep } from '../src/tensor/tensor.js';
import { DEFAULTS, validate, type TrainConfig } from '../src/train/config.js';
import { buildNetwork } from '../src/train/network.js';
import { dinoAccumStep, type DinoState, type MicroBatch } from '../src/train/step.js';
import type { Backend } from '../src/backend/backend.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const cfg: TrainConfig = validate({
  ...DEFAULTS,
  arch: 'vit_cpu',
  global_crops_size: 16,
  local_crops_size: 8,
  batch_size: 2,
  local_crops_number: 2,
  out_dim: 64,
  hidden_dim: 32,
  bottleneck_dim: 16,
  koleo_proto: 0.1,
  freeze_last_layer: 1,
  output_dir: 'unused',
  quiet: true,
});
/** Steps, warm-up and sampling interval per backend (llvmpipe runs this step about 15× slower). */
const PLAN: Record<string, { steps: number; warmup: number; every: number }> = {
  'wasm-relaxed-2t': { steps: 300, warmup: 20, every: 20 },
  webgpu: { steps: 20, warmup: 8, every: 4 },
};
const RSS_SLACK = 8 * 2 ** 20;
const MiB = (b: number) => (b / 2 ** 20).toFixed(1);

interface Sample {
  step: number;
  rss: number;
  liveTensors: number;
  liveBuffers: number;
  liveBytes: number;
  pooledBytes: number;
}

function sample(step: number, be: Backend): Sample {
  gc();
  return { step, rss: process.memoryUsage().rss, liveTensors: liveTensors(), ...be.memory() };
}

/** Fresh multi-crop data per step, as the loader gives: 2B global and L·B local crops in [0, 1). */
function microBatch(seed: number): MicroBatch {
  const r = rng(seed);
  const G = cfg.global_crops_size,
    L = cfg.local_crops_size,
    B = cfg.batch_size;
  const globals = new Float32Array(2 * B * G * G).map(() => r());
  const locals = new Float32Array(cfg.local_crops_number * B * L * L).map(() => r());
  return { globals, locals };
}

conformance(
  'soak',
  (test, be) => {
    test('DINO steps keep tensors and buffers constant and RSS flat after warm-up', async () => {
      const backend = be();
      const plan = PLAN[backend.kind === 'webgpu' ? 'webgpu' : 'wasm-relaxed-2t'];
      const t0 = performance.now();
      const before = sample(0, backend);
      const student = buildNetwork(cfg, backend, 1, cfg.seed);
      const teacher = buildNetwork(cfg, backend, 1, cfg.seed, 0);
      for (const p of teacher.parameters()) p.requiresGrad = false;
      const [decay, noDecay] = decayGroups(student.namedParameters().filter(([, p]) => p.requiresGrad));
      const optimizer = new AdamW([
        { params: decay, lr: 0, weightDecay: 0 },
        { params: noDecay, lr: 0, weightDecay: 0 },
      ]);
      const center = keep(zeros([1, cfg.out_dim], backend));
      const state: DinoState = {
        cfg,
        student,
        teacher,
        optimizer,
        center,
        channels: 1,
        localSize: cfg.local_crops_size,
      };

      const samples: Sample[] = [];
      const losses: number[] = [];
      for (let step = 1; step <= plan.steps; step++) {
        const micro = step % 3 === 0 ? [microBatch(2 * step), microBatch(2 * step + 1)] : [microBatch(2 * step)];
        // The last layer is frozen (epoch 0 < freeze_last_layer) for the first quarter of the warm-up:
        // its AdamW moments are created when it first trains, which must happen before the first
        // sample, and so must two steps of each kind (with and without accumulation): the pool reaches
        // its high-water mark per size only once every pattern of allocations has run.
        const epoch = step <= plan.warmup / 4 ? 0 : 1;
        const loss = dinoAccumStep(state, micro, {
          epoch,
          lr: 1e-3,
          weightDecay: 0.04,
          momentum: 0.996,
          teacherTemp: 0.04,
        });
        // Reading every few steps bounds WebGPU's queue, as the trainer's log_every does.
        if (step % 10 === 0) losses.push(await loss.item());
        loss.dispose();
        if (step >= plan.warmup && (step - plan.warmup) % plan.every === 0) {
          await backend.sync();
          samples.push(sample(step, backend));
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        `\n  soak [${backend.description}]: ${plan.steps} steps in ${seconds.toFixed(1)} s; step, RSS MiB, live tensors, live/pooled bytes:`,
      );
      console.log(
        samples
          .map((s) => `  ${s.step}: ${MiB(s.rss)} MiB, ${s.liveTensors} tensors, ${s.liveBytes}/${s.pooledBytes} B`)
          .join('\n'),
      );

      assert.ok(losses.every(Number.isFinite), `losses: ${losses.join(', ')}`);
      const first = samples[0];
      for (const s of samples) {
        assert.is(s.liveTensors, first.liveTensors, `live tensors at step ${s.step} vs step ${first.step}`);
        assert.equal(
          { liveBuffers: s.liveBuffers, liveBytes: s.liveBytes, pooledBytes: s.pooledBytes },
          { liveBuffers: first.liveBuffers, liveBytes: first.liveBytes, pooledBytes: first.pooledBytes },
          `backend buffers at step ${s.step} vs step ${first.step}`,
        );
      }
      const mid = samples[Math.floor(samples.length / 2)];
      const peakLate = Math.max(...samples.slice(Math.floor(samples.length / 2)).map((s) => s.rss));
      assert.ok(
        peakLate - mid.rss <= RSS_SLACK,
        `RSS grew ${MiB(peakLate - mid.rss)} MiB over the second half (from ${MiB(mid.rss)} MiB at step ${mid.step}); at most ${MiB(RSS_SLACK)} allowed`,
      );

      student.dispose();
      teacher.dispose();
      optimizer.dispose();
      center.dispose();
      const after = sample(plan.steps, backend);
      assert.is(after.liveTensors, before.liveTensors, 'every tensor freed at the end');
      assert.is(after.liveBuffers, before.liveBuffers, 'every buffer freed at the end');
    });
  },
  ALL_BACKENDS.filter((c) => c.name in PLAN),
);
