// --prototypes em in training: the flags it refuses, that no gradient reaches the prototypes while
// both heads carry the fitted means, one step agreeing between wasm and webgpu, and a tiny run of
// the real CLI end to end (its log, its checkpoint, and analyze reading it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { parseTrainArgs, type TrainConfig } from '../../src/train/config.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;
const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const tiny: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  subset: 16,
  local_crops_number: 2,
  out_dim: 64,
  hidden_dim: 32,
  bottleneck_dim: 16,
  max_steps: 2,
  log_every: 1,
  quiet: true,
  freeze_last_layer: 0,
  prototypes: 'em',
  em_beta_warmup: 4,
  eval_every_epoch: false,
};

test('flags that have no meaning with --prototypes em are refused, naming the flag', () => {
  const refuse = (args: string[], re: RegExp) => assert.throws(() => parseTrainArgs(args), re);
  refuse(['--prototypes', 'em', '--koleo_proto', '0.1'], /--koleo_proto: .*no gradient reaches them/);
  refuse(['--prototypes', 'em', '--vmf', '--norm_last_layer', 'false'], /--vmf: .*EM fits the prototypes/);
  refuse(['--em_eta', '0.1'], /--em_eta: \(0\.1\) only applies with --prototypes em/);
  refuse(['--em_target', 'responsibilities'], /--em_target: .*only applies with --prototypes em/);
  refuse(['--prototypes', 'em', '--em_eta', '1'], /--em_eta: must be in \(0, 1\)/);
  refuse(['--prototypes', 'em', '--em_beta_start', '0'], /--em_beta_start: must be in \(0, 1\]/);
  refuse(['--prototypes', 'em', '--em_var_floor', '0'], /--em_var_floor/);
  refuse(
    ['--prototypes', 'em', '--em_target', 'responsibilities', '--centering', 'sinkhorn'],
    /--em_target: responsibilities replaces the teacher target/,
  );
  refuse(['--prototypes', 'mean'], /--prototypes: must be one of gradient, em/);
  // What stays allowed: centring, me-max, a frozen backbone (the head's MLP still learns), the
  // responsibilities target, and the prototype matrix alone (EM over the backbone's features).
  for (const extra of [
    [],
    ['--centering', 'memax'],
    ['--freeze_backbone'],
    ['--em_target', 'responsibilities'],
    ['--prototypes_only', '--freeze_backbone'],
  ])
    assert.is(parseTrainArgs(['--prototypes', 'em', ...extra]).prototypes, 'em');
});

test('no gradient reaches the prototypes; both heads hold exactly the M-step means', async () => {
  const be = await getBackend(wasmCase);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-em-'));
  try {
    const seen: { protoGrad: boolean; mlpGrad: boolean; requiresGrad: boolean }[] = [];
    const r = await train(
      { ...tiny, output_dir: dir },
      {
        backend: be,
        afterBackward: ({ student }) => {
          const named = new Map(student.namedParameters());
          seen.push({
            protoGrad: named.get('head.last_layer.weight_v')!.grad !== null,
            requiresGrad: named.get('head.last_layer.weight_v')!.requiresGrad,
            mlpGrad: named.get('head.mlp.0.weight')!.grad !== null,
          });
        },
      },
    );
    assert.equal(seen, [
      { protoGrad: false, mlpGrad: true, requiresGrad: false },
      { protoGrad: false, mlpGrad: true, requiresGrad: false },
    ]);
    const ck = readCheckpoint(r.checkpoint);
    assert.not.ok(ck.tensors.has('optimizer.exp_avg.head.last_layer.weight_v'), 'the optimizer holds the prototypes');
    const count = ck.tensors.get('em.count')!.data,
      sum = ck.tensors.get('em.sum')!.data;
    const K = 64,
      D = 16;
    const mean = Float32Array.from({ length: K * D }, (_, i) => Math.fround(sum[i] / count[Math.floor(i / D)]));
    for (const who of ['student', 'teacher'])
      assert.equal(
        Array.from(ck.tensors.get(`${who}.head.last_layer.weight_v`)!.data),
        Array.from(mean),
        `${who} prototypes are the EM means`,
      );
    assert.equal(ck.tensors.get('em.usage')!.shape, [1, K]);
    assert.ok(ck.meta.em && ck.meta.em.generator.offset > 0, 'the split stream is saved and was drawn from');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--prototypes_only on a frozen backbone: nothing to differentiate, EM alone moves the prototypes', async () => {
  const be = await getBackend(wasmCase);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-em-only-'));
  try {
    let trainable = -1;
    const r = await train(
      { ...tiny, prototypes_only: true, freeze_backbone: true, output_dir: dir },
      {
        backend: be,
        afterBackward: ({ student }) => {
          trainable = student.trainableParameters().length;
        },
      },
    );
    assert.is(trainable, 0, 'a parameter is left for gradients');
    assert.is(r.history.length, 2);
    assert.ok(
      r.history.every((h) => Number.isFinite(h.loss)),
      'the loss is still measured',
    );
    const ck = readCheckpoint(r.checkpoint);
    const count = ck.tensors.get('em.count')!.data,
      sum = ck.tensors.get('em.sum')!.data;
    // The mixture lives on the backbone's features: vit_cpu's width, not the head's bottleneck.
    const [K, D] = ck.tensors.get('em.sum')!.shape;
    assert.is(K, 64);
    assert.is(D, ck.tensors.get('teacher.head.last_layer.weight_v')!.shape[1]);
    // Two updates of 2B = 8 features on top of the initial pseudo-count of 1 per component, less what
    // the forgetting (η = 0.02 per sample) took: the fitted statistics saw every feature.
    const mass = Array.from(count).reduce((a, b) => a + b, 0);
    assert.ok(mass > K + 15 && mass <= K + 16, `total mass ${mass}`);
    const mean = Float32Array.from({ length: K * D }, (_, i) => Math.fround(sum[i] / count[Math.floor(i / D)]));
    assert.equal(Array.from(ck.tensors.get('teacher.head.last_layer.weight_v')!.data), Array.from(mean));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two --prototypes em steps agree between wasm and webgpu (losses and EM statistics)', async () => {
  const out = [];
  for (const c of [wasmCase, gpuCase]) {
    const dir = mkdtempSync(join(tmpdir(), 'protodino-em-'));
    try {
      const r = await train(
        { ...tiny, output_dir: dir, em_target: 'responsibilities' },
        { backend: await getBackend(c) },
      );
      out.push({ losses: r.history.map((h) => h.loss), ck: readCheckpoint(r.checkpoint) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const [w, g] = out;
  assertClose(g.losses, w.losses, { rtol: 1e-4 }, 'losses');
  for (const k of ['em.count', 'em.sum', 'em.sumsq', 'em.usage', 'teacher.head.last_layer.weight_v'])
    assertClose(g.ck.tensors.get(k)!.data, w.ck.tensors.get(k)!.data, { rtol: 1e-3, atol: 1e-5 }, k);
});

test('the CLI trains a tiny --prototypes em run, logs β and splits, and analyze reads its prototypes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-em-cli-'));
  try {
    const args = [cli, 'train', '--prototypes', 'em', '--arch', 'vit_cpu', '--subset', '16', '--batch_size', '4'];
    args.push('--local_crops_number', '2', '--out_dim', '32', '--hidden_dim', '32', '--bottleneck_dim', '16');
    args.push('--max_steps', '3', '--log_every', '1', '--em_beta_warmup', '2', '--em_beta_start', '0.5');
    args.push('--eval_every_epoch', 'false', '--backend', 'wasm', '--threads', '1', '--quiet', '--output_dir', dir);
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const steps = readFileSync(join(dir, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((x) => x.event === 'step');
    assert.equal(
      steps.map((s) => s.em_beta),
      [0.5, 0.75, 1],
    );
    for (const s of steps) assert.ok(Number.isInteger(s.em_split) && Number.isFinite(s.loss), JSON.stringify(s));
    const a = spawnSync(
      process.execPath,
      [cli, 'analyze', join(dir, 'checkpoint.safetensors'), '--json', '--backend', 'wasm'],
      {
        encoding: 'utf8',
      },
    );
    assert.is(a.status, 0, a.stderr);
    assert.is(JSON.parse(a.stdout).prototypes, 32);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
