// Shared by the .pth tests: the fixture paths, a JSON description of loaded values that matches
// scripts/make-pth-fixtures.py's describe() (so torch.load's view and ours compare directly), the
// Python with torch used to check files both ways, and small builders for hand-made pickles.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PthError, PthTensor } from '../../src/io/pth/index.js';
import { concatBytes, storedZip } from '../../src/io/pth/zip.js';
import { packagePath } from '../../src/util/paths.js';

export const fixture = (name: string): string => packagePath('test', 'fixtures', 'pth', name);

export interface Expected {
  torch: string;
  files: Record<string, unknown>;
}

export function expected(): Expected {
  return JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Expected;
}

const num = (x: number): number | string =>
  Number.isNaN(x) ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : x;

/** The same JSON form as describe() in scripts/make-pth-fixtures.py. */
export function describe(v: unknown): unknown {
  if (v instanceof PthTensor) {
    const values = Array.from(v.data as ArrayLike<number | bigint>, (x) => {
      if (v.dtype === 'I64') return String(x);
      if (v.dtype === 'BOOL') return x !== 0;
      return num(x as number);
    });
    return { tensor: v.dtype, shape: v.shape, values, requires_grad: v.requiresGrad };
  }
  if (Array.isArray(v)) return { list: v.map(describe) };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return num(v);
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'object') {
    const pairs = Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, describe(x)]);
    return {
      dict: pairs.sort((a, b) =>
        (a[0] as string) < (b[0] as string) ? -1 : (a[0] as string) > (b[0] as string) ? 1 : 0,
      ),
    };
  }
  throw new Error(`cannot describe ${typeof v}`);
}

export const PYTHON = '/usr/bin/python3';
let torchOk: boolean | undefined;

/** Whether /usr/bin/python3 can import torch (Debian's python3-torch). */
export function haveTorch(): boolean {
  torchOk ??= spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
  return torchOk;
}

/** Runs Python code with torch; returns stdout, failing the test with stderr on a non-zero exit. */
export function python(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) assert.unreachable(`python failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

export function throwsPth(fn: () => unknown, pattern: RegExp): PthError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PthError))
      throw new Error(`expected a PthError matching ${pattern}, got ${e instanceof Error ? e.stack : e}`);
    assert.match(e.message, pattern, `${e.message} does not match ${pattern}`);
    return e;
  }
  return assert.unreachable(`expected a PthError matching ${pattern}`) as never;
}

// ---------------------------------------------------------------------------------------------
// Hand-made pickles

/** Pickle bytes from opcodes, numbers (single bytes) and strings (written as SHORT/BINUNICODE). */
export class Pk {
  private parts: number[] = [];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  raw(text: string): this {
    this.parts.push(...Buffer.from(text, 'latin1'));
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length < 256) this.parts.push(0x8c, b.length, ...b);
    else
      this.parts.push(0x58, b.length & 0xff, (b.length >>> 8) & 0xff, (b.length >>> 16) & 0xff, b.length >>> 24, ...b);
    return this;
  }
  /** BINUNICODE, which protocol 2 uses (SHORT_BINUNICODE needs protocol 4). */
  ustr(s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.parts.push(0x58, b.length & 0xff, (b.length >>> 8) & 0xff, (b.length >>> 16) & 0xff, b.length >>> 24, ...b);
    return this;
  }
  global(module: string, name: string): this {
    return this.raw(`c${module}\n${name}\n`);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    return this.op(0x4a, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export const Op = {
  PROTO2: [0x80, 2],
  PROTO4: [0x80, 4],
  STOP: 0x2e,
  MARK: 0x28,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_TUPLE: 0x29,
  EMPTY_LIST: 0x5d,
  EMPTY_DICT: 0x7d,
  APPEND: 0x61,
  SETITEM: 0x73,
  REDUCE: 0x52,
  BUILD: 0x62,
  NONE: 0x4e,
  TRUE: 0x88,
  FALSE: 0x89,
  BINPERSID: 0x51,
  STACK_GLOBAL: 0x93,
  BINPUT: 0x71,
  BINGET: 0x68,
  NEWOBJ: 0x81,
  POP: 0x30,
} as const;

/** A torch-style archive around a pickle and storages: <folder>/data.pkl, data/<k>, version. */
export function archive(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, folder = 'archive'): Uint8Array {
  return concatBytes(
    storedZip([
      { name: `${folder}/data.pkl`, data: pkl },
      ...Object.entries(storages).map(([k, data]) => ({ name: `${folder}/data/${k}`, data })),
      { name: `${folder}/version`, data: Buffer.from('3\n') },
    ]),
  );
}

/** Pickle ops for torch's _rebuild_tensor_v2 of a float storage (key, numel) at offset/size/stride. */
export function tensorOps(
  p: Pk,
  key: string,
  numel: number,
  offset: number,
  size: number[],
  stride: number[],
  storage = 'FloatStorage',
): Pk {
  p.global('torch._utils', '_rebuild_tensor_v2')
    .op(Op.MARK, Op.MARK)
    .ustr('storage')
    .global('torch', storage)
    .ustr(key)
    .ustr('cpu')
    .int(numel)
    .op(Op.TUPLE, Op.BINPERSID)
    .int(offset)
    .op(Op.MARK);
  for (const d of size) p.int(d);
  p.op(Op.TUPLE, Op.MARK);
  for (const s of stride) p.int(s);
  p.op(Op.TUPLE, Op.FALSE).global('collections', 'OrderedDict').op(Op.EMPTY_TUPLE, Op.REDUCE, Op.TUPLE, Op.REDUCE);
  return p;
}

export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** mulberry32, for seeded fuzzing (the one in test/helpers/check.ts). */
export { rng } from '../helpers/check.js';

export interface RawZipEntry {
  name: string;
  /** The bytes stored in the archive (already compressed for method 8). */
  stored: Uint8Array;
  method: number;
  size: number;
  crc: number;
}

/** A minimal zip with arbitrary (possibly lying) fields, for hostile-input tests. */
export function rawZip(entries: RawZipEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(8, e.method, true);
    lv.setUint32(14, e.crc, true);
    lv.setUint32(18, e.stored.length, true);
    lv.setUint32(22, e.size, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, e.method, true);
    cv.setUint32(16, e.crc, true);
    cv.setUint32(20, e.stored.length, true);
    cv.setUint32(24, e.size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, pos, true);
    c.set(name, 46);
    central.push(c);
    parts.push(local, e.stored);
    pos += local.length + e.stored.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, pos, true);
  return concatBytes([...parts, ...central, end]);
}
