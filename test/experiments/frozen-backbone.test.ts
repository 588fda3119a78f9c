// experiments --frozen_backbone: the frozen setting's cells train their prototypes on an exported,
// frozen backbone instead of PCA-64, with the rest of the cell's config unchanged; a file that does
// not name its architecture is refused before any run starts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { exportBackbone } from '../../src/io/export-backbone.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { quickEvalSizes, runConfig, runExperiment, type ExperimentRun } from '../../src/experiments/index.js';
import type { Backend } from '../../src/backend/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'protodino-frozen-backbone-'));
let be: Backend;
let backbone: string;

test.before(async () => {
  be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const src = await train(
    {
      arch: 'resnet_cpu',
      batch_size: 4,
      subset: 8,
      epochs: 1,
      max_steps: 1,
      local_crops_number: 2,
      out_dim: 16,
      hidden_dim: 16,
      bottleneck_dim: 8,
      eval_every_epoch: false,
      quiet: true,
      output_dir: join(dir, 'source'),
    },
    { backend: be },
  );
  backbone = join(dir, 'backbone.safetensors');
  exportBackbone(src.checkpoint, backbone);
});

test('a frozen cell on a trained backbone: its arch, loaded and frozen, the PCA cell otherwise', async () => {
  const opts = { quick: true, frozenSteps: 4 };
  const pca = runConfig('frozen', 'balanced', 'dino', 0, 0, opts);
  const cfg = runConfig('frozen', 'balanced', 'dino', 0, 0, { ...opts, frozenBackbone: backbone });
  assert.is(cfg.arch, 'resnet_cpu');
  assert.is(cfg.init_from, backbone);
  assert.is(cfg.freeze_backbone, true);
  const { arch, init_from, freeze_backbone, ...rest } = cfg;
  const { arch: _a, ...pcaRest } = pca;
  assert.equal(rest, pcaRest);
  assert.ok(arch && init_from && freeze_backbone);

  const run: ExperimentRun = {
    name: 'frozen-balanced-dino-s0',
    setting: 'frozen',
    data: 'balanced',
    method: 'dino',
    koleoProto: 0,
    seed: 0,
    tier: 'main',
    config: cfg,
  };
  const o = (await runExperiment(run, join(dir, 'grid'), be, quickEvalSizes(), () => {}))!;
  assert.is(o.status, 'trained');
  assert.is(o.result.steps, 4);
  const got = readCheckpoint(join(dir, 'grid', run.name, 'checkpoint.safetensors'));
  const want = readCheckpoint(join(dir, 'source', 'checkpoint.safetensors'));
  // The frozen student holds the exported teacher's weights exactly; the teacher, an EMA of two equal
  // weights, only to rounding.
  const w = 'backbone.conv1.weight';
  const src = want.tensors.get(`teacher.${w}`)!.data;
  assert.equal(Array.from(got.tensors.get(`student.${w}`)!.data), Array.from(src));
  const t = got.tensors.get(`teacher.${w}`)!.data;
  for (let i = 0; i < src.length; i++)
    assert.ok(Math.abs(t[i] - src[i]) <= 1e-6 * (1 + Math.abs(src[i])), `teacher ${w}[${i}]`);
});

test('a backbone file that names no architecture, or no file, is refused', () => {
  const plain = join(dir, 'plain.safetensors');
  writeSafetensors(plain, { 'conv1.weight': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
  assert.throws(
    () => runConfig('frozen', 'balanced', 'dino', 0, 0, { quick: true, frozenBackbone: plain }),
    /plain\.safetensors does not name its architecture.*--to backbone/,
  );
  assert.throws(
    () => runConfig('frozen', 'balanced', 'dino', 0, 0, { quick: true, frozenBackbone: join(dir, 'nope.safetensors') }),
    /nope\.safetensors: no such file/,
  );
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
