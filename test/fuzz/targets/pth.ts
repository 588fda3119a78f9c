// PyTorch .pth (zip + pickle): readPth on mutated torch-written fixtures and hand-made archives.
// Besides whole-file damage, cases mutate only the pickle, only the central directory, only a
// storage, or a DEFLATE re-zip, and write the archive again with correct CRCs where that is the
// point, so the damage reaches the pickle machine and the tensor checks, not just the zip CRC.
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { PthError, PthTensor, readPth, PTH_DTYPES, MAX_RANK, type ReadPthOptions } from '../../../src/io/pth/index.js';
import {
  bufferSource,
  concatBytes,
  crc32,
  readZipDirectory,
  readZipEntry,
  storedZip,
} from '../../../src/io/pth/zip.js';
import { archive, f32Bytes, fixture, Op, Pk, rawZip, tensorOps } from '../../io/pth-helpers.js';
import { mutate, numel, type Field, type Fuzz } from '../mutate.js';
import { MiB, type FuzzTarget } from '../target.js';

interface Seed {
  file: Uint8Array;
  folder: string;
  pkl: Uint8Array;
  /** Every other entry, by name relative to the folder (data/0, version, byteorder ...). */
  entries: { name: string; data: Uint8Array }[];
  fields: Field[];
}

/** The zip's end records and central directory fields, for "set a size field to a huge value". */
function zipFields(b: Uint8Array): Field[] {
  const fields: Field[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const eocd = b.length - 22;
  fields.push(
    { at: eocd + 10, size: 2, le: true, what: 'EOCD entry count' },
    { at: eocd + 12, size: 4, le: true, what: 'EOCD directory size' },
    { at: eocd + 16, size: 4, le: true, what: 'EOCD directory offset' },
    { at: eocd + 20, size: 2, le: true, what: 'EOCD comment length' },
  );
  let cd = v.getUint32(eocd + 16, true);
  const z64 =
    eocd - 20 >= 0 && v.getUint32(eocd - 20, true) === 0x07064b50 ? Number(v.getBigUint64(eocd - 20 + 8, true)) : -1;
  if (z64 >= 0) {
    fields.push(
      { at: eocd - 12, size: 8, le: true, what: 'zip64 locator offset' },
      { at: z64 + 32, size: 8, le: true, what: 'zip64 entry count' },
      { at: z64 + 40, size: 8, le: true, what: 'zip64 directory size' },
      { at: z64 + 48, size: 8, le: true, what: 'zip64 directory offset' },
    );
    cd = Number(v.getBigUint64(z64 + 48, true));
  }
  for (let p = cd, i = 0; p + 46 <= b.length && v.getUint32(p, true) === 0x02014b50; i++) {
    fields.push(
      { at: p + 8, size: 2, le: true, what: `entry ${i} flags` },
      { at: p + 10, size: 2, le: true, what: `entry ${i} method` },
      { at: p + 16, size: 4, le: true, what: `entry ${i} crc` },
      { at: p + 20, size: 4, le: true, what: `entry ${i} compressed size` },
      { at: p + 24, size: 4, le: true, what: `entry ${i} size` },
      { at: p + 28, size: 2, le: true, what: `entry ${i} name length` },
      { at: p + 30, size: 2, le: true, what: `entry ${i} extra length` },
      { at: p + 42, size: 4, le: true, what: `entry ${i} header offset` },
    );
    p += 46 + v.getUint16(p + 28, true) + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return fields;
}

function seed(file: Uint8Array): Seed {
  const src = bufferSource(file);
  const dir = readZipDirectory(src);
  const pklName = [...dir.entries.keys()].find((n) => n.endsWith('/data.pkl'))!;
  const folder = pklName.slice(0, -'data.pkl'.length);
  const entries = dir.order
    .filter((e) => e.name !== pklName)
    .map((e) => ({ name: e.name.slice(folder.length), data: readZipEntry(src, dir, e, { maxBytes: 1 << 20 }) }));
  return {
    file,
    folder,
    pkl: readZipEntry(src, dir, dir.entries.get(pklName)!, { maxBytes: 1 << 20 }),
    entries,
    fields: zipFields(file),
  };
}

function handMade(): Uint8Array[] {
  const views = new Pk().op(...Op.PROTO2, Op.EMPTY_DICT);
  views.ustr('w');
  tensorOps(views, '0', 6, 0, [2, 3], [3, 1]);
  views.op(Op.SETITEM).ustr('t');
  tensorOps(views, '0', 6, 0, [3, 2], [1, 3]);
  views.op(Op.SETITEM).ustr('x');
  tensorOps(views, '0', 6, 2, [4], [0]);
  views.op(Op.SETITEM, Op.STOP);
  const longs = new Pk().op(...Op.PROTO2, Op.EMPTY_LIST);
  tensorOps(longs, '1', 3, 0, [3], [1], 'LongStorage');
  longs.op(Op.APPEND).int(7).op(Op.APPEND).ustr('s').op(Op.APPEND, Op.STOP);
  const longData = new Uint8Array(BigInt64Array.of(1n, -2n, 2n ** 40n).buffer);
  return [archive(views.bytes(), { 0: f32Bytes([1, 2, 3, 4, 5, 6]) }), archive(longs.bytes(), { 1: longData }, 'hand')];
}

const FIXTURES = ['state-dict.pth', 'state-dict-protocol4.pth', 'state-dict-deflate.pth', 'dino-teacher-plain.pth'].map(
  (n) => new Uint8Array(readFileSync(fixture(n))),
);
const SEEDS = [...FIXTURES, ...handMade()].map(seed);
const DONORS = SEEDS.map((s) => s.file);
const PICKLES = SEEDS.map((s) => s.pkl);
// Opcodes, and the names a pickle refers to (allowed and refused).
const OPCODES = [
  0x28, 0x2e, 0x52, 0x62, 0x71, 0x72, 0x68, 0x6a, 0x74, 0x65, 0x75, 0x73, 0x61, 0x51, 0x93, 0x8a, 0x8b, 0x94, 0x95,
  0x80, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x58, 0x8c, 0x8d, 0x42, 0x43, 0x8e, 0x29, 0x5d, 0x7d, 0x85, 0x86, 0x87,
  0x6c, 0x64, 0x81, 0x92, 0x69, 0x63, 0x30, 0x31, 0x32, 0x8f, 0x90, 0x91, 0x97, 0x98, 0x82, 0x6f, 0x50, 0xff,
];
const TOKENS = [
  ...OPCODES.map((o) => Uint8Array.of(o)),
  ...[
    'ctorch._utils\n_rebuild_tensor_v2\n',
    'cos\nsystem\n',
    'ctorch\nFloatStorage\n',
    'ccollections\nOrderedDict\n',
    'storage',
  ].map((s) => new Uint8Array(Buffer.from(s, 'latin1'))),
  Uint8Array.of(0x58, 0xff, 0xff, 0xff, 0x7f),
  Uint8Array.of(0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xff),
];

function rezip(s: Seed, pkl: Uint8Array, entries = s.entries): Uint8Array {
  return concatBytes(
    storedZip([
      { name: `${s.folder}data.pkl`, data: pkl },
      ...entries.map((e) => ({ name: s.folder + e.name, data: e.data })),
    ]),
  );
}

/** Mutates only the central directory and end records, keeping the entries' bytes. */
function mutateDirectory(f: Fuzz, s: Seed): Uint8Array {
  const dir = readZipDirectory(bufferSource(s.file));
  const head = s.file.subarray(0, dir.dataEnd);
  const tail = mutate(f, s.file.subarray(dir.dataEnd), { maxOps: 3 });
  return concatBytes([head, tail]);
}

interface Input {
  bytes: Uint8Array;
  options: ReadPthOptions;
}

const ARRAY: Record<string, string> = {
  F32: 'Float32Array',
  F16: 'Float32Array',
  BF16: 'Float32Array',
  F64: 'Float64Array',
  I64: 'BigInt64Array',
  I32: 'Int32Array',
  I16: 'Int16Array',
  I8: 'Int8Array',
  U8: 'Uint8Array',
  BOOL: 'Uint8Array',
};

export const target: FuzzTarget = {
  name: 'pth',
  errorName: 'PthError',
  minErrorKinds: 60,
  isOwnError: (e) => e instanceof PthError,
  make(f) {
    const s = f.pick(SEEDS);
    let b: Uint8Array;
    switch (f.int(6)) {
      case 0: // anywhere in the file, CRCs and all
        b = mutate(f, s.file, { fields: s.fields, donors: DONORS, tokens: TOKENS });
        break;
      case 1:
      case 2: // the pickle, in an archive with valid CRCs
        f.note('mutate data.pkl, re-zip');
        b = rezip(s, mutate(f, s.pkl, { donors: PICKLES, tokens: TOKENS }));
        break;
      case 3: // the central directory and end records
        f.note('mutate the central directory');
        b = f.chance(0.5) ? mutateDirectory(f, s) : mutate(f, s.file, { fields: s.fields, maxOps: 2 });
        break;
      case 4: {
        // a storage or record: other bytes, longer, shorter, missing
        const entries = s.entries.slice();
        const k = f.int(entries.length);
        const e = entries[k];
        if (f.chance(0.15)) {
          entries.splice(k, 1);
          f.note(`drop ${e.name}`);
        } else {
          entries[k] = { name: e.name, data: mutate(f, e.data, { maxOps: 2 }) };
          f.note(`mutate ${e.name}, re-zip`);
        }
        b = rezip(s, s.pkl, entries);
        break;
      }
      default: {
        // DEFLATE entries: damaged streams and sizes that lie
        const all = [
          { name: `${s.folder}data.pkl`, data: s.pkl },
          ...s.entries.map((e) => ({ name: s.folder + e.name, data: e.data })),
        ];
        const lie = f.int(all.length);
        const raw = all.map((e, i) => {
          let stored: Uint8Array = new Uint8Array(deflateRawSync(e.data));
          let size = e.data.length;
          if (i === lie) {
            if (f.chance(0.5)) {
              stored = mutate(f, stored, { maxOps: 2 });
              f.note(`deflate stream of ${e.name} mutated`);
            } else {
              size = f.pick([0, 1, size - 1, size + 1, size * 2000, 0xffffffff]);
              f.note(`${e.name} declares ${size} bytes`);
            }
          }
          return { name: e.name, stored, method: 8, size, crc: f.chance(0.9) ? crc32(e.data) : 0 };
        });
        b = rawZip(raw);
      }
    }
    const options: ReadPthOptions = { verifyCrc: f.chance(0.8), maxBytes: f.pick([1 * MiB, 4 * MiB]) };
    if (f.chance(0.1)) options.maxPickleBytes = f.pick([16, 256, 4096]);
    f.note(`options ${JSON.stringify(options)}`);
    return { input: { bytes: b, options } satisfies Input, bytes: b.length };
  },
  run(c) {
    const { bytes: b, options } = c.input as Input;
    return readPth(b, options);
  },
  check(result, c) {
    const budget = (c.input as Input).options.maxBytes!;
    let tensorBytes = 0;
    const stack: unknown[] = [result];
    const seen = new Set<object>();
    while (stack.length) {
      const v = stack.pop();
      if (v === null || ['number', 'bigint', 'string', 'boolean'].includes(typeof v)) continue;
      if (typeof v !== 'object') throw new Error(`a ${typeof v} in the result`);
      if (seen.has(v)) continue;
      seen.add(v);
      if (v instanceof PthTensor) {
        if (!(v.dtype in PTH_DTYPES)) throw new Error(`tensor dtype ${v.dtype}`);
        if (
          !Array.isArray(v.shape) ||
          v.shape.length > MAX_RANK ||
          v.shape.some((d) => !Number.isSafeInteger(d) || d < 0)
        )
          throw new Error(`tensor shape [${v.shape}]`);
        if (v.data.constructor.name !== ARRAY[v.dtype])
          throw new Error(`${v.dtype} tensor data is a ${v.data.constructor.name}`);
        if (v.data.length !== numel(v.shape))
          throw new Error(`tensor of shape [${v.shape}] holds ${v.data.length} values`);
        if (v.dtype === 'BOOL' && (v.data as Uint8Array).some((x) => x > 1))
          throw new Error('BOOL tensor holds a value other than 0 and 1');
        tensorBytes += v.data.byteLength;
      } else if (v instanceof Uint8Array) {
        continue;
      } else if (Array.isArray(v)) {
        stack.push(...v);
      } else if (Object.getPrototypeOf(v) === Object.prototype) {
        stack.push(...Object.values(v));
      } else {
        throw new Error(`a ${v.constructor?.name} in the result`);
      }
    }
    if (tensorBytes > budget) throw new Error(`tensors hold ${tensorBytes} bytes, over the ${budget}-byte budget`);
  },
  // The budget (maxBytes) bounds storages read plus tensors made; the pickle and its strings are
  // bounded by the input itself.
  memLimit: (c) => 2 * (c.input as Input).options.maxBytes! + 8 * c.bytes + 2 * MiB,
};
