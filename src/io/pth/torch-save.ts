// writePth: writes a file torch.load reads (PyTorch 1.6 and later, weights_only=True included),
// in the layout torch.save itself uses: archive/data.pkl (pickle protocol 2), archive/byteorder
// ("little"), archive/data/<n> (one raw little-endian storage per tensor), archive/version ("3"),
// STORED zip entries with each record's data aligned to 64 bytes.
//
// The pickle uses only opcodes and globals that torch.save emits for the same objects, so torch's
// restricted weights_only unpickler accepts it:
//   tensor            → torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
//   requiresGrad      → wrapped in torch._utils._rebuild_parameter(tensor, True, OrderedDict())
//   object/Map        → dict; an object whose values are all tensors → collections.OrderedDict
//                       (what module.state_dict() is)
//   array → list; string → str; boolean → bool; null → None; bigint and integral numbers → int;
//   other numbers (fractions, -0, NaN, ±inf) → float.
// Caveat: torch < 2.0's weights_only unpickler has no float opcode, so there a file with floats
// loads only with weights_only=False (torch's own files with floats fail the same way).
// The same tensor object appearing twice is written once and shared, as torch would.
import { endianness } from 'node:os';
import { writeFileAtomic } from '../../util/atomic-write.js';
import type { TensorData } from '../safetensors.js';
import { tensorBytes } from '../tensor-bytes.js';
import { PthError } from './errors.js';
import { PTH_DTYPES, PthTensor, type PthDtype, type PthTensorLike } from './tensor.js';
import { concatBytes, storedZip } from './zip.js';

/** Deepest nesting written (the reader refuses deeper; no checkpoint comes close). */
export const MAX_WRITE_DEPTH = 200;
const BATCH = 1000; // items per APPENDS/SETITEMS, as pickle batches them
const LONE_SURROGATE = /\p{Cs}/u;

function isTensorLike(v: unknown): v is PthTensorLike {
  if (v instanceof PthTensor) return true;
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<PthTensorLike>;
  return typeof t.dtype === 'string' && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The tensor's elements as little-endian bytes (no copy where the data is already that). */
function pthTensorBytes(t: PthTensorLike, path: string): Uint8Array {
  const fail = (msg: string): never => {
    throw new PthError(`tensor at ${path}: ${msg}`);
  };
  const { dtype, data } = t;
  if (!Object.hasOwn(PTH_DTYPES, dtype))
    fail(`dtype ${JSON.stringify(dtype)} cannot be saved for torch (use one of ${Object.keys(PTH_DTYPES).join(', ')})`);
  return tensorBytes(dtype, t.shape, data as TensorData, PTH_DTYPES[dtype as PthDtype].raw, fail);
}

class Pickler {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  private nextMemo = 0;
  private globals = new Map<string, number>();
  private tensors = new Map<object, number>();
  private onPath = new Set<object>();
  readonly storages: Uint8Array[] = [];

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.len));
    this.buf = new Uint8Array(Math.max(1 << 16, n));
    this.len = 0;
  }
  private byte(...b: number[]): void {
    this.ensure(b.length);
    for (const x of b) this.buf[this.len++] = x;
  }
  private raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  private u32(n: number): void {
    this.byte(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  private put(): number {
    const id = this.nextMemo++;
    if (id < 256)
      this.byte(0x71, id); // BINPUT
    else {
      this.byte(0x72); // LONG_BINPUT
      this.u32(id);
    }
    return id;
  }
  private get(id: number): void {
    if (id < 256)
      this.byte(0x68, id); // BINGET
    else {
      this.byte(0x6a); // LONG_BINGET
      this.u32(id);
    }
  }

  finish(): Uint8Array {
    this.byte(0x2e); // STOP
    return concatBytes([...this.chunks, this.buf.subarray(0, this.len)]);
  }

  start(): void {
    this.byte(0x80, 2); // PROTO 2
  }

  int(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < 256)
      this.byte(0x4b, v); // BININT1
    else if (typeof v === 'number' && v >= 0 && v < 65536)
      this.byte(0x4d, v & 0xff, v >>> 8); // BININT2
    else if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      this.byte(0x4a); // BININT
      this.u32(v >>> 0);
    } else {
      // LONG1: minimal little-endian two's complement
      let x = BigInt(v);
      const out: number[] = [];
      for (;;) {
        const b = Number(x & 0xffn);
        out.push(b);
        x >>= 8n;
        if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
      }
      if (out.length > 255) throw new PthError(`int ${v} is too large to save`);
      this.byte(0x8a, out.length, ...out);
    }
  }

  float(v: number): void {
    const b = new Uint8Array(9);
    b[0] = 0x47; // BINFLOAT, big-endian
    new DataView(b.buffer).setFloat64(1, v, false);
    this.raw(b);
  }

  str(s: string, path: string): void {
    if (LONE_SURROGATE.test(s)) throw new PthError(`string at ${path} is not well-formed Unicode`);
    const b = Buffer.from(s, 'utf8');
    this.byte(0x58); // BINUNICODE
    this.u32(b.length);
    this.raw(b);
  }

  global(module: string, name: string): void {
    const key = `${module}\n${name}\n`;
    const id = this.globals.get(key);
    if (id !== undefined) return this.get(id);
    this.byte(0x63); // GLOBAL
    this.raw(Buffer.from(key, 'latin1'));
    this.globals.set(key, this.put());
  }

  /** collections.OrderedDict(): torch's empty backward_hooks, and a state dict's container. */
  orderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.byte(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  }

  intTuple(xs: readonly number[]): void {
    if (xs.length === 0) return this.byte(0x29); // EMPTY_TUPLE
    if (xs.length > 3) this.byte(0x28); // MARK
    for (const x of xs) this.int(x);
    this.byte(xs.length > 3 ? 0x74 : 0x84 + xs.length); // TUPLE or TUPLE1..3
  }

  tensor(t: PthTensorLike, path: string): void {
    const memo = this.tensors.get(t);
    if (memo !== undefined) return this.get(memo);
    const bytes = pthTensorBytes(t, path);
    const key = String(this.storages.length);
    this.storages.push(bytes);
    const numel = t.shape.reduce((a, d) => a * d, 1);
    const stride = t.shape.map((_, k) => t.shape.slice(k + 1).reduce((a, d) => a * d, 1));
    if (t.requiresGrad) this.global('torch._utils', '_rebuild_parameter');
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.byte(0x28, 0x28); // MARK (args), MARK (persistent id)
    this.str('storage', path);
    this.global('torch', PTH_DTYPES[t.dtype].storage);
    this.str(key, path);
    this.str('cpu', path);
    this.int(numel);
    this.byte(0x74, 0x51); // TUPLE, BINPERSID
    this.int(0); // storage offset
    this.intTuple(t.shape);
    this.intTuple(stride);
    this.byte(0x89); // requires_grad False (a Parameter carries it outside)
    this.orderedDict();
    this.byte(0x74, 0x52); // TUPLE, REDUCE
    if (t.requiresGrad) {
      this.byte(0x88); // True
      this.orderedDict();
      this.byte(0x87, 0x52); // TUPLE3, REDUCE
    }
    this.tensors.set(t, this.put());
  }

  value(v: unknown, path: string): void {
    if (v === null) return this.byte(0x4e);
    if (typeof v === 'boolean') return this.byte(v ? 0x88 : 0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? this.int(v) : this.float(v);
    }
    if (typeof v === 'string') return this.str(v, path);
    if (isTensorLike(v)) return this.tensor(v, path);
    if (typeof v !== 'object' || !(Array.isArray(v) || v instanceof Map || isPlainObject(v))) {
      throw new PthError(
        `value at ${path} is ${v === undefined ? 'undefined' : typeof v === 'object' ? `a ${v.constructor?.name}` : `a ${typeof v}`}, which cannot be saved (only tensors, dicts, arrays, strings, numbers, booleans and null)`,
      );
    }
    if (this.onPath.has(v)) throw new PthError(`value at ${path} contains itself (a cycle)`);
    if (this.onPath.size >= MAX_WRITE_DEPTH)
      throw new PthError(`value at ${path} is nested deeper than ${MAX_WRITE_DEPTH} levels`);
    this.onPath.add(v);
    if (Array.isArray(v)) this.list(v, path);
    else this.dict(v instanceof Map ? [...v] : Object.entries(v), path);
    this.onPath.delete(v);
  }

  private list(items: unknown[], path: string): void {
    this.byte(0x5d); // EMPTY_LIST
    this.put();
    for (let i = 0; i < items.length; i += BATCH) {
      this.byte(0x28); // MARK
      for (let j = i; j < Math.min(items.length, i + BATCH); j++) this.value(items[j], `${path}[${j}]`);
      this.byte(0x65); // APPENDS
    }
  }

  private dict(entries: [unknown, unknown][], path: string): void {
    const ordered = entries.length > 0 && entries.every(([, x]) => isTensorLike(x));
    if (ordered) this.orderedDict();
    else this.byte(0x7d); // EMPTY_DICT
    this.put();
    for (let i = 0; i < entries.length; i += BATCH) {
      this.byte(0x28); // MARK
      for (let j = i; j < Math.min(entries.length, i + BATCH); j++) {
        const [k, x] = entries[j];
        const where = `${path}[${typeof k === 'string' ? JSON.stringify(k) : String(k)}]`;
        if (typeof k === 'string') this.str(k, where);
        else if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') this.value(k, where);
        else
          throw new PthError(
            `key at ${where} is ${k === null ? 'null' : typeof k}; dict keys must be strings, numbers or booleans`,
          );
        this.value(x, where);
      }
      this.byte(0x75); // SETITEMS
    }
  }
}

/** The archive's pieces, in file order (tensor data passed through where already little-endian). */
function build(obj: unknown): Uint8Array[] {
  if (endianness() !== 'LE') throw new PthError('big-endian hosts are not supported');
  const p = new Pickler();
  p.start();
  p.value(obj, 'root');
  const pkl = p.finish();
  return storedZip([
    { name: 'archive/data.pkl', data: pkl },
    { name: 'archive/byteorder', data: Buffer.from('little', 'latin1') },
    ...p.storages.map((data, k) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n', 'latin1') },
  ]);
}

/** The bytes writePth would put on disk. */
export function serializePth(obj: unknown): Uint8Array {
  return concatBytes(build(obj));
}

/**
 * Saves `obj` for torch.load, atomically: written to `${path}.tmp-${pid}`, fsynced, renamed over
 * `path`, so a crash leaves the old file or the complete new one, never a torn one.
 */
export function writePth(path: string, obj: unknown): void {
  const pieces = build(obj); // before touching the disk: a bad value fails without a stray file
  writeFileAtomic(path, pieces);
}
