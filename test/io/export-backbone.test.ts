// export --to backbone: the backbone alone, in safetensors or .pth, is what --init_from reads as a
// backbone-only state dict; a new run with another head and a frozen backbone starts from exactly it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { train } from '../../src/train/trainer.js';
import type { TrainConfig } from '../../src/train/config.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readInitFrom } from '../../src/train/init-from.js';
import { exportBackbone } from '../../src/io/export-backbone.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Backend } from '../../src/backend/backend.js';
import { tinyTrainConfig } from '../helpers/tiny-config.js';

const root = mkdtempSync(join(tmpdir(), 'protodino-backbone-'));
const tiny = tinyTrainConfig({
  arch: 'resnet_cpu',
  subset: 8,
  epochs: 1,
  use_bn_in_head: true,
  warmup_epochs: 0,
  seed: 5,
});
let be: Backend;
let source: string;
const run = (cfg: Partial<TrainConfig>) => train({ ...tiny, ...cfg }, { backend: be });

test.before(async () => {
  be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  source = (await run({ output_dir: join(root, 'source'), max_steps: 2 })).checkpoint;
});

test('the exported backbone starts a run with another head and a frozen backbone', async () => {
  const ck = readCheckpoint(source);
  const st = join(root, 'teacher.safetensors');
  const pth = join(root, 'student.pth');
  const a = exportBackbone(source, st);
  const b = exportBackbone(source, pth, 'student');
  const teacherKeys = [...ck.tensors.keys()].filter((k) => k.startsWith('teacher.backbone.'));
  assert.is(a.tensors, teacherKeys.length);
  assert.is(b.tensors, teacherKeys.length);
  assert.is(a.format, 'safetensors');
  assert.is(b.format, 'pth');
  // Keys as DINO publishes backbone weights: no 'backbone.' prefix, no head, no optimiser state.
  const file = readSafetensors(st);
  for (const k of file.tensors.keys()) assert.not.match(k, /^(backbone|head|teacher|student|optimizer)\./, k);
  assert.is(file.metadata.protodino, undefined);
  for (const [src, net] of [
    [st, 'teacher'],
    [pth, 'student'],
  ] as const) {
    assert.is(readInitFrom(src).kind, 'backbone', src);
    // A different head (K = 16, no BatchNorm), the backbone frozen, lr 0 and momentum 1 (an EMA of
    // equal weights still rounds): the weights are what was loaded.
    const r = await run({
      output_dir: join(root, `from-${net}`),
      init_from: src,
      freeze_backbone: true,
      out_dim: 16,
      use_bn_in_head: false,
      max_steps: 1,
      lr: 0,
      min_lr: 0,
      momentum_teacher: 1,
    });
    const got = readCheckpoint(r.checkpoint);
    for (const k of teacherKeys) {
      const name = k.slice('teacher.'.length);
      const want = ck.tensors.get(`${net}.${name}`)!;
      // BatchNorm running statistics are buffers and the frozen backbone still runs in train mode.
      if (/running_|num_batches/.test(name)) continue;
      assert.equal(Array.from(got.tensors.get(`teacher.${name}`)!.data), Array.from(want.data), `${net} ${name}`);
    }
    assert.equal(got.tensors.get('teacher.head.last_layer.weight_v')!.shape, [16, 8]);
  }
});

test('a missing or corrupt checkpoint fails naming the file', () => {
  assert.throws(() => exportBackbone(join(root, 'nope.safetensors'), join(root, 'x.safetensors')), /nope\.safetensors/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
