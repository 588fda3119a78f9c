// A run's data (src/train/run-data.ts) as every command sees it: the normalization stored in the
// checkpoint and read back by evaluation, checkpoints written before it was stored, and image
// folders, which train on the whole folder but are judged on a held-out fifth by eval and the report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBackend } from '../../src/backend/index.js';
import type { Backend } from '../../src/backend/backend.js';
import { train } from '../../src/train/trainer.js';
import type { TrainConfig } from '../../src/train/config.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { channelStats, loadFashionMNIST, loadImageFolder, subset, type Dataset } from '../../src/data/index.js';
import { checkpointStats, evalData, readRunCheckpoint, trainingImages } from '../../src/train/run-data.js';
import { teacherAssignments } from '../../src/report/assign.js';
import { bytes, pngBytes, write } from '../data/fixtures.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'protodino-run-data-'));
const tiny: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  local_crops_number: 2,
  out_dim: 32,
  hidden_dim: 16,
  bottleneck_dim: 8,
  max_steps: 2,
  quiet: true,
  freeze_last_layer: 0,
  eval_every_epoch: false,
};
const fmnistRun = join(dir, 'fmnist'),
  folderRun = join(dir, 'folder-run'),
  folder = join(dir, 'folder');
let be: Backend;

/** Each image's bytes as a string, to compare sets of images whatever their order. */
function imageKeys(ds: Dataset): string[] {
  const sz = ds.channels * ds.height * ds.width;
  return Array.from({ length: ds.n }, (_, i) =>
    Buffer.from(ds.images.subarray(i * sz, (i + 1) * sz)).toString('base64'),
  );
}

function evalJson(path: string): Record<string, unknown> {
  const r = spawnSync(
    process.execPath,
    [cli, 'eval', path, '--knn', '--json', '--backend', 'wasm', '--train_max', '200', '--test_max', '100'],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

test.before(async () => {
  be = await createBackend({ kind: 'wasm', threads: 2 });
  await train({ ...tiny, subset: 16, output_dir: fmnistRun }, { backend: be });
  // Two classes of 12 random RGB images: the held-out fifth is 4 of them.
  for (const [c, cls] of ['cat', 'dog'].entries()) {
    for (let i = 0; i < 12; i++)
      write(join(folder, cls, `${i}.png`), pngBytes(28, 28, bytes(28 * 28 * 3, 1 + 100 * c + i)));
  }
  await train({ ...tiny, dataset: 'folder', data_path: folder, output_dir: folderRun }, { backend: be });
});

test.after(() => {
  be.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('a checkpoint stores the statistics of the images it trained on, and evaluation uses them', async () => {
  const run = readRunCheckpoint('test', join(fmnistRun, 'checkpoint.safetensors'));
  const train16 = subset(
    await loadFashionMNIST({ split: 'train' }),
    Array.from({ length: 16 }, (_, i) => i),
  );
  const want = channelStats(train16);
  assert.equal(checkpointStats(run.ck), want);
  assert.equal(channelStats(await trainingImages(run.cfg)), want);
  // Not the whole split's: the 16 images are what the network learnt to see.
  assert.is.not(want.mean[0], channelStats(await loadFashionMNIST({ split: 'train' })).mean[0]);
  const d = await evalData(run.cfg, { stats: checkpointStats(run.ck) });
  assert.equal([d.mean, d.std, d.statsFrom], [want.mean, want.std, 'checkpoint']);
  assert.is(d.train.n, 60000);
  assert.is(d.test.n, 10000);
});

test('a checkpoint written before the statistics were stored evaluates to the same figures', async () => {
  const path = join(fmnistRun, 'checkpoint.safetensors'),
    old = join(dir, 'old.safetensors');
  const file = readSafetensors(path, { verify: true });
  const meta = JSON.parse(file.metadata.protodino);
  delete meta.normalization;
  writeSafetensors(old, file.tensors as Map<string, never>, { ...file.metadata, protodino: JSON.stringify(meta) });
  const run = readRunCheckpoint('test', old);
  assert.is(checkpointStats(run.ck), null);
  const d = await evalData(run.cfg, { stats: checkpointStats(run.ck) });
  assert.is(d.statsFrom, 'computed');
  const stored = checkpointStats(readRunCheckpoint('test', path).ck)!;
  assert.equal([d.mean, d.std], [stored.mean, stored.std]);
  const [a, b] = [evalJson(path), evalJson(old)];
  (delete a.checkpoint, delete b.checkpoint, delete a.embedSeconds, delete b.embedSeconds);
  assert.equal(b, a);
});

test('damaged statistics in the metadata are refused when the checkpoint is read', () => {
  const file = readSafetensors(join(fmnistRun, 'checkpoint.safetensors'), { verify: true });
  const meta = JSON.parse(file.metadata.protodino);
  for (const normalization of [
    { mean: [0.3], std: [0] },
    { mean: [0.3, 0.2], std: [0.4] },
    { mean: 'x', std: [1] },
  ]) {
    const bad = join(dir, 'bad.safetensors');
    writeSafetensors(bad, file.tensors as Map<string, never>, {
      ...file.metadata,
      protodino: JSON.stringify({ ...meta, normalization }),
    });
    assert.throws(
      () => readRunCheckpoint('eval', bad),
      /eval: .*bad\.safetensors: checkpoint metadata normalization is .*not \{ mean: \[numbers\], std: \[positive numbers\] \}/,
    );
  }
});

test('image folders train on every image; eval and the report judge on the held-out fifth', async () => {
  const run = readRunCheckpoint('test', join(folderRun, 'checkpoint.safetensors'));
  const all = await loadImageFolder({ root: folder, size: 28 });
  assert.is((await trainingImages(run.cfg)).n, 24);
  assert.equal(checkpointStats(run.ck), channelStats(all));
  const d = await evalData(run.cfg, { stats: checkpointStats(run.ck) });
  assert.is(d.test.n, 4);
  assert.is(d.train.n, 20);
  const bank = new Set(imageKeys(d.train));
  assert.ok(
    imageKeys(d.test).every((k) => !bank.has(k)),
    'a test image is in the bank',
  );
  // The fallback for older checkpoints recomputes the whole folder's statistics, as the trainer had them.
  const computed = await evalData(run.cfg);
  assert.equal([computed.mean, computed.std], [d.mean, d.std]);
  const a = await teacherAssignments(run, be, 100);
  assert.equal(imageKeys(a.dataset), imageKeys(d.test));
  assert.is(a.argmax.length, 4);
});

test.run();
