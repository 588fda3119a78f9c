import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { PthTensor, readPth } from '../../src/io/pth/index.js';
import { bufferSource, concatBytes, readZipDirectory, readZipEntry, storedZip } from '../../src/io/pth/zip.js';
import { describe, expected, fixture, throwsPth } from './pth-helpers.js';

const test = suite('pth read');

type Obj = Record<string, unknown>;
const tensor = (v: unknown): PthTensor => {
  assert.ok(v instanceof PthTensor, 'is a tensor');
  return v as PthTensor;
};
const values = (t: PthTensor): (number | bigint)[] => Array.from(t.data as ArrayLike<number | bigint>);
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

test('every fixture reads exactly as torch.load reads it (expected.json, written by torch)', () => {
  const exp = expected();
  const names = Object.keys(exp.files);
  assert.ok(names.length >= 5, `fixtures: ${names.join(', ')}`);
  for (const name of names) {
    const fromPath = describe(readPth(fixture(name)));
    assert.equal(fromPath, exp.files[name], name);
    assert.equal(
      describe(readPth(new Uint8Array(readFileSync(fixture(name))))),
      fromPath,
      `${name}: path and buffer agree`,
    );
  }
});

test('values by hand: dtypes, views of one storage, stride 0, scalars, empty', () => {
  const root = readPth(fixture('state-dict.pth')) as Obj;
  const sd = root.state_dict as Obj;
  const f32 = tensor(sd.f32);
  assert.is(f32.dtype, 'F32');
  assert.equal(f32.shape, [4, 6]);
  assert.equal(
    values(f32),
    range(24, (i) => i),
  );
  const t = tensor(sd['f32.t']);
  assert.equal(t.shape, [6, 4]);
  assert.equal(
    values(t),
    range(24, (i) => (i % 4) * 6 + Math.floor(i / 4)),
    'transposed view gathered',
  );
  const slice = tensor(sd['f32.slice']);
  assert.equal(slice.shape, [3, 3]);
  assert.equal(
    values(slice),
    range(9, (i) => (Math.floor(i / 3) + 1) * 6 + (i % 3) * 2),
    'offset + stride (6, 2)',
  );
  assert.equal(
    values(tensor(sd['f32.row'])),
    range(6, (i) => 12 + i),
  );
  const ex = tensor(sd['f32.expand']);
  assert.equal(ex.shape, [4, 3]);
  assert.equal(
    values(ex),
    range(12, (i) => i % 3),
    'stride 0',
  );
  assert.equal(tensor(sd['f32.scalar']).shape, []);
  assert.equal(values(tensor(sd['f32.scalar'])), [-1.25]);
  assert.equal(tensor(sd['f32.empty']).shape, [0, 3]);
  assert.ok(f32.data !== t.data && f32.data.buffer !== t.data.buffer, 'views do not share memory');

  const f16 = tensor(sd.f16);
  assert.ok(f16.data instanceof Float32Array);
  assert.equal(values(f16), [0, 1, -2.5, 65504, 2 ** -24, Infinity, -Infinity, 0.333251953125]);
  const bf = tensor(sd['bf16.cols']);
  assert.equal(bf.shape, [3, 2]);
  assert.equal(
    values(bf),
    [1, 3, 5, 7, 9, 11].map((c) => c / 8 - 0.5),
    'bf16 odd columns',
  );
  const i64 = tensor(sd.i64);
  assert.ok(i64.data instanceof BigInt64Array);
  assert.equal(values(i64), [0n, -1n, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n]);
  assert.equal(values(tensor(sd['i64.t'])), [0n, 3n, 1n, 4n, 2n, 5n]);
  assert.ok(tensor(sd.i32).data instanceof Int32Array);
  assert.ok(tensor(sd.i8).data instanceof Int8Array);
  assert.equal(values(tensor(sd.u8)), [0, 255]);
  assert.equal(values(tensor(sd.bool)), [1, 0, 1]);
  assert.equal(Object.keys(sd).slice(0, 4), ['f32', 'f32.t', 'f32.slice', 'f32.row'], 'state dict order kept');
});

test('Python objects: Parameter, shared tensor, nested containers, Namespace, numpy scalars, bytes', () => {
  const root = readPth(fixture('state-dict.pth')) as Obj;
  const param = tensor(root.param);
  assert.ok(param.requiresGrad, 'nn.Parameter keeps requires_grad');
  assert.equal(values(param), [0, 1, 2, 3, 4, 5]);
  assert.ok(!tensor((root.state_dict as Obj).f32).requiresGrad);
  assert.ok(root.shared_again === (root.state_dict as Obj).f32, 'the same tensor object pickled twice is one object');
  assert.equal(Object.keys(root.module_state as Obj), ['weight', 'bias']);
  const nested = root.nested as Obj;
  assert.is((nested.list as unknown[]).length, 6);
  assert.equal((nested.list as unknown[]).slice(0, 5), [1, 2.5, 'three', null, true]);
  assert.equal(nested.tuple, [4, -5, 2n ** 70n]);
  assert.is(nested['3'], 'int key');
  assert.equal(root.args, { arch: 'vit_tiny', lr: 0.0005, epochs: 3, crops: [0.4, 1], name: 'naïve ✓', flag: false });
  assert.equal(root.numpy, [1.5, -7, 0.25, true, 9]);
  assert.equal(root.bytes, Uint8Array.of(0, 255, 0x61, 0x62));
});

test('pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE) and DEFLATE entries read the same', () => {
  const base = describe(readPth(fixture('state-dict.pth')));
  assert.equal(describe(readPth(fixture('state-dict-protocol4.pth'))), base);
  assert.equal(describe(readPth(fixture('state-dict-deflate.pth'))), base);
});

test('records newer torch versions add (.data/version, serialization_id, byteorder) are understood or ignored', () => {
  const src = bufferSource(new Uint8Array(readFileSync(fixture('state-dict.pth'))));
  const dir = readZipDirectory(src);
  const inputs = dir.order
    .filter((e) => !e.name.endsWith('/version'))
    .map((e) => ({
      name: e.name.replace(/^state-dict\//, 'checkpoint/'),
      data: readZipEntry(src, dir, e, { maxBytes: 1 << 20 }),
    }));
  const text = (name: string, s: string): { name: string; data: Uint8Array } => ({
    name: `checkpoint/${name}`,
    data: Buffer.from(s),
  });
  const newer = concatBytes(
    storedZip([
      ...inputs,
      text('.format_version', '1'),
      text('.storage_alignment', '64'),
      text('byteorder', 'little'),
      text('.data/version', '3\n'),
      text('.data/serialization_id', '1234567890123456789012345678901234567890'),
    ]),
  );
  assert.equal(describe(readPth(newer)), describe(readPth(fixture('state-dict.pth'))));
});

test("torch's legacy (pre-1.6) format is refused with a clear message", () => {
  throwsPth(() => readPth(fixture('legacy.pth')), /legacy format.*not supported/);
});

test('a DINO checkpoint: student/teacher state dicts, optimizer with int keys, args, dino_loss', () => {
  const ck = readPth(fixture('dino-checkpoint.pth')) as Obj;
  assert.equal(Object.keys(ck).sort(), [
    'args',
    'dino_loss',
    'epoch',
    'fp16_scaler',
    'optimizer',
    'student',
    'teacher',
  ]);
  assert.is(ck.epoch, 3);
  const student = ck.student as Obj;
  assert.ok(
    Object.keys(student).every((k) => k.startsWith('module.')),
    "student keys carry DDP's module. prefix",
  );
  assert.ok(Object.keys(ck.teacher as Obj).every((k) => !k.startsWith('module.')));
  assert.equal(tensor(student['module.head.last_layer.weight_g']).shape, [8, 1]);
  assert.equal(
    values(tensor(student['module.head.last_layer.weight_v'])),
    range(32, (i) => i / 4 - 3),
  );
  const opt = ck.optimizer as Obj;
  assert.equal(
    Object.keys(opt.state as Obj),
    Array.from({ length: 11 }, (_, i) => String(i)),
  );
  assert.is((ck.args as Obj).arch, 'vit_tiny');
  assert.equal((ck.args as Obj).global_crops_scale, [0.4, 1]);
  assert.equal(
    values(tensor((ck.dino_loss as Obj).center)).map((x) => Math.round(Number(x) * 100)),
    range(8, (i) => i),
  );
});

test.run();
