// safetensors: readSafetensors on mutated files, and on files whose JSON header was edited as a
// structure (offsets overlapping or out of range, dtypes that disagree with the byte span, absurd
// shapes, wrong field types, duplicate names, deep nesting) and re-framed with a correct length
// (and often a correct checksum), so the damage reaches the layout checks, not just the framing.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CHECKSUM_KEY,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type SafetensorsFile,
} from '../../../src/io/safetensors.js';
import { packagePath } from '../../../src/util/paths.js';
import { mutate, numel, type Fuzz } from '../mutate.js';
import { MiB, type FuzzTarget } from '../target.js';

const SEEDS: Uint8Array[] = [
  serializeSafetensors(
    {
      'backbone.w': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
      'head.v': { dtype: 'F16', shape: [3], data: Float32Array.of(0.5, -1, 2) },
      'head.b': { dtype: 'BF16', shape: [2], data: Float32Array.of(1.5, -3) },
      step: { dtype: 'I64', shape: [], data: BigInt64Array.of(12n) },
      count: { dtype: 'U64', shape: [1], data: BigUint64Array.of(2n ** 60n) },
      mask: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
      ids: { dtype: 'I32', shape: [2, 1], data: Int32Array.of(-7, 9) },
      small: { dtype: 'I8', shape: [3], data: Int8Array.of(-1, 0, 1) },
      u16: { dtype: 'U16', shape: [1], data: Uint16Array.of(65535) },
      empty: { dtype: 'U8', shape: [0, 4], data: new Uint8Array(0) },
      f64: { dtype: 'F64', shape: [1], data: Float64Array.of(Math.PI) },
    },
    { epoch: '7', args: '{"lr":0.0005}' },
  ),
  serializeSafetensors(
    {
      a: { dtype: 'F32', shape: [4], data: Float32Array.of(1, 2, 3, 4) },
      b: { dtype: 'F32', shape: [1, 2], data: Float32Array.of(5, 6) },
    },
    {},
    { checksum: false },
  ),
  serializeSafetensors({ only: { dtype: 'F32', shape: [], data: Float32Array.of(42) } }),
  new Uint8Array(readFileSync(packagePath('test', 'fixtures', 'safetensors', 'torch-dtypes.safetensors'))),
];
const DTYPES = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];
const SIZE: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};
const ARRAY: Record<string, string> = {
  BOOL: 'Uint8Array',
  U8: 'Uint8Array',
  I8: 'Int8Array',
  I16: 'Int16Array',
  U16: 'Uint16Array',
  F16: 'Float32Array',
  BF16: 'Float32Array',
  I32: 'Int32Array',
  U32: 'Uint32Array',
  F32: 'Float32Array',
  F64: 'Float64Array',
  I64: 'BigInt64Array',
  U64: 'BigUint64Array',
};
const TOKENS = [
  '"',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '-',
  '0',
  '9',
  'e',
  '.',
  '\\',
  '\\u',
  'null',
  '"dtype"',
  '"shape"',
  '"data_offsets"',
  '"__metadata__"',
  '\ufeff',
]
  .map((t) => new Uint8Array(Buffer.from(t, 'utf8')))
  .concat([Uint8Array.of(0x80), Uint8Array.of(0xc3), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0)]);

function split(file: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { header: Buffer.from(file.subarray(8, 8 + n)).toString('utf8'), data: file.subarray(8 + n) };
}

function frame(header: string, data: Uint8Array, pad: boolean): Uint8Array {
  let h = Buffer.from(header, 'utf8');
  if (pad) h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A JSON number as text: integers past 2^53, negative zero and exponents written out literally. */
const RAW_NUMBERS = [
  '18446744073709551615',
  '9007199254740993',
  '1e400',
  '-0',
  '1.5',
  '-1',
  '4294967296',
  '1e3',
  '0.0',
];

/** One structural edit of the parsed header; returns text replacements to apply after stringifying. */
function editHeader(f: Fuzz, h: { [k: string]: Json }, dataBytes: number, raw: Map<string, string>): void {
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const name = names.length ? f.pick(names) : undefined;
  const entry =
    name !== undefined && typeof h[name] === 'object' && h[name] !== null && !Array.isArray(h[name])
      ? (h[name] as { [k: string]: Json })
      : undefined;
  const rawNumber = (): string => {
    const token = `__RAW${raw.size}__`;
    raw.set(`"${token}"`, f.pick(RAW_NUMBERS));
    return token;
  };
  switch (f.int(10)) {
    case 0:
    case 1: {
      // data_offsets
      if (!entry) break;
      const other = h[f.pick(names)] as { data_offsets?: Json };
      const [b, e] = (Array.isArray(entry.data_offsets) ? entry.data_offsets : [0, 0]) as number[];
      const choices: [string, Json][] = [
        ['those of another tensor', other?.data_offsets ?? null],
        ['reversed', [e, b]],
        ['out of range', [b, dataBytes + 1 + f.int(64)]],
        ['empty', [b, b]],
        ['shifted', [b + 1, e + 1]],
        ['end shifted', [b, e + f.pick([-8, -1, 1, 8])]],
        ['huge', [0, 2 ** 53]],
        ['negative', [-1, e]],
        ['fractional', [b, e + 0.5]],
        ['strings', [String(b), String(e)]],
        ['one element', [b]],
        ['three elements', [b, e, e]],
        ['not an array', b],
        ['raw numbers', [rawNumber(), rawNumber()]],
        ['whole buffer', [0, dataBytes]],
        ['past a 2^32 wrap', [b + 2 ** 32, e + 2 ** 32]],
      ];
      const [what, v] = f.pick(choices);
      entry.data_offsets = v;
      f.note(`${name}: data_offsets ${what}`);
      break;
    }
    case 2: {
      // dtype
      if (!entry) break;
      const v = f.chance(0.8) ? f.pick(DTYPES) : f.pick(['f32', 'F8_E4M3', '', 'C64', 7, null] as Json[]);
      entry.dtype = v;
      f.note(`${name}: dtype ${JSON.stringify(v)}`);
      break;
    }
    case 3:
    case 4: {
      // shape
      if (!entry) break;
      const shape = Array.isArray(entry.shape) ? (entry.shape as Json[]) : [];
      const choices: [string, Json][] = [
        ['2^53', [2 ** 53]],
        ['1e308', [1e308]],
        ['-1', [-1]],
        ['1.5', [1.5]],
        ['scalar', []],
        ['zero', [0]],
        ['huge with a 0', [2 ** 40, 0]],
        ['2^32 x 2^32', [2 ** 32, 2 ** 32]],
        ['rank 80', new Array(80).fill(1)],
        ['nested', [[2]]],
        ['string', '3'],
        ['null', null],
        ['doubled', shape.map((d) => (typeof d === 'number' ? d * 2 : d))],
        ['extra 1', [...shape, 1]],
        ['dropped dim', shape.slice(1)],
        ['raw number', [rawNumber()]],
        ['transposed', [...shape].reverse()],
      ];
      const [what, v] = f.pick(choices);
      entry.shape = v;
      f.note(`${name}: shape ${what}`);
      break;
    }
    case 5: {
      // fields missing, unknown, or the entry not an object
      if (!entry || name === undefined) break;
      const k = f.int(4);
      if (k === 0) {
        const field = f.pick(['dtype', 'shape', 'data_offsets']);
        delete entry[field];
        f.note(`${name}: no ${field}`);
      } else if (k === 1) {
        entry[f.pick(['extra', 'dtype ', 'DTYPE'])] = f.pick([1, 'x', null, [1]] as Json[]);
        f.note(`${name}: an unknown field`);
      } else {
        h[name] = f.pick([1, 'F32', null, [], [1, 2], true] as Json[]);
        f.note(`${name}: entry is ${JSON.stringify(h[name])}`);
      }
      break;
    }
    case 6: {
      // names: reserved, empty, odd, or a duplicate (written as text, which objects cannot hold)
      if (name === undefined) break;
      const k = f.int(4);
      if (k === 0) {
        raw.set(`"${name}":`, `"${name}":${JSON.stringify(h[name])},"${name}":`);
        f.note(`${name}: duplicated`);
      } else {
        const to = f.pick(['__metadata__', '', '\u0000', 'é', '__proto__', 'constructor']);
        const v = h[name];
        delete h[name];
        h[to] = v;
        f.note(`${name}: renamed to ${JSON.stringify(to)}`);
      }
      break;
    }
    case 7: {
      // __metadata__
      const choices: [string, Json][] = [
        ['null', null],
        ['an array', ['a']],
        ['a number', 1],
        ['a non-string value', { epoch: 7 }],
        ['nested', { a: { b: 'c' } }],
        ['a wrong checksum', { [CHECKSUM_KEY]: '00'.repeat(32) }],
        ['no checksum', {}],
        ['a string', 'x'],
      ];
      const [what, v] = f.pick(choices);
      h.__metadata__ = v;
      f.note(`__metadata__ ${what}`);
      break;
    }
    case 8: {
      // nesting deep enough to hit the parser's depth limit
      const depth = f.pick([31, 32, 33, 200, 5000]);
      const token = `__RAW${raw.size}__`;
      raw.set(`"${token}"`, '['.repeat(depth) + ']'.repeat(depth));
      h[f.chance(0.5) ? 'deep' : '__metadata__'] = token;
      f.note(`nesting ${depth} deep`);
      break;
    }
    default: {
      // a new tensor entry
      const dtype = f.pick(DTYPES);
      const len = f.int(5);
      const begin = f.int(dataBytes + 2);
      h[`new${f.int(3)}`] = { dtype, shape: [len], data_offsets: [begin, begin + len * SIZE[dtype]] };
      f.note(`a new ${dtype} tensor of ${len} at ${begin}`);
    }
  }
}

/** A seed with its header edited as JSON, then framed again (and often re-checksummed). */
function structural(f: Fuzz, seed: Uint8Array): Uint8Array {
  const { header, data } = split(seed);
  const h = JSON.parse(header) as { [k: string]: Json };
  let payload: Uint8Array = data;
  if (f.chance(0.15)) {
    payload = f.chance(0.5)
      ? data.subarray(0, f.int(data.length + 1))
      : new Uint8Array(Buffer.concat([data, Buffer.alloc(1 + f.int(16))]));
    f.note(`data buffer resized to ${payload.length}`);
  }
  const raw = new Map<string, string>();
  const edits = 1 + f.int(3);
  for (let k = 0; k < edits; k++) editHeader(f, h, payload.length, raw);
  const meta = h.__metadata__;
  if (f.chance(0.6) && meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    meta[CHECKSUM_KEY] = createHash('sha256').update(payload).digest('hex');
    f.note('checksum recomputed');
  }
  let text = JSON.stringify(h);
  for (const [from, to] of raw) text = text.split(from).join(to);
  return frame(text, payload, f.chance(0.8));
}

interface Input {
  bytes: Uint8Array;
  verify?: boolean;
}

export const target: FuzzTarget = {
  name: 'safetensors',
  errorName: 'SafetensorsError',
  minErrorKinds: 40,
  isOwnError: (e) => e instanceof SafetensorsError,
  make(f) {
    const seed = f.pick(SEEDS);
    let b: Uint8Array;
    const mode = f.int(3);
    if (mode === 0) {
      b = mutate(f, seed, {
        fields: [{ at: 0, size: 8, le: true, what: 'header length' }],
        donors: SEEDS,
        tokens: TOKENS,
      });
    } else {
      b = structural(f, seed);
      if (mode === 2 && f.chance(0.3)) b = mutate(f, b, { tokens: TOKENS, maxOps: 1 });
    }
    const verify = f.pick([undefined, true, false]);
    f.note(`verify ${verify}`);
    return { input: { bytes: b, verify } satisfies Input, bytes: b.length };
  },
  run(c) {
    const { bytes: b, verify } = c.input as Input;
    return readSafetensors(b, { verify });
  },
  check(result, c) {
    const { bytes: b, verify } = c.input as Input;
    const file = result as SafetensorsFile;
    const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
    let span = 0;
    for (const [name, t] of file.tensors) {
      if (!(t.dtype in SIZE)) throw new Error(`${name}: dtype ${t.dtype}`);
      if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
        throw new Error(`${name}: shape [${t.shape}]`);
      if (t.data.constructor.name !== ARRAY[t.dtype])
        throw new Error(`${name}: ${t.dtype} data is a ${t.data.constructor.name}`);
      if (t.data.length !== numel(t.shape))
        throw new Error(`${name}: ${t.data.length} elements for shape [${t.shape}]`);
      span += t.data.length * SIZE[t.dtype];
    }
    if (span !== b.length - 8 - n)
      throw new Error(`tensors span ${span} bytes of a ${b.length - 8 - n}-byte data buffer`);
    for (const [k, v] of Object.entries(file.metadata))
      if (typeof v !== 'string') throw new Error(`metadata ${k} is ${typeof v}`);
    if (verify === true && !Object.hasOwn(file.metadata, CHECKSUM_KEY))
      throw new Error('verify: true accepted a file without a checksum');
  },
  // SafetensorsError names the tensor when one is at fault, not the input (which has no name here).
  memLimit: (c) => 4 * c.bytes + MiB,
};
