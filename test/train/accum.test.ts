// Gradient accumulation: two micro-batches of B images in one optimizer step give the same loss,
// update, teacher EMA and center as one step on the 2B images (centering, no drop path), on every
// backend; and the trainer runs --accum_steps with the lr scaled by the effective batch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/backend/backend.js';
import { conformance, ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import { keep, liveTensors, zeros } from '../../src/tensor/index.js';
import { AdamW, decayGroups } from '../../src/tensor/ops/optim.js';
import { DEFAULTS, parseTrainArgs, validate, type TrainConfig } from '../../src/train/config.js';
import { buildNetwork } from '../../src/train/network.js';
import { dinoAccumStep, dinoStep, type DinoState, type StepSchedule } from '../../src/train/step.js';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';

const cfg: TrainConfig = validate({
  ...DEFAULTS,
  arch: 'vit_cpu',
  patch_size: 4,
  global_crops_size: 8,
  local_crops_size: 4,
  local_crops_number: 2,
  out_dim: 32,
  hidden_dim: 16,
  bottleneck_dim: 8,
  batch_size: 2,
  drop_path_rate: 0,
  freeze_last_layer: 0,
});
// A large AdamW eps makes the update ≈ lr·m (SGD-like): linear in the gradient, so a wrong
// accumulation scale shows, and no near-zero gradient flips an update's sign.
const sch: StepSchedule = { epoch: 0, lr: 0.5, weightDecay: 0.04, momentum: 0.9, teacherTemp: 0.04 };
const B = 2,
  C = 1,
  G = 8,
  S = 4,
  L = 2;

function makeState(be: Backend, c: TrainConfig): DinoState {
  const student = buildNetwork(c, be, C, 3);
  const teacher = buildNetwork(c, be, C, 3, 0);
  for (const p of teacher.parameters()) p.requiresGrad = false;
  if (c.vmf) student.head.last_layer.vmf = teacher.head.last_layer.vmf = true;
  const [d, nd] = decayGroups(student.namedParameters().filter(([, p]) => p.requiresGrad));
  const optimizer = new AdamW([{ params: d }, { params: nd }], { eps: 1 });
  // A non-zero center, so that centering matters in the comparison.
  const center = keep(zeros([1, c.out_dim], be));
  be.upload(
    center.storage,
    Float32Array.from({ length: c.out_dim }, (_, i) => 0.05 * Math.sin(i)),
  );
  return { cfg: c, student, teacher, optimizer, center, channels: C, localSize: S };
}

function disposeState(s: DinoState): void {
  s.student.dispose();
  s.teacher.dispose();
  s.optimizer.dispose();
  s.center?.dispose();
}

/** crops[v][i]: crop v of image i, as one [C, size, size] block each; packed crop-major. */
function pack(crops: Float32Array[][], images: number[], size: number): Float32Array {
  const n = C * size * size;
  const out = new Float32Array(crops.length * images.length * n);
  let o = 0;
  for (const v of crops) for (const i of images) out.set(v[i], o++ * n);
  return out;
}

function images(seed: number, count: number, size: number): Float32Array[] {
  return Array.from({ length: count }, (_, i) =>
    Float32Array.from({ length: C * size * size }, (_, j) => Math.sin(seed + 1.7 * i + 0.31 * j) * 0.8),
  );
}

async function stateValues(s: DinoState): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, t] of s.student.stateDict()) out.set(`student.${n}`, (await t.data()) as Float32Array);
  for (const [n, t] of s.teacher.stateDict()) out.set(`teacher.${n}`, (await t.data()) as Float32Array);
  out.set('center', (await s.center!.data()) as Float32Array);
  return out;
}

conformance('train: gradient accumulation', (t, be) => {
  for (const vmf of [false, true]) {
    t(`2 micro-batches of ${B} = one step on ${2 * B} images (2 steps${vmf ? ', DINO-vMF' : ''})`, async () => {
      const before = liveTensors();
      const c = vmf ? validate({ ...cfg, vmf: true, norm_last_layer: false }) : cfg;
      const acc = makeState(be(), c),
        full = makeState(be(), c);
      for (let step = 0; step < 2; step++) {
        const globals = [images(10 * step, 2 * B, G), images(10 * step + 5, 2 * B, G)];
        const locals = [images(10 * step + 2, 2 * B, S), images(10 * step + 7, 2 * B, S)];
        const first = [0, 1],
          second = [2, 3],
          all = [0, 1, 2, 3];
        const la = dinoAccumStep(
          acc,
          [
            { globals: pack(globals, first, G), locals: pack(locals, first, S) },
            { globals: pack(globals, second, G), locals: pack(locals, second, S) },
          ],
          sch,
        );
        const lf = dinoStep(full, pack(globals, all, G), pack(locals, all, S), sch);
        assertClose([await la.item()], [await lf.item()], { rtol: 1e-5, atol: 1e-6 }, `loss of step ${step}`);
        la.dispose();
        lf.dispose();
      }
      const a = await stateValues(acc),
        f = await stateValues(full);
      assert.is(a.size, f.size);
      for (const [name, v] of f) {
        assertClose(a.get(name)!, v, { rtol: 1e-4, atol: 1e-5 }, name);
      }
      assertClose(a.get('center')!, f.get('center')!, { rtol: 1e-5, atol: 1e-7 }, 'center');
      disposeState(acc);
      disposeState(full);
      assert.is(liveTensors(), before, 'tensors left alive');
    });
  }
});

test('--accum_steps: parsed, validated, and trained with the lr of the effective batch (wasm)', async () => {
  assert.is(parseTrainArgs(['--accum_steps', '4']).accum_steps, 4);
  assert.is(DEFAULTS.accum_steps, 1);
  assert.throws(() => parseTrainArgs(['--accum_steps', '0']), /--accum_steps: must be a positive integer/);
  assert.throws(
    () => parseTrainArgs(['--accum_steps', '3', '--batch_size', '8', '--subset', '16']),
    /--accum_steps: \(3\) × --batch_size \(8\) exceeds --subset/,
  );
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-accum-'));
  const r = await train(
    {
      arch: 'vit_cpu',
      batch_size: 4,
      accum_steps: 2,
      subset: 16,
      local_crops_number: 2,
      out_dim: 64,
      hidden_dim: 32,
      bottleneck_dim: 16,
      epochs: 1,
      log_every: 1,
      quiet: true,
      freeze_last_layer: 0,
      warmup_epochs: 0,
      output_dir: dir,
    },
    { backend: be },
  );
  // 16 images in batches of 4, 2 per step: 2 optimizer steps in the epoch.
  assert.is(r.steps, 2);
  assert.is(r.history.length, 2);
  assertClose([r.history[0].lr], [(DEFAULTS.lr * 4 * 2) / 256], { rtol: 1e-12, atol: 0 }, 'lr of step 0');
  for (const h of r.history) assert.ok(Number.isFinite(h.loss), `loss ${h.loss}`);
  const ck = readCheckpoint(r.checkpoint);
  assert.is(ck.meta.step, 2);
  assert.is(ck.meta.optimizerStep, 2);
  assert.equal(ck.meta.loader, { ...(ck.meta.loader as object), epoch: 1, batch: 0 });
  rmSync(dir, { recursive: true, force: true });
});

test.run();
