// End-to-end DINO training: one step agrees across backends, the CLI trains an epoch on
// Fashion-MNIST on both backends with a falling loss and a checkpoint that loads back, and a resumed
// run ends bit-identical to an uninterrupted one on wasm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import { readResumable, train } from '../../src/train/trainer.js';
import { readCheckpoint, restoreCheckpoint } from '../../src/train/checkpoint.js';
import { DEFAULTS, parseTrainArgs, type TrainConfig } from '../../src/train/config.js';
import { buildNetwork } from '../../src/train/network.js';
import { AdamW, decayGroups } from '../../src/tensor/ops/optim.js';
import { liveTensors } from '../../src/tensor/tensor.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;
const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'protodino-train-'));
}

const tinyVit: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  subset: 16,
  local_crops_number: 2,
  out_dim: 64,
  hidden_dim: 32,
  bottleneck_dim: 16,
  max_steps: 1,
  log_every: 1,
  quiet: true,
  koleo_proto: 0.1,
  freeze_last_layer: 0,
};

test('one DINO step gives the same loss and update on wasm and webgpu', async () => {
  const results = [];
  for (const c of [wasmCase, gpuCase]) {
    const be = await getBackend(c);
    const dir = tmp();
    const r = await train({ ...tinyVit, output_dir: dir }, { backend: be });
    const ck = readCheckpoint(r.checkpoint);
    results.push({ loss: r.history[0].loss, ck });
    rmSync(dir, { recursive: true, force: true });
  }
  const [w, g] = results;
  assertClose([g.loss], [w.loss], { rtol: 1e-4 }, 'step-1 loss');
  let compared = 0;
  for (const [name, t] of w.ck.tensors) {
    if (!name.startsWith('student.') && !name.startsWith('teacher.')) continue;
    // AdamW's first step moves each weight by about ±lr, so 2·lr bounds any sign flip of a tiny gradient.
    assertClose(g.ck.tensors.get(name)!.data, t.data, { rtol: 1e-4, atol: 2e-5 }, name);
    compared++;
  }
  assert.ok(compared > 20, `compared ${compared} tensors`);
});

const quickEpoch = [
  '--arch',
  'pca',
  '--prototypes_only',
  '--subset',
  '2048',
  '--batch_size',
  '128',
  '--epochs',
  '2',
  '--lr',
  '0.05',
  '--momentum_teacher',
  '0.99',
  '--freeze_last_layer',
  '0',
  '--out_dim',
  '256',
  '--local_crops_number',
  '2',
  '--log_every',
  '4',
  '--quiet',
];

for (const backend of ['wasm', 'webgpu']) {
  test(`the CLI trains on Fashion-MNIST on ${backend}: loss falls, checkpoint loads back`, async () => {
    const dir = tmp();
    const run = spawnSync(process.execPath, [cli, 'train', ...quickEpoch, '--backend', backend, '--output_dir', dir], {
      encoding: 'utf8',
      timeout: 240_000,
      env: process.env,
    });
    assert.is(run.status, 0, `exit ${run.status}: ${run.stderr}`);
    assert.match(run.stdout, /trained 32 steps/);
    const ck = readCheckpoint(join(dir, 'checkpoint.safetensors'));
    const cfg = parseTrainArgs(quickEpoch);
    assert.is(ck.meta.step, 32);
    assert.is(ck.meta.epoch, 2);
    const log = (await import('node:fs'))
      .readFileSync(join(dir, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const losses = log.filter((r) => r.event === 'step').map((r) => r.loss as number);
    assert.ok(losses.length >= 8, `logged ${losses.length} losses`);
    assert.ok(losses.at(-1)! < losses[0] - 0.05, `loss did not fall: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    // Load it back into fresh networks and an optimiser on wasm.
    const be = await getBackend(wasmCase);
    const before = liveTensors();
    const student = buildNetwork(cfg, be, 1, 0);
    const teacher = buildNetwork(cfg, be, 1, 0);
    const [d, nd] = decayGroups(student.namedParameters().filter(([, p]) => p.requiresGrad));
    const opt = new AdamW([{ params: d }, { params: nd }]);
    restoreCheckpoint(ck, { student, teacher, optimizer: opt, center: null });
    const v = await student.head.last_layer.weight_v.data();
    assertClose(v, ck.tensors.get('student.head.last_layer.weight_v')!.data, { rtol: 0, atol: 0 }, 'restored weight_v');
    assert.is(opt.state().step, 32);
    student.dispose();
    teacher.dispose();
    opt.dispose();
    assert.is(liveTensors(), before, 'restoring leaked tensors');
    rmSync(dir, { recursive: true, force: true });
  });
}

test('a resumed run ends bit-identical to an uninterrupted one (wasm)', async () => {
  const be = await getBackend(wasmCase);
  const base: Partial<TrainConfig> = {
    ...tinyVit,
    max_steps: 0,
    epochs: 2,
    subset: 12,
    koleo_proto: 0.1,
    drop_path_rate: 0,
  };
  const a = tmp(),
    b = tmp();
  await train({ ...base, output_dir: a }, { backend: be });
  // The same run stopped after epoch 1, then resumed.
  await train({ ...base, output_dir: b, max_steps: 3 }, { backend: be });
  const mid = readCheckpoint(join(b, 'checkpoint.safetensors'));
  assert.is(mid.meta.step, 3);
  await train({ ...base, output_dir: b, resume: true }, { backend: be });
  const x = readCheckpoint(join(a, 'checkpoint.safetensors'));
  const y = readCheckpoint(join(b, 'checkpoint.safetensors'));
  assert.is(y.meta.step, x.meta.step);
  for (const [name, t] of x.tensors) {
    const u = y.tensors.get(name);
    assert.ok(u, `${name} missing after resume`);
    assert.equal(Array.from(u!.data), Array.from(t.data), `${name} differs after resume`);
  }
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

test('a corrupt latest checkpoint falls back to .prev and still ends bit-identical (wasm)', async () => {
  const be = await getBackend(wasmCase);
  const base: Partial<TrainConfig> = { ...tinyVit, max_steps: 0, epochs: 3, subset: 8, koleo_proto: 0.1 };
  const a = tmp(),
    b = tmp();
  await train({ ...base, output_dir: a }, { backend: be });
  await train({ ...base, output_dir: b, max_steps: 4 }, { backend: be }); // epochs 1 and 2 saved
  const latest = join(b, 'checkpoint.safetensors');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const bytes = readFileSync(latest);
  bytes[bytes.length - 5] ^= 0xff; // a flipped payload byte: the checksum must catch it
  writeFileSync(latest, bytes);
  assert.throws(() => readCheckpoint(latest), /checksum|sha/i);
  assert.is(readResumable(latest, true)!.meta.step, 2);
  await train({ ...base, output_dir: b, resume: true }, { backend: be });
  const x = readCheckpoint(join(a, 'checkpoint.safetensors'));
  const y = readCheckpoint(latest);
  assert.is(y.meta.step, x.meta.step);
  for (const [name, t] of x.tensors)
    assert.equal(Array.from(y.tensors.get(name)!.data), Array.from(t.data), `${name} differs`);
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

test('bad flags are refused up front, naming the flag', () => {
  assert.throws(() => parseTrainArgs(['--batch_size', 'x']), /--batch_size: expects an integer, got 'x'/);
  assert.throws(
    () => parseTrainArgs(['--centering', 'magic']),
    /--centering: must be one of centering, sinkhorn, memax/,
  );
  assert.throws(
    () => parseTrainArgs(['--warmup_epochs', '5', '--epochs', '2']),
    /--warmup_epochs: \(5\) cannot exceed --epochs/,
  );
  assert.throws(
    () => parseTrainArgs(['--global_crops_scale', '0.5', '0.2']),
    /--global_crops_scale: must be two numbers/,
  );
  assert.throws(() => parseTrainArgs(['--nope']), /--nope: unknown flag/);
  assert.is(parseTrainArgs([]).batch_size, DEFAULTS.batch_size);
  assert.equal(parseTrainArgs(['--local_crops_scale', '0.1', '0.3']).local_crops_scale, [0.1, 0.3]);
  assert.throws(
    () => parseTrainArgs(['--color_jitter_prob', '1.5']),
    /--color_jitter_prob: must be a probability in \[0, 1\], got 1.5/,
  );
  assert.throws(
    () => parseTrainArgs(['--global_blur_prob', '0.5', '2']),
    /--global_blur_prob: must be two probabilities/,
  );
  assert.throws(() => parseTrainArgs(['--blur_sigma', '0', '1']), /--blur_sigma: must be two numbers 0 < min ≤ max/);
  assert.equal(parseTrainArgs(['--global_blur_prob', '0.5', '0']).global_blur_prob, [0.5, 0]);
});

test('--prototypes_only with a trainable backbone: the head is the prototypes alone and the backbone learns', async () => {
  const be = await getBackend(wasmCase);
  const root = tmp();
  try {
    // No weight decay, so only a gradient can move the backbone; lr 0 gives the initial weights.
    const base = { ...tinyVit, prototypes_only: true, max_steps: 2, eval_every_epoch: false, warmup_epochs: 0 };
    const still = { weight_decay: 0, weight_decay_end: 0 };
    const run = async (name: string, lr: number) =>
      readCheckpoint(
        (await train({ ...base, ...still, lr, min_lr: lr / 10, output_dir: join(root, name) }, { backend: be }))
          .checkpoint,
      );
    const trained = await run('trained', 0.01);
    const init = await run('init', 0);
    const head = [...trained.tensors.keys()].filter((k) => k.startsWith('student.head.'));
    assert.equal(head.sort(), ['student.head.last_layer.weight_g', 'student.head.last_layer.weight_v']);
    const w = 'student.backbone.patch_embed.proj.weight';
    const w0 = init.tensors.get(w)!.data,
      w1 = trained.tensors.get(w)!.data;
    let moved = 0;
    for (let i = 0; i < w0.length; i++) moved = Math.max(moved, Math.abs(w1[i] - w0[i]));
    assert.ok(moved > 1e-4, `the backbone did not train (max change ${moved})`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
