import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PthTensor, readPth, serializePth, writePth } from '../../src/io/pth/index.js';
import { bufferSource, readZipDirectory, readZipEntry, DATA_ALIGNMENT } from '../../src/io/pth/zip.js';
import { packagePath } from '../../src/util/paths.js';
import { describe, fixture, haveTorch, python, throwsPth } from './pth-helpers.js';

const test = suite('pth write');
const dir = mkdtempSync(join(tmpdir(), 'protodino-pth-write-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

type Obj = Record<string, unknown>;
const f32 = (shape: number[], f: (i: number) => number, requiresGrad = false): PthTensor => {
  const n = shape.reduce((a, d) => a * d, 1);
  return new PthTensor(
    'F32',
    shape,
    Float32Array.from({ length: n }, (_, i) => f(i)),
    requiresGrad,
  );
};

/** Tensors of every dtype, a Parameter, a shared tensor, containers and scalars: no floats outside tensors. */
function weightsOnly(): Obj {
  const shared = f32([2, 3], (i) => i - 2.5);
  const sd: Obj = {
    'module.backbone.w': f32([3, 4], (i) => i / 4),
    'module.head.last_layer.weight_g': f32([5, 1], (i) => i + 1),
    'module.head.last_layer.weight_v': f32([5, 3], (i) => (i % 7) - 3),
    f64: new PthTensor('F64', [3], Float64Array.of(0.1, -1e300, 5e-324)),
    f16: new PthTensor('F16', [4], Float32Array.of(1, -2.5, 65504, 2 ** -24)),
    bf16: new PthTensor('BF16', [2, 2], Float32Array.of(1, -2.5, 3.140625, 2 ** -133)),
    f16bits: new PthTensor('F16', [2], Uint16Array.of(0x3c00, 0xc000)),
    i64: new PthTensor('I64', [4], BigInt64Array.of(0n, -1n, 2n ** 53n + 1n, -(2n ** 63n))),
    i64from32: new PthTensor('I64', [2], Int32Array.of(-7, 7)),
    i32: new PthTensor('I32', [2], Int32Array.of(-(2 ** 31), 2 ** 31 - 1)),
    i16: new PthTensor('I16', [2], Int16Array.of(-32768, 32767)),
    i8: new PthTensor('I8', [2], Int8Array.of(-128, 127)),
    u8: new PthTensor('U8', [2], Uint8Array.of(0, 255)),
    bool: new PthTensor('BOOL', [3], Uint8Array.of(1, 0, 1)),
    scalar: f32([], () => 7.25),
    empty: f32([0, 4], () => 0),
    shared,
  };
  return {
    student: sd,
    param: f32([2], (i) => i + 0.5, true),
    again: shared,
    epoch: 3,
    big: 2n ** 70n,
    negative: -123456789,
    list: [1, 'two', null, true, false, [shared], { deep: { deeper: [] } }],
    'naïve ✓': 'unicode ✓',
    optimizer: {
      state: new Map<number, unknown>([
        [0, { step: 10 }],
        [1, { step: 11 }],
      ]),
      param_groups: [{ params: [0, 1] }],
    },
    many: Array.from({ length: 2500 }, (_, i) => i), // more than one APPENDS batch
  };
}

function withFloats(): Obj {
  return {
    ...weightsOnly(),
    lr: 0.0005,
    negZero: -0,
    inf: Infinity,
    nan: NaN,
    args: { arch: 'vit_tiny', momentum_teacher: 0.996 },
  };
}

test('what we write reads back: values, dtypes, sharing, Parameters, containers', () => {
  const back = readPth(serializePth(withFloats())) as Obj;
  const sd = back.student as Obj;
  const input = weightsOnly().student as Obj;
  input.f16bits = new PthTensor('F16', [2], Float32Array.of(1, -2)); // written from raw bits 0x3c00, 0xc000
  assert.equal(describe(back.student), describe(input));
  assert.ok(
    sd.shared === back.again && (back.list as unknown[])[5] !== undefined,
    'one tensor written twice stays one object',
  );
  assert.equal(((back.list as unknown[])[5] as unknown[])[0], sd.shared);
  assert.ok((back.param as PthTensor).requiresGrad);
  assert.equal(Array.from((sd.i64from32 as PthTensor).data as BigInt64Array), [-7n, 7n]);
  assert.equal(Array.from((sd.f16bits as PthTensor).data as Float32Array), [1, -2]);
  assert.is(back.big, 2n ** 70n);
  assert.is(back.negative, -123456789);
  assert.equal(back.optimizer, { state: { 0: { step: 10 }, 1: { step: 11 } }, param_groups: [{ params: [0, 1] }] });
  assert.is(back.lr, 0.0005);
  assert.ok(Object.is(back.negZero, -0) && back.inf === Infinity && Number.isNaN(back.nan));
  assert.equal((back.many as number[]).length, 2500);
  assert.is((back.many as number[])[2499], 2499);
  assert.is(back['naïve ✓'], 'unicode ✓');
});

test('the archive is laid out as torch lays it out: records, STORED, data aligned to 64 bytes', () => {
  const bytes = serializePth(weightsOnly());
  const src = bufferSource(bytes);
  const d = readZipDirectory(src);
  const names = d.order.map((e) => e.name);
  assert.is(names[0], 'archive/data.pkl');
  assert.ok(
    names.includes('archive/byteorder') && names.includes('archive/version') && names.includes('archive/data/0'),
  );
  const text = (n: string): string => Buffer.from(readZipEntry(src, d, d.entries.get(n)!, { maxBytes: 64 })).toString();
  assert.is(text('archive/version'), '3\n');
  assert.is(text('archive/byteorder'), 'little');
  const dataStart = (b: Uint8Array, e: { localOffset: number }): number => {
    const v = new DataView(b.buffer, b.byteOffset);
    return e.localOffset + 30 + v.getUint16(e.localOffset + 26, true) + v.getUint16(e.localOffset + 28, true);
  };
  for (const e of d.order) {
    assert.is(e.method, 0, `${e.name} STORED`);
    assert.is(dataStart(bytes, e) % DATA_ALIGNMENT, 0, `${e.name} aligned`);
  }
  // torch's own files follow the same rule (this is what the writer imitates).
  const torchFile = new Uint8Array(readFileSync(fixture('dino-checkpoint.pth')));
  for (const e of readZipDirectory(bufferSource(torchFile)).order)
    assert.is(dataStart(torchFile, e) % DATA_ALIGNMENT, 0, `torch's ${e.name}`);
  assert.equal(serializePth(weightsOnly()), bytes, 'deterministic');
});

test('writePth is atomic: the file appears complete, a bad value leaves the old file and no temporary', () => {
  const path = join(dir, 'ckpt.pth');
  writePth(path, weightsOnly());
  assert.equal(new Uint8Array(readFileSync(path)), serializePth(weightsOnly()));
  writeFileSync(join(dir, 'marker'), 'x');
  throwsPth(() => writePth(path, { ok: f32([1], () => 1), bad: () => 1 }), /value at root\["bad"\] is a function/);
  assert.equal(new Uint8Array(readFileSync(path)), serializePth(weightsOnly()), 'old file untouched');
  assert.equal(readdirSync(dir).sort(), ['ckpt.pth', 'marker']);
  // A file system error stays what it is (not a PthError), and leaves nothing behind either.
  assert.throws(() => writePth(join(dir, 'no-such-dir', 'x.pth'), {}), /ENOENT/);
  assert.equal(readdirSync(dir).sort(), ['ckpt.pth', 'marker']);
});

test('values that cannot be saved are PthErrors naming where they are', () => {
  const cyc: Obj = { a: 1 };
  cyc.self = cyc;
  throwsPth(() => serializePth(cyc), /value at root\["self"\] contains itself/);
  let deep: unknown[] = [];
  const root = deep;
  for (let i = 0; i < 300; i++) {
    const next: unknown[] = [];
    deep.push(next);
    deep = next;
  }
  throwsPth(() => serializePth(root), /nested deeper than 200 levels/);
  throwsPth(() => serializePth({ u: undefined }), /root\["u"\] is undefined/);
  throwsPth(() => serializePth({ d: new Date(0) }), /root\["d"\] is a Date/);
  throwsPth(() => serializePth({ a: new Float32Array(3) }), /root\["a"\] is a Float32Array/);
  throwsPth(
    () => serializePth({ t: new PthTensor('F32', [2, 2], new Float32Array(3)) }),
    /tensor at root\["t"\]: shape \[2,2\] has 4 elements but the data has 3/,
  );
  throwsPth(
    () => serializePth({ t: { dtype: 'U16', shape: [1], data: new Uint16Array(1) } }),
    /dtype "U16" cannot be saved/,
  );
  throwsPth(
    () => serializePth({ t: new PthTensor('F32', [2], new Float64Array(2)) }),
    /F32 data must be a Float32Array, not a Float64Array/,
  );
  throwsPth(
    () => serializePth({ t: new PthTensor('BOOL', [1], Uint8Array.of(2)) }),
    /BOOL data must hold only 0 and 1/,
  );
  throwsPth(() => serializePth({ s: 'a\ud800' }), /string at root\["s"\] is not well-formed Unicode/);
  throwsPth(() => serializePth(new Map([[{}, 1]])), /dict keys must be strings, numbers or booleans/);
});

test('torch.load reads what we write (weights_only=False and True), value for value', () => {
  if (!haveTorch()) {
    console.log('  note: /usr/bin/python3 has no torch; skipped the torch.load round trip');
    return;
  }
  const full = join(dir, 'full.pth');
  const wo = join(dir, 'weights-only.pth');
  writePth(full, withFloats());
  writePth(wo, weightsOnly());
  const script = [
    'import importlib.util, json, sys, torch',
    'spec = importlib.util.spec_from_file_location("fx", sys.argv[1]); fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)',
    'full = torch.load(sys.argv[2], weights_only=False)',
    'wo = torch.load(sys.argv[3], weights_only=True)',
    'checks = {"shared": wo["again"] is wo["student"]["shared"], "param": type(wo["param"]).__name__,',
    '          "state_dict_type": type(wo["student"]).__name__, "int_keys": sorted(wo["optimizer"]["state"].keys()),',
    '          "storage_shared": wo["again"].data_ptr() == wo["list"][5][0].data_ptr()}',
    'print(json.dumps({"full": fx.describe(full), "wo": fx.describe(wo), "checks": checks}))',
  ].join('\n');
  const out = JSON.parse(python(script, [packagePath('scripts', 'make-pth-fixtures.py'), full, wo])) as Obj;
  assert.equal(out.full, describe(readPth(full)), 'torch.load(weights_only=False) sees what readPth sees');
  assert.equal(out.wo, describe(readPth(wo)), 'torch.load(weights_only=True) sees what readPth sees');
  assert.equal(out.checks, {
    shared: true,
    param: 'Parameter',
    state_dict_type: 'OrderedDict',
    int_keys: [0, 1],
    storage_shared: true,
  });
  // And what readPth sees is the input (the first test), so torch sees the input.
  assert.equal(out.wo, describe(readPth(serializePth(weightsOnly()))));
  assert.ok(existsSync(full) && existsSync(wo));
});

test.run();
