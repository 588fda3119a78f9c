import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { findDinoHead, PthTensor, readPth, serializePth } from '../../src/io/pth/index.js';
import { fixture, throwsPth } from './pth-helpers.js';

const test = suite('pth DINO head');

const t = (shape: number[], f: (i: number) => number = (i) => i): PthTensor =>
  new PthTensor(
    'F32',
    shape,
    Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => f(i)),
  );
const values = (x: PthTensor): number[] => Array.from(x.data as Float32Array);
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

test('facebookresearch/dino checkpoint.pth: the teacher by default, the student on request', () => {
  const ck = readPth(fixture('dino-checkpoint.pth'));
  const h = findDinoHead(ck);
  assert.is(h.kind, 'weight_norm');
  if (h.kind !== 'weight_norm') return;
  assert.is(h.source, 'teacher');
  assert.equal(h.keys, { weight_v: 'head.last_layer.weight_v', weight_g: 'head.last_layer.weight_g' });
  assert.equal(h.weight_v.shape, [8, 4]);
  assert.equal(
    values(h.weight_v),
    range(32, (i) => 100 + i),
  );
  assert.equal(
    values(h.weight_g),
    range(8, () => 1),
  );
  const s = findDinoHead(ck, { prefer: 'student' });
  if (s.kind !== 'weight_norm') return assert.unreachable('student head is weight-normalised');
  assert.is(s.source, 'student');
  assert.equal(s.keys, { weight_v: 'module.head.last_layer.weight_v', weight_g: 'module.head.last_layer.weight_g' });
  assert.equal(
    values(s.weight_v),
    range(32, (i) => i / 4 - 3),
  );
  assert.equal(
    values(s.weight_g),
    range(8, (i) => i + 1),
  );
  assert.equal(s.weight_g.shape, [8, 1]);
});

test('a bare state dict saved after remove_weight_norm: weight = g · v / ‖v‖', () => {
  const h = findDinoHead(readPth(fixture('dino-teacher-plain.pth')));
  if (h.kind !== 'plain') return assert.unreachable(`expected a plain head, got ${h.kind}`);
  assert.is(h.source, '');
  assert.is(h.keys.weight, 'head.last_layer.weight');
  assert.equal(h.weight.shape, [8, 4]);
  for (let r = 0; r < 8; r++) {
    const v = range(4, (j) => 100 + 4 * r + j);
    const norm = Math.hypot(...v);
    for (let j = 0; j < 4; j++) {
      const got = (h.weight.data as Float32Array)[r * 4 + j];
      assert.ok(Math.abs(got - v[j] / norm) < 1e-6, `row ${r} col ${j}: ${got} vs ${v[j] / norm}`);
    }
  }
});

test('other spellings: bare head, parametrizations, model wrapper, DINOv2-style names, our own writer', () => {
  const bare = findDinoHead({
    'last_layer.weight_g': t([3, 1]),
    'last_layer.weight_v': t([3, 2]),
    'mlp.0.weight': t([2, 2]),
  });
  assert.equal(bare.keys, { weight_v: 'last_layer.weight_v', weight_g: 'last_layer.weight_g' });
  const param = findDinoHead({
    model: {
      'module.module.backbone.x': t([1]),
      'module.head.last_layer.parametrizations.weight.original0': t([4, 1]),
      'module.head.last_layer.parametrizations.weight.original1': t([4, 3]),
    },
  });
  assert.is(param.source, 'model');
  assert.equal(param.keys, {
    weight_v: 'module.head.last_layer.parametrizations.weight.original1',
    weight_g: 'module.head.last_layer.parametrizations.weight.original0',
  });
  const v2 = findDinoHead({
    teacher: {
      'backbone.blocks.0.w': t([1]),
      'dino_head.last_layer.weight_g': t([5]),
      'dino_head.last_layer.weight_v': t([5, 2]),
    },
  });
  assert.equal(v2.keys, { weight_v: 'dino_head.last_layer.weight_v', weight_g: 'dino_head.last_layer.weight_g' });
  const preferHead = findDinoHead({ 'head.last_layer.weight': t([2, 2]), 'other.last_layer.weight': t([3, 3]) });
  assert.equal(preferHead.keys, { weight: 'head.last_layer.weight' });
  // A student-only checkpoint falls back from the default 'teacher'.
  const studentOnly = findDinoHead({
    student: { 'module.head.last_layer.weight_g': t([2, 1]), 'module.head.last_layer.weight_v': t([2, 2]) },
    teacher: {},
  });
  assert.is(studentOnly.source, 'student');
  // Through our own writer and reader.
  const h = findDinoHead(
    readPth(
      serializePth({
        teacher: { 'head.last_layer.weight_g': t([2, 1], () => 1), 'head.last_layer.weight_v': t([2, 3]) },
      }),
    ),
  );
  if (h.kind !== 'weight_norm') return assert.unreachable('weight-norm head');
  assert.equal(values(h.weight_v), [0, 1, 2, 3, 4, 5]);
});

test('clear errors: nothing found (listing candidates), half a pair, shapes, ambiguity, dtype', () => {
  const e = throwsPth(
    () => findDinoHead({ student: { 'module.head.mlp.0.weight': t([2, 2]), 'module.backbone.x': t([1]) }, epoch: 3 }),
    /no '\*last_layer\.weight_v\/weight_g' or '\*last_layer\.weight' tensor found/,
  );
  assert.match(e.message, /looked in 'student', the root/);
  assert.match(e.message, /student\/module\.head\.mlp\.0\.weight/);
  throwsPth(() => findDinoHead({ a: t([1]), b: 2 }), /top-level keys: "a", "b"/);
  throwsPth(() => findDinoHead([]), /not a dict/);
  throwsPth(
    () => findDinoHead({ 'head.last_layer.weight_v': t([3, 2]) }),
    /has head\.last_layer\.weight_v but not its weight-norm partner \(weight_g\)/,
  );
  throwsPth(
    () => findDinoHead({ 'head.last_layer.weight_v': t([3, 2]), 'head.last_layer.weight_g': t([4, 1]) }),
    /weight_g has shape \[4,1\], expected \[3, 1\]/,
  );
  throwsPth(() => findDinoHead({ 'head.last_layer.weight': t([3]) }), /weight has shape \[3\], not \[K, D\]/);
  throwsPth(
    () => findDinoHead({ 'a.last_layer.weight': t([2, 2]), 'b.last_layer.weight': t([2, 2]) }),
    /several last layers \(a\.last_layer, b\.last_layer\)/,
  );
  throwsPth(
    () => findDinoHead({ 'head.last_layer.weight_v': t([2, 2]), 'module.head.last_layer.weight_v': t([2, 2]) }),
    /both .* give head\.last_layer\.weight_v/,
  );
  const ints = new PthTensor('I64', [2, 2], new BigInt64Array(4));
  throwsPth(() => findDinoHead({ 'head.last_layer.weight': ints }), /is I64, not a float tensor/);
});

test.run();
