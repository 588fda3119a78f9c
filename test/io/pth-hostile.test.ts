// Damaged and hostile files: every one must end in a PthError, quickly, without a large allocation.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuMs } from '../helpers/check.js';
import { deflateRawSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PthError, readPth } from '../../src/io/pth/index.js';
import { unpickle, DEFAULT_PICKLE_LIMITS, type PickleHooks } from '../../src/io/pth/pickle.js';
import { bufferSource, crc32, readZipDirectory, readZipEntry } from '../../src/io/pth/zip.js';
import { archive, f32Bytes, fixture, Op, Pk, rawZip, rng, tensorOps, throwsPth } from './pth-helpers.js';

const test = suite('pth hostile');
const good = new Uint8Array(readFileSync(fixture('state-dict.pth')));

function timed(what: string, fn: () => void, ms = 2000): void {
  const t0 = cpuMs();
  fn();
  const took = cpuMs() - t0;
  assert.ok(took < ms, `${what} took ${took.toFixed(0)} ms of CPU`);
}

test('a zip truncated at every 1/20 of its length', () => {
  for (let k = 0; k < 20; k++) {
    const cut = good.subarray(0, Math.floor((good.length * k) / 20));
    timed(`cut ${k}/20`, () => throwsPth(() => readPth(cut), /too short|no end-of-central-directory|legacy/));
  }
  // Cut just before the end records: the directory is gone but a later scan must not misread.
  throwsPth(() => readPth(good.subarray(0, good.length - 1)), /no end-of-central-directory|runs past/);
  // read from a path, the message names the file
  const dir = mkdtempSync(join(tmpdir(), 'protodino-pth-'));
  try {
    const path = join(dir, 'cut.pth');
    writeFileSync(path, good.subarray(0, good.length >> 1));
    throwsPth(() => readPth(path), new RegExp(`^pth: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad central directories and entries beyond the file', () => {
  const eocd = good.length - 22;
  const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const mutate = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
    const b = good.slice();
    f(b, view(b));
    return b;
  };
  // torch writes a zip64 end record; find it to corrupt the fields the reader uses.
  const z64 = Buffer.from(good).lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
  assert.ok(z64 > 0 && eocd > z64, 'torch wrote a zip64 end record');
  throwsPth(
    () => readPth(mutate((_, v) => v.setBigUint64(z64 + 48, 2n ** 40n, true))),
    /central directory .* runs past/,
  );
  throwsPth(() => readPth(mutate((_, v) => v.setBigUint64(z64 + 32, 10n ** 7n, true))), /over the limit of 1000000/);
  throwsPth(() => readPth(mutate((_, v) => v.setBigUint64(z64 + 32, 5000n, true))), /cannot fit/);
  throwsPth(
    () => readPth(mutate((_, v) => v.setBigUint64(z64 + 48, v.getBigUint64(z64 + 48, true) - 1n, true))),
    /central directory record 0 .* missing or corrupt/,
  );
  throwsPth(() => readPth(mutate((b) => b.fill(0, z64, z64 + 4))), /no zip64 end record/);
  const cd = Number(view(good).getBigUint64(z64 + 48, true));
  throwsPth(
    () => readPth(mutate((_, v) => v.setUint32(cd + 42, 0x7fff_0000, true))),
    /header at \d+ is past the start of the central directory/,
  );
  throwsPth(
    () => readPth(mutate((_, v) => v.setUint32(cd + 20, 0x7fff_0000, true))),
    /stored but its sizes differ|runs past the start of the central directory/,
  );
  throwsPth(
    () =>
      readPth(
        mutate((_, v) => {
          v.setUint32(cd + 20, 0x7fff_0000, true);
          v.setUint32(cd + 24, 0x7fff_0000, true);
        }),
      ),
    /over the limit of 268435456|runs past the start of the central directory/,
  );
  throwsPth(
    () =>
      readPth(
        mutate((_, v) => {
          v.setUint32(cd + 20, 0x10_0000, true);
          v.setUint32(cd + 24, 0x10_0000, true);
        }),
      ),
    /data \[\d+, \d+\) runs past the start of the central directory/,
  );
  throwsPth(() => readPth(mutate((_, v) => v.setUint16(cd + 10, 12, true))), /compression method 12/);
  throwsPth(() => readPth(mutate((_, v) => v.setUint16(cd + 8, 1, true))), /encrypted/);
  throwsPth(() => readPth(mutate((_, v) => v.setUint32(cd + 16, 0xdeadbeef, true))), /CRC-32 mismatch/);
  throwsPth(() => readPth(mutate((b) => b.fill(0x41, 0, 4))), /no local header|local header names a different file/);
  throwsPth(
    () =>
      readPth(
        mutate((b) => {
          b[cd + 46] = 0xff;
        }),
      ),
    /not valid UTF-8/,
  );
  const dup = rawZip([
    { name: 'a/data.pkl', stored: Uint8Array.of(0x80, 2, 0x4e, 0x2e), method: 0, size: 4, crc: 0 },
    { name: 'a/data.pkl', stored: Uint8Array.of(0x80, 2, 0x4e, 0x2e), method: 0, size: 4, crc: 0 },
  ]);
  throwsPth(() => readPth(dup), /appears twice/);
  throwsPth(
    () => readPth(rawZip([{ name: 'data.pkl', stored: Uint8Array.of(0x4e, 0x2e), method: 0, size: 2, crc: 0 }])),
    /no <folder>\/data\.pkl/,
  );
  throwsPth(() => readPth(new Uint8Array(1000)), /no end-of-central-directory/);
});

test('zip bombs: a lying ratio, and a deflate stream larger than declared', () => {
  const bomb = deflateRawSync(new Uint8Array(64 << 20)); // 64 MiB of zeros in ~64 KiB
  const gib = tensorOps(new Pk().op(...Op.PROTO2), '0', 2 ** 28, 0, [1], [1])
    .op(Op.STOP)
    .bytes();
  const ratio = rawZip([
    { name: 'a/data.pkl', stored: gib, method: 0, size: gib.length, crc: crc32(gib) },
    { name: 'a/data/0', stored: bomb, method: 8, size: 2 ** 30, crc: 0 },
  ]);
  timed('ratio', () =>
    throwsPth(
      () => readPth(ratio, { maxBytes: 2 ** 40 }),
      /claims 1073741824 bytes from \d+ compressed \(ratio over 1100: a zip bomb\?\)/,
    ),
  );
  // Declares 4 KiB (plausible) but inflates to 64 MiB: stopped at the declared size.
  const small = tensorOps(new Pk().op(...Op.PROTO2), '0', 1024, 0, [1], [1])
    .op(Op.STOP)
    .bytes();
  const liar = rawZip([
    { name: 'a/data.pkl', stored: small, method: 0, size: small.length, crc: crc32(small) },
    { name: 'a/data/0', stored: bomb, method: 8, size: 4096, crc: 0 },
  ]);
  timed('liar', () => throwsPth(() => readPth(liar), /larger than its declared 4096 bytes/));
  // An honest deflate entry reads fine, and its pickle may be deflated too.
  const data = f32Bytes([1, 2, 3]);
  const pk3 = tensorOps(new Pk().op(...Op.PROTO2), '0', 3, 0, [3], [1])
    .op(Op.STOP)
    .bytes();
  const honest = rawZip([
    { name: 'a/data.pkl', stored: deflateRawSync(pk3), method: 8, size: pk3.length, crc: crc32(pk3) },
    { name: 'a/data/0', stored: deflateRawSync(data), method: 8, size: 12, crc: crc32(data) },
  ]);
  assert.equal(Array.from((readPth(honest) as { data: Float32Array }).data), [1, 2, 3]);
});

test('deep nesting, huge MARK stacks, stack floods, cycles, bad memo references', () => {
  const n = 100_000;
  const deep = new Uint8Array(2 + 2 * n);
  deep.set(Op.PROTO2);
  deep.fill(Op.EMPTY_LIST, 2, 2 + n);
  deep.fill(Op.APPEND, 2 + n, 1 + 2 * n); // n lists, n - 1 appends: one list n levels deep
  deep[1 + 2 * n] = Op.STOP;
  timed('deep lists', () => throwsPth(() => readPth(archive(deep)), /nesting deeper than 256 levels/));
  const marks = new Uint8Array(2 + n).fill(Op.MARK);
  marks.set(Op.PROTO2);
  timed('marks', () => throwsPth(() => readPth(archive(marks)), /more than 65536 nested MARKs/));
  const flood = new Uint8Array(2 + 1.2e6).fill(Op.NONE);
  flood.set(Op.PROTO2);
  timed('flood', () => throwsPth(() => readPth(archive(flood)), /stack over 1048576 items/));
  // A shared part is measured along the deepest path that reaches it, not only the first one seen:
  // root = [L0, M0] with L0 a chain 200 deep, and M0 a chain 100 deep whose innermost list holds L0.
  const put = (p: Pk, id: number): Pk => p.op(0x72, id & 0xff, id >>> 8, 0, 0); // LONG_BINPUT
  const get = (p: Pk, id: number): Pk => p.op(0x6a, id & 0xff, id >>> 8, 0, 0); // LONG_BINGET
  const shared = new Pk().op(...Op.PROTO2);
  for (let i = 0; i < 300; i++) put(shared.op(Op.EMPTY_LIST), i);
  const chain = (from: number, to: number): void => {
    for (let i = from + 1; i < to; i++) get(get(shared, i - 1), i).op(Op.APPEND, Op.POP);
  };
  chain(0, 200);
  chain(200, 300);
  get(get(shared, 299), 0).op(Op.APPEND, Op.POP);
  get(get(shared.op(Op.MARK), 0), 200).op(0x6c /* LIST */, Op.STOP);
  throwsPth(() => readPth(archive(shared.bytes())), /nesting deeper than 256/);
  const cycle = new Pk().op(...Op.PROTO2, Op.EMPTY_LIST, Op.BINPUT, 0, Op.BINGET, 0, Op.APPEND, Op.STOP).bytes();
  throwsPth(() => readPth(archive(cycle)), /contains itself/);
  const dictCycle = new Pk()
    .op(...Op.PROTO2, Op.EMPTY_DICT, Op.BINPUT, 0)
    .ustr('me')
    .op(Op.BINGET, 0, Op.SETITEM, Op.STOP)
    .bytes();
  throwsPth(() => readPth(archive(dictCycle)), /contains itself/);
  throwsPth(
    () => readPth(archive(new Pk().op(...Op.PROTO2, Op.BINGET, 5, Op.STOP).bytes())),
    /memo id 5 was never stored/,
  );
  throwsPth(
    () => readPth(archive(new Pk().op(...Op.PROTO2, 0x6a, 1, 2, 3, 4, Op.STOP).bytes())),
    /memo id 67305985 was never stored/,
  );
  throwsPth(() => readPth(archive(new Pk().op(...Op.PROTO2, Op.BINPUT, 0, Op.STOP).bytes())), /stack underflow/);
  throwsPth(() => readPth(archive(new Pk().op(...Op.PROTO2, Op.NONE).bytes())), /without a STOP/);
  throwsPth(
    () => readPth(archive(new Pk().op(...Op.PROTO2, 0x58, 0xff, 0xff, 0xff, 0x7f, Op.STOP).bytes())),
    /data ends inside an opcode/,
  );
  throwsPth(() => readPth(archive(new Pk().op(...Op.PROTO2, 0xff).bytes())), /unsupported or unknown opcode/);
  throwsPth(() => readPth(archive(new Pk().op(...Op.PROTO2, 0x8b, 0, 0, 1, 0).bytes())), /LONG4 of 65536 bytes/);
  throwsPth(
    () =>
      readPth(archive(new Pk().op(...Op.PROTO2, Op.EMPTY_DICT, Op.EMPTY_LIST, Op.NONE, Op.SETITEM, Op.STOP).bytes())),
    /dict key of type a list/,
  );
  throwsPth(
    () => readPth(archive(new Pk().op(...Op.PROTO2, Op.NONE, Op.NONE, Op.APPEND, Op.STOP).bytes())),
    /APPEND to None, not a list/,
  );

  // The memo cap, with small limits so the test need not build millions of entries.
  const hooks = {} as PickleHooks;
  const memoFlood = new Pk().op(...Op.PROTO2, Op.NONE);
  for (let i = 0; i < 50; i++) memoFlood.op(0x72, i, 0, 0, 0);
  throwsPth(
    () => unpickle(memoFlood.op(Op.STOP).bytes(), hooks, { ...DEFAULT_PICKLE_LIMITS, maxMemo: 20 }),
    /memo over 20 entries/,
  );
});

test('storages and tensors that do not fit: declared sizes, offsets, strides, absurd shapes, the budget', () => {
  const storage = { 0: f32Bytes([1, 2, 3, 4]) };
  const file = (
    numel: number,
    offset: number,
    size: number[],
    stride: number[],
    st: Record<string, Uint8Array> = storage,
  ): Uint8Array =>
    archive(
      tensorOps(new Pk().op(...Op.PROTO2), '0', numel, offset, size, stride)
        .op(Op.STOP)
        .bytes(),
      st,
    );
  assert.equal(Array.from((readPth(file(4, 1, [3], [1])) as { data: Float32Array }).data), [2, 3, 4]);
  // A 1 GiB storage declared in a file of a few hundred bytes.
  const gig = file(2 ** 28, 0, [2 ** 28], [1]);
  assert.ok(gig.length < 1024);
  timed('1 GiB declared', () =>
    throwsPth(() => readPth(gig), /declares 268435456 × F32 \(1073741824 bytes\) but archive\/data\/0 holds 16 bytes/),
  );
  throwsPth(() => readPth(file(4, 2, [3], [1])), /reach element 4, past the storage's 4/);
  throwsPth(() => readPth(file(4, 0, [2, 2], [2, 2])), /reach element 4/);
  throwsPth(() => readPth(file(4, 5, [0], [1])), /offset 5 is past the storage's 4 elements/);
  throwsPth(() => readPth(file(4, 0, [2], [1, 1])), /size has 1 dimensions but stride has 2/);
  throwsPth(() => readPth(file(4, 0, [2 ** 20, 2 ** 20], [0, 0])), /has 1099511627776 elements, over the limit/);
  throwsPth(() => readPth(file(4, 0, new Array(65).fill(1), new Array(65).fill(0))), /65 dimensions \(limit 64\)/);
  // Stride 0 can expand 4 bytes into gigabytes: within the element limit, stopped by the budget.
  timed('budget', () => throwsPth(() => readPth(file(4, 0, [30000, 30000], [0, 0])), /over the budget of \d+/));
  throwsPth(() => readPth(file(4, 0, [4], [1]), { maxBytes: 20 }), /over the budget of 20/);
  throwsPth(() => readPth(file(4, 0, [4], [1], {})), /storage "0" has no archive entry archive\/data\/0/);
  const twice = new Pk().op(...Op.PROTO2, Op.MARK);
  tensorOps(twice, '0', 4, 0, [4], [1]);
  tensorOps(twice, '0', 2, 0, [2], [1]);
  throwsPth(
    () => readPth(archive(twice.op(Op.TUPLE, Op.STOP).bytes(), storage)),
    /declared as 4 × F32 and again as 2 × F32/,
  );
});

test('archive records: version, byteorder (big-endian storages are swapped), CRC opt-out', () => {
  const pkl = tensorOps(new Pk().op(...Op.PROTO2), '0', 2, 0, [2], [1])
    .op(Op.STOP)
    .bytes();
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, 1.5, false);
  new DataView(be.buffer).setFloat32(4, -2, false);
  const withRecords = (records: Record<string, string>, data: Uint8Array): Uint8Array =>
    rawZip([
      { name: 'x/data.pkl', stored: pkl, method: 0, size: pkl.length, crc: crc32(pkl) },
      { name: 'x/data/0', stored: data, method: 0, size: data.length, crc: crc32(data) },
      ...Object.entries(records).map(([name, s]) => ({
        name: `x/${name}`,
        stored: Buffer.from(s),
        method: 0,
        size: Buffer.byteLength(s),
        crc: 0,
      })),
    ]);
  assert.equal(
    Array.from((readPth(withRecords({ byteorder: 'big', version: '3\n' }, be)) as { data: Float32Array }).data),
    [1.5, -2],
  );
  throwsPth(() => readPth(withRecords({ byteorder: 'middle' }, be)), /byteorder record is "middle"/);
  throwsPth(() => readPth(withRecords({ version: 'three' }, be)), /version record is "three"/);
  const corrupt = good.slice();
  const dir = readZipDirectory(bufferSource(corrupt));
  const e = dir.entries.get('state-dict/data/0')!;
  const data = readZipEntry(bufferSource(corrupt), dir, e, { maxBytes: 1e6 });
  const at = Buffer.from(corrupt).indexOf(Buffer.from(data));
  corrupt[at] ^= 1;
  throwsPth(() => readPth(corrupt), /entry "state-dict\/data\/0": CRC-32 mismatch/);
  readPth(corrupt, { verifyCrc: false });
});

test('seeded mutation fuzz: 3000 cases, each a clean parse or a PthError, none slow', () => {
  const r = rng(20240611);
  const int = (n: number): number => Math.floor(r() * n);
  const src = bufferSource(good);
  const dir = readZipDirectory(src);
  const pklEntry = dir.entries.get('state-dict/data.pkl')!;
  const pkl = readZipEntry(src, dir, pklEntry, { maxBytes: 1e6 });
  const storages: Record<string, Uint8Array> = {};
  for (const [name, e] of dir.entries) {
    const m = /^state-dict\/data\/(.+)$/.exec(name);
    if (m) storages[m[1]] = readZipEntry(src, dir, e, { maxBytes: 1e6 });
  }
  const mutate = (b: Uint8Array): Uint8Array => {
    let out = b.slice();
    const edits = 1 + int(4);
    for (let k = 0; k < edits; k++) {
      const kind = int(10);
      const at = int(out.length);
      if (kind < 5) out[at] = int(256);
      else if (kind < 7) out[at] ^= 1 << int(8);
      else if (kind === 7) out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + int(8))]);
      else if (kind === 8) out = Uint8Array.from([...out.subarray(0, at), int(256), ...out.subarray(at)]);
      else out[at] = [0x28, 0x2e, 0x52, 0x62, 0x71, 0x68, 0x74, 0x65, 0x75, 0x51, 0x93, 0x8a, 0xff, 0x00][int(14)];
    }
    return out;
  };
  let parsed = 0;
  let failed = 0;
  let slowest = 0;
  const messages = new Set<string>();
  const t0 = cpuMs();
  for (let i = 0; i < 3000; i++) {
    // Half mutate the whole file (structure, directory, CRC), half only the pickle, re-zipped with
    // valid CRCs, so mutations reach the interpreter instead of stopping at the checksum.
    const bytes = i % 2 === 0 ? mutate(good) : archive(mutate(pkl), storages, 'state-dict');
    const c0 = cpuMs();
    try {
      readPth(bytes, { verifyCrc: i % 4 === 0 });
      parsed++;
    } catch (e) {
      if (!(e instanceof PthError)) return assert.unreachable(`case ${i}: ${e instanceof Error ? e.stack : e}`);
      failed++;
      messages.add(
        e.message
          .replace(/[0-9]+/g, 'N')
          .replace(/"[^"]*"/g, 'S')
          .slice(0, 50),
      );
    }
    slowest = Math.max(slowest, cpuMs() - c0);
  }
  const ms = cpuMs() - t0;
  assert.ok(parsed > 100 && failed > 500, `both outcomes occur (parsed ${parsed}, failed ${failed})`);
  assert.ok(messages.size >= 30, `the fuzz reaches many checks (${messages.size} kinds of error)`);
  assert.ok(slowest < 500, `slowest case ${slowest.toFixed(0)} ms of CPU`);
  assert.ok(ms < 10000, `fuzz took ${ms.toFixed(0)} ms of CPU`);
});

test.run();
