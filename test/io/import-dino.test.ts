// importDinoPth: facebookresearch/dino's checkpoint.pth as torch.save wrote it (the fixture of
// scripts/make-pth-fixtures.py) and backbone-only state dicts, mapped to protodino names; and the
// errors for files that are not what --init_from takes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importDinoObject, importDinoPth, ImportError } from '../../src/io/import-dino.js';
import { PthTensor, writePth } from '../../src/io/pth/index.js';
import { fixture } from './pth-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'protodino-import-'));
const t = (shape: number[], fill = 0) =>
  new PthTensor('F32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill));

const throwsImport = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    if (!(e instanceof ImportError)) throw e;
    return re.test(e.message) || assert.unreachable(`message ${e.message} does not match ${re}`);
  });

test('a DINO checkpoint written by torch.save: names without module., the center, the epoch, AdamW by group', () => {
  const w = importDinoPth(fixture('dino-checkpoint.pth'));
  if (w.kind !== 'dino') throw new Error(`read as ${w.kind}`);
  assert.is(w.epoch, 3);
  assert.ok([...w.student.keys()].every((k) => !k.startsWith('module.')));
  assert.equal(w.student.get('head.last_layer.weight_g')!.shape, [8, 1]);
  assert.equal(
    Array.from(w.student.get('head.last_layer.weight_v')!.data),
    Array.from({ length: 32 }, (_, i) => i / 4 - 3),
  );
  assert.equal(Array.from(w.teacher.get('head.last_layer.weight_v')!.data.slice(0, 3)), [100, 101, 102]);
  assert.equal(w.center!.shape, [1, 8]);
  assert.ok(Math.abs(w.center!.data[7] - 0.07) < 1e-7);
  // torch.optim.AdamW over student.parameters(): one group, every parameter stepped once.
  assert.is(w.optimizer!.length, 1);
  assert.is(w.optimizer![0].slots.length, 11);
  assert.ok(w.optimizer![0].slots.every((s) => s !== null && s.step === 1));
  const names = [...w.student.keys()].filter((k) => !k.endsWith('num_batches_tracked'));
  w.optimizer![0].slots.forEach((s, i) => assert.equal(s!.exp_avg.shape, w.student.get(names[i])!.shape));
});

test('a bare state dict is a backbone: module. and backbone. dropped, a classifier set aside', () => {
  const w = importDinoObject(
    {
      'module.backbone.cls_token': t([1, 1, 4], 2),
      'module.backbone.norm.weight': t([4], 1),
      'module.backbone.head.weight': t([10, 4]),
      'module.backbone.head.bias': t([10]),
    },
    'x.pth',
  );
  if (w.kind !== 'backbone') throw new Error(`read as ${w.kind}`);
  assert.equal([...w.backbone.keys()], ['cls_token', 'norm.weight']);
  assert.equal(w.skipped, ['head.weight', 'head.bias']);
  assert.equal(Array.from(w.backbone.get('cls_token')!.data), [2, 2, 2, 2]);
});

test('int64 num_batches_tracked becomes a float count; other integer tensors are refused by name', () => {
  const w = importDinoObject(
    { 'bn1.num_batches_tracked': new PthTensor('I64', [], BigInt64Array.of(7n)), 'bn1.weight': t([3]) },
    'r.pth',
  );
  assert.equal(
    Array.from((w as { backbone: Map<string, { data: Float32Array }> }).backbone.get('bn1.num_batches_tracked')!.data),
    [7],
  );
  throwsImport(
    () => importDinoObject({ 'conv.weight': new PthTensor('I32', [2], Int32Array.of(1, 2)) }, 'r.pth'),
    /r\.pth: 'state dict\.conv\.weight' is I32, not a floating-point tensor/,
  );
});

test('unknown top-level keys, missing halves and non-tensors are named', () => {
  throwsImport(
    () => importDinoObject({ student: {}, teacher: {}, scheduler: {} }, 'c.pth'),
    /c\.pth: unknown key 'scheduler' in a DINO checkpoint \(known: student, teacher/,
  );
  throwsImport(() => importDinoObject({ student: {} }, 'c.pth'), /needs 'teacher'/);
  throwsImport(
    () => importDinoObject({ model: { a: t([1]) }, epoch: 3 }, 'c.pth'),
    /neither a DINO checkpoint .* 'model', 'epoch' are not tensors/,
  );
  throwsImport(
    () => importDinoObject({ student: {}, teacher: {}, dino_loss: { center: t([1, 2]), extra: t([1]) } }, 'c.pth'),
    /'dino_loss' must be DINOLoss's state dict/,
  );
  throwsImport(
    () =>
      importDinoObject(
        {
          student: {},
          teacher: {},
          optimizer: {
            state: { 0: { step: 2, exp_avg: t([1]), exp_avg_sq: t([1]), max_exp_avg_sq: t([1]) } },
            param_groups: [{ params: [0], weight_decay: 0 }],
          },
        },
        'c.pth',
      ),
    /optimizer\.state\[0\] has keys max_exp_avg_sq/,
  );
});

test('a truncated or corrupt file is an ImportError naming the file, not a crash', () => {
  const bytes = readFileSync(fixture('dino-checkpoint.pth'));
  const cut = join(dir, 'cut.pth');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  throwsImport(() => importDinoPth(cut), /cut\.pth: cannot be read as a PyTorch checkpoint/);
  const flipped = Buffer.from(bytes);
  for (let i = 200; i < 260; i++) flipped[i] ^= 0xff; // inside data.pkl
  const bad = join(dir, 'bad.pth');
  writeFileSync(bad, flipped);
  throwsImport(() => importDinoPth(bad), /bad\.pth: cannot be read as a PyTorch checkpoint/);
  const list = join(dir, 'list.pth');
  writePth(list, [t([1])]);
  throwsImport(() => importDinoPth(list), /list\.pth: holds a list, not a dict/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
