import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuMs, rng } from '../helpers/check.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHECKSUM_KEY,
  getF32,
  int64ToInt32,
  payloadSha256,
  readSafetensors,
  readSafetensorsMetadata,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
  type SafeTensorInput,
  type SafetensorsFile,
} from '../../src/io/safetensors.js';
import { packagePath } from '../../src/util/paths.js';

const test = suite('safetensors');
const dir = mkdtempSync(join(tmpdir(), 'protodino-safetensors-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (s: string): number[] => [...Buffer.from(s, 'utf8')];
const le64 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, 0, 0, 0, 0];

/** A file from a header string (padded to 8 like the writer) and payload bytes; `length` overrides N. */
function file(header: string, payload: number[] | Uint8Array = [], length?: bigint): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const pad = (8 - (h.length % 8)) % 8;
  const out = new Uint8Array(8 + h.length + pad + payload.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length + pad), true);
  out.set(h, 8);
  out.fill(0x20, 8 + h.length, 8 + h.length + pad);
  out.set(payload, 8 + h.length + pad);
  return out;
}

function throwsSafetensors(fn: () => unknown, pattern: RegExp, tensor?: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw new Error(`expected a SafetensorsError, got ${e}`);
    assert.match(e.message, pattern);
    if (tensor !== undefined) assert.is(e.tensor, tensor, `error names the tensor (${e.message})`);
    return;
  }
  assert.unreachable(`expected a SafetensorsError matching ${pattern}`);
}

function sameData(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.unreachable(`${what}[${i}]: ${a[i]} !== ${b[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------

const EVERY_DTYPE: Record<string, SafeTensorInput> = {
  f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2.5, 3e-38, Infinity, -0, NaN) },
  f64: { dtype: 'F64', shape: [3], data: Float64Array.of(0.1, -1e300, 5e-324) },
  f16: { dtype: 'F16', shape: [5], data: Float32Array.of(1, -2.5, 65504, 2 ** -24, -Infinity) },
  bf16: { dtype: 'BF16', shape: [4], data: Float32Array.of(1, -2.5, 3.3895313892515355e38, 2 ** -133) },
  i32: { dtype: 'I32', shape: [4], data: Int32Array.of(0, -1, 2 ** 31 - 1, -(2 ** 31)) },
  u32: { dtype: 'U32', shape: [2], data: Uint32Array.of(0, 2 ** 32 - 1) },
  i64: { dtype: 'I64', shape: [4], data: BigInt64Array.of(0n, -1n, 2n ** 53n + 1n, -(2n ** 63n)) },
  u64: { dtype: 'U64', shape: [2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) },
  i16: { dtype: 'I16', shape: [2], data: Int16Array.of(-32768, 32767) },
  u16: { dtype: 'U16', shape: [2], data: Uint16Array.of(0, 65535) },
  i8: { dtype: 'I8', shape: [2], data: Int8Array.of(-128, 127) },
  u8: { dtype: 'U8', shape: [1, 3], data: Uint8Array.of(0, 128, 255) },
  mask: { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
  scalar: { dtype: 'F32', shape: [], data: Float32Array.of(7.25) },
  empty: { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
};

function checkEveryDtype(f: SafetensorsFile): void {
  assert.is(f.tensors.size, Object.keys(EVERY_DTYPE).length);
  for (const [name, t] of Object.entries(EVERY_DTYPE)) {
    const got = f.tensors.get(name);
    assert.ok(got, name);
    assert.is(got!.dtype, t.dtype, name);
    assert.equal(got!.shape, t.shape, name);
    const expectedType = t.dtype === 'F16' || t.dtype === 'BF16' ? Float32Array : t.data.constructor;
    assert.ok(got!.data instanceof expectedType, `${name} decodes to ${expectedType.name}`);
    sameData(got!.data, t.data, name); // every value above is exact in its dtype
  }
}

test('round trip of every dtype, in memory and through a file', () => {
  const bytes = serializeSafetensors(EVERY_DTYPE, { epoch: '3', note: 'ünïcode ✓' });
  const a = readSafetensors(bytes, { verify: true });
  checkEveryDtype(a);
  assert.equal(a.metadata, { epoch: '3', note: 'ünïcode ✓', [CHECKSUM_KEY]: payloadSha256(bytes) });

  const path = join(dir, 'every.safetensors');
  writeSafetensors(path, new Map(Object.entries(EVERY_DTYPE)), { epoch: '3', note: 'ünïcode ✓' });
  assert.equal(new Uint8Array(readFileSync(path)), bytes, 'file and in-memory bytes agree');
  checkEveryDtype(readSafetensors(path, { verify: true }));
  assert.is(payloadSha256(path), payloadSha256(bytes));
});

test('F16/BF16 round to nearest even like PyTorch; raw bits can be written too', () => {
  const f = readSafetensors(
    serializeSafetensors({
      h: {
        dtype: 'F16',
        shape: [6],
        data: Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -25, 3 * 2 ** -25),
      },
      b: { dtype: 'BF16', shape: [3], data: Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN) },
      raw: { dtype: 'F16', shape: [2], data: Uint16Array.of(0x3c00, 0xc000) },
    }),
  );
  sameData(f.tensors.get('h')!.data, [1, 1 + 2 ** -9, 65504, Infinity, 0, 2 ** -23], 'f16');
  sameData(f.tensors.get('b')!.data, [1, 1 + 2 ** -6, NaN], 'bf16');
  sameData(f.tensors.get('raw')!.data, [1, -2], 'raw f16');
});

test('exact bytes of files built by hand from the spec', () => {
  assert.equal(serializeSafetensors({}, {}, { checksum: false }), Uint8Array.from([...le64(8), ...ascii('{}      ')]));

  const header1 =
    '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  assert.is(header1.length, 132);
  const expected1 = Uint8Array.from([
    ...le64(136),
    ...ascii(header1),
    ...ascii('    '),
    0x00,
    0x00,
    0x80,
    0x3f,
    0x00,
    0x00,
    0x00,
    0xc0, // 1.0f, -2.0f
    1,
    2,
    3,
  ]);
  const written1 = serializeSafetensors(
    {
      b: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
      a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, -2) },
    },
    { k: 'v' },
    { checksum: false },
  );
  assert.equal(written1, expected1);

  // Data is laid out by descending dtype alignment (I64, F64, BF16, U8), names only break ties.
  const header2 =
    '{"m":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"z":{"dtype":"F64","shape":[],"data_offsets":[8,16]},' +
    '"a":{"dtype":"BF16","shape":[1,1],"data_offsets":[16,18]},"b":{"dtype":"U8","shape":[2],"data_offsets":[18,20]}}';
  assert.is(header2.length, 219);
  const expected2 = Uint8Array.from([
    ...le64(224),
    ...ascii(header2),
    ...ascii('     '),
    0xfe,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff, // -2n
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0xe0,
    0xbf, // -0.5
    0xc0,
    0x3f, // bf16 1.5
    7,
    255,
  ]);
  const written2 = serializeSafetensors(
    {
      a: { dtype: 'BF16', shape: [1, 1], data: Float32Array.of(1.5) },
      b: { dtype: 'U8', shape: [2], data: Uint8Array.of(7, 255) },
      m: { dtype: 'I64', shape: [1], data: BigInt64Array.of(-2n) },
      z: { dtype: 'F64', shape: [], data: Float64Array.of(-0.5) },
    },
    {},
    { checksum: false },
  );
  assert.equal(written2, expected2);

  const back = readSafetensors(expected2);
  sameData(back.tensors.get('m')!.data, [-2n], 'm');
  sameData(back.tensors.get('z')!.data, [-0.5], 'z');
  sameData(back.tensors.get('a')!.data, [1.5], 'a');
  sameData(back.tensors.get('b')!.data, [7, 255], 'b');
  assert.equal(back.tensors.get('z')!.shape, []);
  assert.equal(back.metadata, {});
});

test('reads any header order, unknown entry fields, escapes and null metadata', () => {
  const f = readSafetensors(
    file(
      '{"b\\u00e9\\n":{"data_offsets":[4,6],"dtype":"U8","shape":[2],"extra":{"x":[1,{"y":null}]}},' +
        '"__metadata__":null,"a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}',
      [0, 0, 0x80, 0x3f, 9, 8],
    ),
  );
  assert.equal([...f.tensors.keys()], ['a', 'bé\n']);
  sameData(f.tensors.get('a')!.data, [1], 'a');
  sameData(f.tensors.get('bé\n')!.data, [9, 8], 'b');
  assert.equal(f.metadata, {});
});

test('a file made with PyTorch: values, checksum, and byte-identical output from our writer', () => {
  const path = packagePath('test', 'fixtures', 'safetensors', 'torch-dtypes.safetensors');
  const f = readSafetensors(path, { verify: true });
  assert.is(f.metadata.format, 'pt');
  sameData(f.tensors.get('i64')!.data, [0n, -1n, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n], 'i64');
  sameData(f.tensors.get('f64')!.data, [0.1, -1e300, 5e-324, Math.E, Infinity], 'f64');
  sameData(f.tensors.get('i32')!.data, [0, -1, 2 ** 31 - 1, -(2 ** 31), 7, 42], 'i32');
  assert.equal(f.tensors.get('i32')!.shape, [2, 3]);
  sameData(f.tensors.get('i16')!.data, [-32768, 32767, 5], 'i16');
  sameData(f.tensors.get('i8')!.data, [-128, 127, 0], 'i8');
  sameData(f.tensors.get('u8')!.data, [0, 1, 255], 'u8');
  sameData(f.tensors.get('mask')!.data, [1, 0, 1, 1], 'mask');
  sameData(getF32(f, 'head.last_layer.weight_v', [2, 3]), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], 'weight_v');
  assert.equal(f.tensors.get('empty')!.shape, [0, 4]);
  sameData(f.tensors.get('scalar')!.data, [3.5], 'scalar');
  sameData(f.tensors.get('naïve ✓')!.data, [9], 'unicode name');
  // Spot values of torch's casts (HALF_CASES in the script: 65519, 65520, 2^-25, 3·2^-25 at 7..10 and 17, 18).
  const h = f.tensors.get('values.f16')!.data;
  sameData([h[7], h[8], h[17], h[18]], [65504, Infinity, 0, 2 ** -23], 'torch f16');

  // Re-encode torch's f32 values ourselves: identical bytes mean identical F16/BF16 rounding and layout.
  const values = getF32(f, 'values.f32');
  const tensors: Record<string, SafeTensorInput> = {};
  for (const [name, t] of f.tensors) tensors[name] = t;
  tensors['values.f16'] = { dtype: 'F16', shape: [values.length], data: values };
  tensors['values.bf16'] = { dtype: 'BF16', shape: [values.length], data: values };
  assert.equal(serializeSafetensors(tensors, f.metadata), new Uint8Array(readFileSync(path)));
});

// ---------------------------------------------------------------------------------------------
// Malformed input

const T4 = [0, 0, 0x80, 0x3f]; // one f32
const entry = (dtype: string, shape: string, offsets: string): string =>
  `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;

test('length prefix: too short, too large, past the end', () => {
  throwsSafetensors(() => readSafetensors(new Uint8Array(5)), /5 bytes, too short/);
  throwsSafetensors(() => readSafetensors(file('{}', [], 2n ** 40n)), /over the 100000000-byte limit/);
  throwsSafetensors(() => readSafetensors(file('{}', [], 2n ** 64n - 1n)), /over the 100000000-byte limit/);
  throwsSafetensors(() => readSafetensors(file('{}', [], 100_000_000n)), /runs past the end of the 16-byte input/);
  throwsSafetensors(() => readSafetensors(file('{}', [], 9n)), /runs past the end/);
  const path = join(dir, 'short.safetensors');
  writeFileSync(path, file('{}', [], 1000n));
  throwsSafetensors(() => readSafetensors(path), /runs past the end/);
  // read from a path, the message names the file
  throwsSafetensors(
    () => readSafetensors(path),
    new RegExp(`^safetensors: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*runs past the end`),
  );
});

test('header text: UTF-8, start, JSON syntax, nesting', () => {
  const bad = file('{"a":1}');
  bad[10] = 0xff;
  throwsSafetensors(() => readSafetensors(bad), /not valid UTF-8/);
  throwsSafetensors(() => readSafetensors(file(' {}')), /does not start with '\{'/);
  throwsSafetensors(() => readSafetensors(file('\ufeff{}')), /does not start with '\{'/);
  throwsSafetensors(() => readSafetensors(file('[]')), /does not start with '\{'/);
  throwsSafetensors(() => readSafetensors(file('', [])), /does not start with '\{'/);
  throwsSafetensors(() => readSafetensors(file('{"a":')), /not valid JSON/);
  throwsSafetensors(() => readSafetensors(file('{} x')), /not valid JSON: unexpected text after/);
  throwsSafetensors(() => readSafetensors(file("{'a':1}")), /not valid JSON/);
  throwsSafetensors(() => readSafetensors(file('{"a\u0001":1}')), /not valid JSON: control character/);
  throwsSafetensors(() => readSafetensors(file('{"\\ud800":1}')), /not valid JSON: lone leading surrogate/);
  const deep = `{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":${'['.repeat(100000)}${']'.repeat(100000)}}}`;
  throwsSafetensors(() => readSafetensors(file(deep)), /nesting deeper than 32/);
});

test('tensor entries: object, dtype, shape, offsets', () => {
  const one = (e: string, payload: number[] = T4): Uint8Array => file(`{"t":${e}}`, payload);
  throwsSafetensors(() => readSafetensors(one('3')), /entry is 3, not an object/, 't');
  throwsSafetensors(() => readSafetensors(one('{"shape":[1],"data_offsets":[0,4]}')), /missing "dtype"/, 't');
  throwsSafetensors(() => readSafetensors(one('{"dtype":"F32","data_offsets":[0,4]}')), /missing "shape"/, 't');
  throwsSafetensors(() => readSafetensors(one('{"dtype":"F32","shape":[1]}')), /missing "data_offsets"/, 't');
  throwsSafetensors(
    () => readSafetensors(one(entry('"F8_E4M3"', '[4]', '[0,4]'))),
    /unknown or unsupported dtype "F8_E4M3"/,
    't',
  );
  throwsSafetensors(
    () => readSafetensors(one(entry('"Q4"', '[1]', '[0,4]'))),
    /unknown or unsupported dtype "Q4"/,
    't',
  );
  throwsSafetensors(
    () => readSafetensors(one(entry('"toString"', '[1]', '[0,4]'))),
    /unknown or unsupported dtype/,
    't',
  );
  throwsSafetensors(() => readSafetensors(one(entry('4', '[1]', '[0,4]'))), /dtype is 4, not a string/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '1', '[0,4]'))), /shape is 1, not an array/, 't');
  throwsSafetensors(
    () => readSafetensors(one(entry('"F32"', '[-1]', '[0,4]'))),
    /shape\[0\] is -1, not a non-negative integer/,
    't',
  );
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1,1.5]', '[0,4]'))), /shape\[1\] is 1.5/, 't');
  throwsSafetensors(
    () => readSafetensors(one(entry('"F32"', '[1.0]', '[0,4]'))),
    /shape\[0\] is 1.0, not a non-negative integer/,
    't',
  );
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1e0]', '[0,4]'))), /shape\[0\]/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '["1"]', '[0,4]'))), /shape\[0\] is "1"/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1152921504606846976]', '[0,4]'))), /shape\[0\]/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1]', '[0]'))), /not a \[begin, end\] pair/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1]', '[0,4,8]'))), /not a \[begin, end\] pair/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1]', '[-4,0]'))), /data_offsets\[0\] is -4/, 't');
  throwsSafetensors(() => readSafetensors(one(entry('"F32"', '[1]', '[4,0]'))), /\[4, 0\] end before they begin/, 't');
  throwsSafetensors(
    () => readSafetensors(one(entry('"F32"', '[1]', '[4,8]'))),
    /\[4, 8\] are out of range of the 4-byte data buffer/,
    't',
  );
  throwsSafetensors(
    () => readSafetensors(one(entry('"F32"', '[2]', '[0,4]'))),
    /shape \[2\] × 4 bytes \(F32\) is 8 bytes but data_offsets \[0, 4\] span 4/,
    't',
  );
  throwsSafetensors(() => readSafetensors(one(entry('"F64"', '[1]', '[0,4]'))), /span 4/, 't');
  throwsSafetensors(
    () => readSafetensors(one(entry('"F32"', '[4294967296,4294967296,4294967296]', '[0,4]'))),
    /span 4/,
    't',
  );
  throwsSafetensors(
    () => readSafetensors(one('{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}')),
    /duplicate field "dtype"/,
    't',
  );
});

test('layout of the data buffer: overlap, gap, trailing bytes', () => {
  const eight = [...T4, ...T4];
  throwsSafetensors(
    () => readSafetensors(file(`{"a":${entry('"F32"', '[2]', '[0,8]')},"b":${entry('"F32"', '[1]', '[4,8]')}}`, eight)),
    /\[4, 8\] overlap those of "a" \[0, 8\]/,
    'b',
  );
  throwsSafetensors(
    () => readSafetensors(file(`{"a":${entry('"F32"', '[1]', '[0,4]')},"b":${entry('"F32"', '[1]', '[0,4]')}}`, eight)),
    /overlap/,
  );
  throwsSafetensors(
    () => readSafetensors(file(`{"b":${entry('"F32"', '[1]', '[4,8]')}}`, eight)),
    /data bytes \[0, 4\) before it belong to no tensor/,
    'b',
  );
  throwsSafetensors(
    () => readSafetensors(file(`{"a":${entry('"F32"', '[1]', '[0,4]')}}`, eight)),
    /last 4 bytes of the data buffer belong to no tensor/,
  );
  throwsSafetensors(() => readSafetensors(file('{}', T4)), /last 4 bytes/);
});

test('names and metadata: duplicates, reserved, non-strings', () => {
  throwsSafetensors(
    () => readSafetensors(file(`{"a":${entry('"U8"', '[0]', '[0,0]')},"a":${entry('"U8"', '[0]', '[0,0]')}}`)),
    /duplicate tensor name/,
    'a',
  );
  throwsSafetensors(
    () => readSafetensors(file('{"__metadata__":{"k":"v","k":"w"}}')),
    /duplicate __metadata__ key "k"/,
  );
  throwsSafetensors(
    () => readSafetensors(file('{"__metadata__":{},"__metadata__":{}}')),
    /duplicate "__metadata__" in header/,
  );
  throwsSafetensors(
    () => readSafetensors(file('{"__metadata__":{"epoch":3}}')),
    /__metadata__\["epoch"\] is 3, not a string/,
  );
  throwsSafetensors(() => readSafetensors(file('{"__metadata__":{"k":null}}')), /__metadata__\["k"\] is null/);
  throwsSafetensors(
    () => readSafetensors(file('{"__metadata__":["a"]}')),
    /__metadata__ is an array, not an object of strings/,
  );
  const proto = readSafetensors(file('{"__metadata__":{"__proto__":"x","constructor":"y"}}'));
  assert.is(Object.getPrototypeOf(proto.metadata), Object.prototype);
  assert.is(proto.metadata.__proto__ as unknown, 'x');
  assert.is(proto.metadata.constructor as unknown, 'y');
});

test('checksum: stored by default, flipped data byte caught, verify modes', () => {
  const bytes = serializeSafetensors(EVERY_DTYPE);
  const flipped = bytes.slice();
  flipped[flipped.length - 20] ^= 0x10;
  throwsSafetensors(() => readSafetensors(flipped), /checksum mismatch/);
  throwsSafetensors(() => readSafetensors(flipped, { verify: true }), /checksum mismatch/);
  readSafetensors(flipped, { verify: false }); // skipping the check reads the damaged values
  const path = join(dir, 'flipped.safetensors');
  writeFileSync(path, flipped);
  throwsSafetensors(() => readSafetensors(path, { verify: true }), /checksum mismatch/);

  const plain = serializeSafetensors(EVERY_DTYPE, {}, { checksum: false });
  assert.not.ok(CHECKSUM_KEY in readSafetensors(plain).metadata);
  throwsSafetensors(() => readSafetensors(plain, { verify: true }), /no __metadata__.payload_sha256 to verify/);

  // A stale checksum passed back in as metadata is replaced, or dropped when checksums are off.
  const stale = { [CHECKSUM_KEY]: '0'.repeat(64) };
  readSafetensors(serializeSafetensors(EVERY_DTYPE, stale), { verify: true });
  assert.not.ok(
    CHECKSUM_KEY in readSafetensors(serializeSafetensors(EVERY_DTYPE, stale, { checksum: false })).metadata,
  );
});

test('writer rejects what it cannot write faithfully', () => {
  const w = (t: SafeTensorInput, meta: Record<string, string> = {}): Uint8Array => serializeSafetensors({ t }, meta);
  throwsSafetensors(
    () => w({ dtype: 'F32', shape: [2], data: Float64Array.of(1, 2) }),
    /F32 data must be a Float32Array, not a Float64Array/,
    't',
  );
  throwsSafetensors(
    () => w({ dtype: 'F32', shape: [3], data: Float32Array.of(1, 2) }),
    /shape \[3\] has 3 elements but the data has 2/,
    't',
  );
  throwsSafetensors(
    () => w({ dtype: 'F32', shape: [-2], data: Float32Array.of(1, 2) }),
    /not a list of non-negative integers/,
    't',
  );
  throwsSafetensors(
    () => w({ dtype: 'F8' as 'F32', shape: [1], data: Float32Array.of(1) }),
    /unknown or unsupported dtype "F8"/,
    't',
  );
  throwsSafetensors(
    () => w({ dtype: 'F16', shape: [1], data: Int16Array.of(1) }),
    /Float32Array \(values\) or a Uint16Array/,
    't',
  );
  throwsSafetensors(() => w({ dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 2) }), /only 0 and 1/, 't');
  throwsSafetensors(
    () => w({ dtype: 'F32', shape: [1], data: [1] as unknown as Float32Array }),
    /not a typed array/,
    't',
  );
  throwsSafetensors(
    () => w({ dtype: 'U8', shape: [0], data: new Uint8Array(0) }, { n: 1 as unknown as string }),
    /__metadata__\["n"\] must be a string/,
  );
  throwsSafetensors(
    () => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }),
    /reserved/,
    '__metadata__',
  );
  throwsSafetensors(
    () => serializeSafetensors({ 'a\ud800': { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }),
    /well-formed/,
  );
  const widened = readSafetensors(w({ dtype: 'I64', shape: [2], data: Int32Array.of(-7, 2 ** 31 - 1) }));
  sameData(widened.tensors.get('t')!.data, [-7n, 2n ** 31n - 1n], 'I64 from Int32Array');
});

test('atomic write: replaces the old file, leaves no temporary, keeps the old file on failure', () => {
  const path = join(dir, 'ckpt.safetensors');
  writeSafetensors(path, { w: { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
  writeSafetensors(path, { w: { dtype: 'F32', shape: [1], data: Float32Array.of(2) } });
  sameData(getF32(readSafetensors(path), 'w'), [2], 'second write wins');
  assert.throws(
    () => writeSafetensors(path, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(3) } }),
    (e: unknown) => e instanceof SafetensorsError,
  );
  sameData(getF32(readSafetensors(path), 'w'), [2], 'failed write left the old file');
  assert.throws(
    () => writeSafetensors(join(dir, 'no-such-dir', 'x.safetensors'), {}),
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
  assert.equal(
    readdirSync(dir).filter((n) => n.includes('.tmp-')),
    [],
  );
});

test('helpers: getF32 and int64ToInt32 check what they narrow', () => {
  const f = readSafetensors(serializeSafetensors(EVERY_DTYPE));
  throwsSafetensors(() => getF32(f, 'nope'), /not in the file/, 'nope');
  throwsSafetensors(() => getF32(f, 'i32'), /is I32, not a float tensor/, 'i32');
  throwsSafetensors(() => getF32(f, 'f32', [3, 2]), /has shape \[2,3\], expected \[3,2\]/, 'f32');
  sameData(int64ToInt32(BigInt64Array.of(-(2n ** 31n), 5n, 2n ** 31n - 1n)), [-(2 ** 31), 5, 2 ** 31 - 1], 'narrowed');
  throwsSafetensors(
    () => int64ToInt32(f.tensors.get('i64')!.data as BigInt64Array, 'i64'),
    /value 9007199254740993 at index 2 does not fit in int32/,
    'i64',
  );
});

// ---------------------------------------------------------------------------------------------
// Seeded mutation fuzz: every outcome is a clean parse or a SafetensorsError.

test('mutation fuzz: 3000 damaged files parse cleanly or fail with SafetensorsError', () => {
  const base = serializeSafetensors(
    {
      'backbone.w': { dtype: 'F32', shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
      'head.v': { dtype: 'F16', shape: [3], data: Float32Array.of(0.5, -1, 2) },
      step: { dtype: 'I64', shape: [], data: BigInt64Array.of(12n) },
      mask: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
      empty: { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
    },
    { epoch: '7', args: '{"lr":0.0005}' },
  );
  const n = Number(new DataView(base.buffer).getBigUint64(0, true));
  const r = rng(20241018);
  const int = (k: number): number => Math.floor(r() * k);
  const SPECIAL = ascii('"{}[],:-0123456789e.\\ u').concat([0, 0x80, 0xc3, 0xff, 0x7f]);
  const setLength = (b: Uint8Array, v: bigint): void => new DataView(b.buffer, b.byteOffset).setBigUint64(0, v, true);

  function mutate(src: Uint8Array): Uint8Array {
    let b = src.slice();
    const headerPos = (): number => 8 + int(Math.max(1, Math.min(n, b.length - 8)));
    switch (int(9)) {
      case 0:
        b[int(b.length)] ^= 1 << int(8);
        break;
      case 1:
        b[headerPos()] = int(256);
        break;
      case 2:
        b[headerPos()] = SPECIAL[int(SPECIAL.length)];
        break;
      case 3:
        b = b.slice(0, int(b.length));
        break;
      case 4:
        b = Uint8Array.from([...b, ...Array.from({ length: 1 + int(16) }, () => int(256))]);
        break;
      case 5:
      case 6: {
        const at = headerPos();
        const len = 1 + int(12);
        b =
          int(2) === 0
            ? Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + len)])
            : Uint8Array.from([...b.subarray(0, at), ...b.subarray(at, at + len), ...b.subarray(at)]);
        // Half the time fix the length so the damage reaches the JSON and layout checks.
        if (int(2) === 0 && b.length >= 8) setLength(b, BigInt(n + (b.length - src.length)));
        break;
      }
      case 7: {
        if (b.length < 8) break;
        const choices = [
          0n,
          1n,
          BigInt(n - 1),
          BigInt(n + 1),
          BigInt(n + 8),
          BigInt(b.length),
          2n ** 32n,
          2n ** 63n,
          BigInt(int(2 ** 30)),
        ];
        setLength(b, choices[int(choices.length)]);
        break;
      }
      default: {
        const digits: number[] = [];
        for (let i = 8; i < 8 + n && i < b.length; i++) if (b[i] >= 0x30 && b[i] <= 0x39) digits.push(i);
        if (digits.length) b[digits[int(digits.length)]] = 0x30 + int(10);
      }
    }
    return b;
  }

  const messages = new Set<string>();
  let parsed = 0;
  let failed = 0;
  const t0 = cpuMs();
  const path = join(dir, 'fuzz.safetensors');
  for (let i = 0; i < 3000; i++) {
    let b = mutate(base);
    if (int(4) === 0) b = mutate(b);
    const verify = [undefined, true, false][int(3)];
    const outcome = (read: () => unknown): string => {
      try {
        read();
        return 'ok';
      } catch (e) {
        if (!(e instanceof SafetensorsError)) assert.unreachable(`case ${i}: ${e instanceof Error ? e.stack : e}`);
        return (e as Error).message;
      }
    };
    const fromBuffer = outcome(() => readSafetensors(b, { verify }));
    if (fromBuffer === 'ok') parsed++;
    else {
      failed++;
      messages.add(
        fromBuffer
          .replace(/checksum mismatch.*/, 'checksum')
          .replace(/[0-9]+/g, 'N')
          .replace(/"[^"]*"/g, 'S')
          .slice(0, 60),
      );
    }
    if (i % 10 === 0) {
      writeFileSync(path, b);
      // the same outcome, the file's message naming the file
      assert.is(
        outcome(() => readSafetensors(path, { verify })).replace(`${path}: `, ''),
        fromBuffer,
        `case ${i}: file and buffer agree`,
      );
    }
  }
  const ms = cpuMs() - t0;
  assert.ok(parsed > 50 && failed > 1000, `both outcomes occur (parsed ${parsed}, failed ${failed})`);
  assert.ok(messages.size >= 20, `the fuzz reaches many checks (${messages.size} kinds of error)`);
  assert.ok(ms < 8000, `fuzz took ${ms.toFixed(0)} ms of CPU`);
});

test('readSafetensorsMetadata gives the header metadata alone, and a truncated file still fails naming it', () => {
  const path = join(dir, 'meta-only.safetensors');
  writeSafetensors(path, { w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(1.5) } }, { note: 'kept' });
  const meta = readSafetensorsMetadata(path);
  assert.is(meta.note, 'kept');
  assert.is(meta[CHECKSUM_KEY], payloadSha256(path));
  const bytes = readFileSync(path);
  const torn = join(dir, 'meta-only-torn.safetensors');
  writeFileSync(torn, bytes.subarray(0, bytes.length - 4));
  assert.throws(
    () => readSafetensorsMetadata(torn),
    (e: unknown) => e instanceof SafetensorsError && /out of range/.test(e.message) && e.message.includes(torn),
  );
});

test.run();
