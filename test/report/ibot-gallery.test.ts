// The report of an iBOT run renders its prototype gallery. Its teacher carries the learned mask
// token, which a rebuild without it could not load; the report used to turn that failure into a
// note and show no gallery, so here a gallery that cannot be made is an error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackend } from '../../src/backend/index.js';
import type { Backend } from '../../src/backend/backend.js';
import { train } from '../../src/train/trainer.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { networkFromCheckpoint, readRunCheckpoint } from '../../src/train/run-data.js';
import { VisionTransformer } from '../../src/nn/vit.js';
import { generateReport } from '../../src/report/index.js';

const dir = mkdtempSync(join(tmpdir(), 'protodino-ibot-report-'));
const run = join(dir, 'ibot');
let be: Backend;

test.before(async () => {
  be = await createBackend({ kind: 'wasm', threads: 2 });
  await train(
    {
      arch: 'vit_cpu',
      ibot: true,
      subset: 32,
      batch_size: 4,
      local_crops_number: 2,
      out_dim: 32,
      hidden_dim: 16,
      bottleneck_dim: 8,
      max_steps: 3,
      quiet: true,
      freeze_last_layer: 0,
      eval_every_epoch: false,
      output_dir: run,
    },
    { backend: be },
  );
});

test.after(() => {
  be.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('the rebuilt teacher holds the trained mask token', async () => {
  const saved = readRunCheckpoint('test', join(run, 'checkpoint.safetensors'));
  const want = saved.ck.tensors.get('teacher.backbone.masked_embed');
  assert.ok(want, 'the checkpoint has the teacher mask token');
  const net = networkFromCheckpoint(saved, be, 1);
  try {
    assert.ok(net.backbone instanceof VisionTransformer);
    const got = await (net.backbone as VisionTransformer).masked_embed!.data();
    assert.equal(Array.from(got), Array.from(want!.data));
  } finally {
    net.dispose();
  }
});

test('the report of an iBOT run renders with its gallery', async () => {
  const r = await generateReport([run], { out: join(dir, 'out', 'report.html'), backend: be, galleryImages: 200 });
  const a = r.analyses[0];
  assert.equal(a.notes, []);
  assert.is(a.gallery?.images, 200);
  assert.ok(a.gallery!.groups.length > 0, 'gallery groups');
  const html = readFileSync(r.html, 'utf8');
  const gallery = /<section id="gallery">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
  assert.ok((gallery.match(/<img src="data:image\/png;base64,/g) ?? []).length >= 8, 'gallery images in the page');
});

test('a gallery that cannot be made fails the report, naming the run and the reason', async () => {
  // The config is validated when the network is rebuilt: a bad value stops the report.
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  const file = readSafetensors(join(run, 'checkpoint.safetensors'), { verify: true });
  const meta = JSON.parse(file.metadata.protodino);
  meta.config.ibot_mask_prob = 2;
  writeSafetensors(join(bad, 'checkpoint.safetensors'), file.tensors as Map<string, never>, {
    ...file.metadata,
    protodino: JSON.stringify(meta),
  });
  let message = '';
  try {
    await generateReport([bad], { out: join(dir, 'out', 'bad.html'), backend: be, galleryImages: 50 });
  } catch (e) {
    message = (e as Error).message;
  }
  assert.match(message, /report: bad: the prototype gallery cannot be made: .*ibot_mask_prob.*--no-gallery/);
  // Without the gallery the same run still reports its prototypes.
  const r = await generateReport([bad], { out: join(dir, 'out', 'bad.html'), backend: be, noGallery: true });
  assert.is(r.analyses[0].unique?.prototypes, 32);
});

test.run();
