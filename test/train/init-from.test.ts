// train --init_from: a run continued from the DINO checkpoint.pth that export wrote, or from the
// protodino checkpoint itself in a new directory, ends where --resume of the original ends; export →
// import → export keeps every tensor; a backbone-only state dict starts both backbones with a fresh
// head; wrong files fail naming the tensor and both shapes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { train } from '../../src/train/trainer.js';
import { DEFAULTS, validate, type TrainConfig } from '../../src/train/config.js';
import { readCheckpoint, type LoadedCheckpoint } from '../../src/train/checkpoint.js';
import { buildNetwork } from '../../src/train/network.js';
import { dinoResumePoint, readInitFrom } from '../../src/train/init-from.js';
import { dinoCheckpointObject, exportCheckpointToPth } from '../../src/io/export-dino.js';
import { ImportError } from '../../src/io/import-dino.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { PthTensor, readPth, writePth } from '../../src/io/pth/index.js';
import { AdamW, decayGroups } from '../../src/tensor/ops/optim.js';
import type { Backend } from '../../src/backend/backend.js';
import { tinyTrainConfig } from '../helpers/tiny-config.js';

const root = mkdtempSync(join(tmpdir(), 'protodino-init-'));
// 2 steps per epoch, 2 epochs; the first run stops after epoch 1.
const tiny = tinyTrainConfig({ arch: 'vit_cpu', subset: 8, epochs: 2, warmup_epochs: 0, seed: 11 });

let be: Backend;
let first: string; // run directory after epoch 1
let pth: string;

const run = (cfg: Partial<TrainConfig>) => train({ ...tiny, ...cfg }, { backend: be });

function maxDiff(a: LoadedCheckpoint, b: LoadedCheckpoint, prefixes: string[]): number {
  let worst = 0;
  let n = 0;
  for (const [name, t] of a.tensors) {
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    const u = b.tensors.get(name);
    assert.ok(u, `${name} missing`);
    assert.equal(u!.shape, t.shape, name);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u!.data[i]));
    n++;
  }
  assert.ok(n > 10, `compared only ${n} tensors`);
  return worst;
}

test.before(async () => {
  be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  first = join(root, 'first');
  await run({ output_dir: first, max_steps: 2 });
  pth = join(root, 'checkpoint.pth');
  exportCheckpointToPth(join(first, 'checkpoint.safetensors'), pth);
});

test('continuing from the exported checkpoint.pth or the protodino checkpoint matches --resume', async () => {
  const resumed = join(root, 'resumed');
  cpSync(first, resumed, { recursive: true });
  const r = await run({ output_dir: resumed, resume: true });
  assert.is(r.steps, 4);
  const fromPth = await run({ output_dir: join(root, 'from-pth'), init_from: pth, log_every: 1 });
  assert.equal(
    fromPth.history.map((h) => [h.epoch, h.step]),
    [
      [1, 3],
      [1, 4],
    ],
    'continues in epoch 2 at step 3',
  );
  const fromSt = await run({ output_dir: join(root, 'from-st'), init_from: join(first, 'checkpoint.safetensors') });
  const want = readCheckpoint(r.checkpoint);
  const all = ['student.', 'teacher.', 'optimizer.', 'dino_loss.'];
  const dPth = maxDiff(want, readCheckpoint(fromPth.checkpoint), all);
  assert.ok(dPth <= 1e-6, `from .pth: max difference ${dPth}`);
  assert.is(maxDiff(want, readCheckpoint(fromSt.checkpoint), all), 0, 'from .safetensors: bit-identical');
  assert.equal(readCheckpoint(fromPth.checkpoint).meta.optimizerSteps, want.meta.optimizerSteps);
});

test('export → import → export gives identical tensors', async () => {
  const cfg = validate({ ...DEFAULTS, ...tiny });
  const student = buildNetwork(cfg, be, 1, cfg.seed);
  const teacher = buildNetwork(cfg, be, 1, cfg.seed, 0);
  const [decay, plain] = decayGroups(student.namedParameters());
  const optimizer = new AdamW([
    { params: decay, lr: 0, weightDecay: 0 },
    { params: plain, lr: 0, weightDecay: 0 },
  ]);
  try {
    const src = readInitFrom(pth);
    if (src.kind !== 'dino') throw new Error(`read as ${src.kind}`);
    const ck = dinoResumePoint(src, { student, teacher, optimizer, cfg, niter: 2, loader: undefined });
    const again = join(root, 'again.pth');
    writePth(again, dinoCheckpointObject(ck));
    const a = readPth(pth) as Record<string, any>;
    const b = readPth(again) as Record<string, any>;
    const flat = (o: unknown, at = ''): [string, PthTensor][] =>
      o instanceof PthTensor
        ? [[at, o]]
        : typeof o === 'object' && o !== null
          ? Object.entries(o).flatMap(([k, v]) => flat(v, `${at}.${k}`))
          : [];
    const ta = flat({ s: a.student, t: a.teacher, o: a.optimizer.state, c: a.dino_loss });
    const tb = new Map(flat({ s: b.student, t: b.teacher, o: b.optimizer.state, c: b.dino_loss }));
    assert.is(tb.size, ta.length);
    assert.ok(ta.length > 100);
    for (const [k, v] of ta) {
      assert.equal(tb.get(k)?.shape, v.shape, k);
      assert.ok(
        Buffer.from((tb.get(k)!.data as Float32Array).buffer).equals(Buffer.from((v.data as Float32Array).buffer)),
        k,
      );
    }
    assert.is(b.epoch, a.epoch);
    assert.equal(
      b.optimizer.param_groups.map((g: { params: number[] }) => g.params),
      a.optimizer.param_groups.map((g: { params: number[] }) => g.params),
    );
  } finally {
    student.dispose();
    teacher.dispose();
    optimizer.dispose();
  }
});

test('an iBOT run continues from a DINO checkpoint: the mask token and the patch center start fresh', async () => {
  const r = await run({ output_dir: join(root, 'ibot'), init_from: pth, ibot: true });
  assert.is(r.steps, 4);
  const ck = readCheckpoint(r.checkpoint);
  assert.ok(ck.tensors.has('student.backbone.masked_embed') && ck.tensors.has('ibot_loss.center2'));
  assert.ok(ck.tensors.has('optimizer.exp_avg.backbone.masked_embed'), 'the mask token is trained from here on');
});

test('a backbone-only state dict starts both backbones; the head is the fresh run’s', async () => {
  const ck = readCheckpoint(join(first, 'checkpoint.safetensors'));
  const backbone: Record<string, PthTensor> = {};
  for (const [k, v] of ck.tensors)
    if (k.startsWith('teacher.backbone.')) backbone[k.slice('teacher.'.length)] = new PthTensor('F32', v.shape, v.data);
  const file = join(root, 'backbone.pth');
  writePth(file, backbone);
  // lr 0 throughout and momentum 1: one step changes no weight, so the checkpoint shows what was loaded.
  const still = { max_steps: 1, lr: 0, min_lr: 0, weight_decay: 0, weight_decay_end: 0, momentum_teacher: 1 };
  const fresh = await run({ output_dir: join(root, 'fresh'), ...still });
  // The same weights as a plain safetensors state dict as other tools write it: no metadata, no checksum.
  const plain = join(root, 'backbone.safetensors');
  writeSafetensors(
    plain,
    Object.fromEntries(Object.entries(backbone).map(([k, v]) => [k, { dtype: 'F32', shape: v.shape, data: v.data }])),
    {},
    { checksum: false },
  );
  const ref = readCheckpoint(fresh.checkpoint);
  for (const [what, src] of [
    ['from-backbone', file],
    ['from-plain', plain],
  ]) {
    const got = readCheckpoint((await run({ output_dir: join(root, what), init_from: src, ...still })).checkpoint);
    for (const net of ['student.', 'teacher.']) {
      for (const [k, v] of Object.entries(backbone))
        assert.equal(
          Array.from(got.tensors.get(net + k)!.data),
          Array.from(v.data as Float32Array),
          `${what} ${net}${k}`,
        );
      const w = `${net}head.mlp.0.weight`;
      assert.equal(Array.from(got.tensors.get(w)!.data), Array.from(ref.tensors.get(w)!.data), `${what} ${w}`);
    }
  }
});

const throwsImport = async (p: Promise<unknown>, re: RegExp) => {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    assert.match(e.message, re);
    return;
  }
  assert.unreachable(`no error (wanted ${re})`);
};

test('a checkpoint for another network fails naming the tensor and both shapes', async () => {
  await throwsImport(
    run({ output_dir: join(root, 'wrong-k'), init_from: pth, out_dim: 64 }),
    /checkpoint\.pth: student tensor 'head\.last_layer\.weight_g' has shape \[32, 1\] in the file but \[64, 1\] in the network this config builds/,
  );
  const ck = readCheckpoint(join(first, 'checkpoint.safetensors'));
  const file = join(root, 'extra.pth');
  const obj = dinoCheckpointObject(ck);
  (obj.teacher as Record<string, unknown>)['backbone.blocks.9.norm1.weight'] = new PthTensor(
    'F32',
    [1],
    Float32Array.of(1),
  );
  writePth(file, obj);
  await throwsImport(
    run({ output_dir: join(root, 'extra'), init_from: file }),
    /extra\.pth: unknown teacher tensor 'backbone\.blocks\.9\.norm1\.weight'/,
  );
  await throwsImport(
    run({ output_dir: join(root, 'none'), init_from: join(root, 'nope.pth') }),
    /nope\.pth: no such file/,
  );
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
