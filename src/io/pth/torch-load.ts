// readPth: loads what torch.save writes (the zip format of PyTorch ≥ 1.6) without Python and
// without ever executing anything from the file.
//
// Layout: <folder>/data.pkl is a pickle of the saved object whose tensors refer, through persistent
// ids ('storage', torch.<Type>Storage, key, location, numel), to raw little-endian storages in
// <folder>/data/<key>; <folder>/version holds the format version, and PyTorch ≥ 2.1 adds
// <folder>/byteorder ("little" or "big"). torch names <folder> after the file (archive/ in memory).
//
// Only these globals are accepted, each rebuilt here in plain JS (anything else is refused at its
// GLOBAL opcode with an error naming it):
//   torch._utils._rebuild_tensor_v2 / _rebuild_tensor           → PthTensor
//   torch._utils._rebuild_parameter / _rebuild_parameter_with_state → PthTensor, requiresGrad
//   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage (storage types only)
//   collections.OrderedDict, argparse.Namespace                  → plain object
//   numpy.dtype + numpy.core.multiarray.scalar (numpy._core in numpy 2) → number / bigint / boolean
//   _codecs.encode(s, 'latin1') (how protocol 2 spells bytes)   → Uint8Array
//
// Order of work, so a hostile file costs little: the central directory and data.pkl are read and
// the whole pickle is interpreted first (refusing globals, checking every tensor's offset, shape and
// strides against its storage's declared size and the archive entry's real size, and adding up the
// bytes the result will take against a budget); only then are storages read, each once, and views
// gathered into contiguous arrays. Tensors never share memory with each other.
import { endianness } from 'node:os';
import { decodeBf16, decodeF16, f16BitsToF32 } from '../../util/half.js';
import type { TensorData } from '../safetensors.js';
import { PthError } from './errors.js';
import {
  PyGlobal,
  typeName,
  unpickle,
  DEFAULT_PICKLE_LIMITS,
  type Dict,
  type PickleContext,
  type PickleHooks,
} from './pickle.js';
import { DTYPE_OF_STORAGE, gather, PTH_DTYPES, PthTensor, type PthDtype, type RawArray } from './tensor.js';
import {
  bufferSource,
  readZipDirectory,
  readZipEntry,
  withFileSource,
  type Source,
  type ZipDirectory,
  type ZipEntry,
} from './zip.js';

export interface ReadPthOptions {
  /** Check each entry's CRC-32 (default true; entries written with CRC 0 are not checked). */
  verifyCrc?: boolean;
  /**
   * Budget for the bytes read from storages plus the bytes of the tensors produced (default
   * 64 MiB + 8 × the file size: room for F16 → F32 and views, not for a stride-0 tensor that
   * expands a few bytes into gigabytes).
   */
  maxBytes?: number;
  /** Largest data.pkl accepted (default 256 MiB). */
  maxPickleBytes?: number;
}

/** Tensors have at most this many dimensions (more than torch itself allows on most paths). */
export const MAX_RANK = 64;
/** Elements in one tensor: a typed array beyond this cannot be allocated reliably anyway. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

const STORAGE_GLOBALS = [...DTYPE_OF_STORAGE.keys()].map((s) => `torch.${s}`);
const REBUILDERS = [
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  'argparse.Namespace',
  'numpy.dtype',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  '_codecs.encode',
];
/** Every global a .pth may name; exported so tests and docs can list it. */
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([...REBUILDERS, ...STORAGE_GLOBALS]);

class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: PthDtype,
    readonly numel: number,
    readonly entry: ZipEntry,
  ) {}
}

/** numpy.dtype('f8', False, True) and its BUILD state: only what a scalar needs. */
class NpDtype {
  order = '=';
  constructor(
    readonly kind: string,
    readonly size: number,
  ) {}
}

interface Pending {
  tensor: PthTensor;
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

interface Loader {
  src: Source;
  dir: ZipDirectory;
  prefix: string;
  budget: number;
  used: number;
  storages: Map<string, StorageRef>;
  pending: Pending[];
}

function spend(L: Loader, bytes: number, what: string): void {
  L.used += bytes;
  if (L.used > L.budget) {
    throw new PthError(
      `${what} brings the data to load to ${L.used} bytes, over the budget of ${L.budget} (raise options.maxBytes if the file is genuine)`,
    );
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new PthError(`${what} is ${typeName(v)}, not a tuple of ints`);
  if (v.length > MAX_RANK) throw new PthError(`${what} has ${v.length} dimensions (limit ${MAX_RANK})`);
  return v.map((d, k) => {
    if (!isInt(d) || d < 0)
      throw new PthError(
        `${what}[${k}] is ${typeof d === 'number' || typeof d === 'bigint' ? String(d) : typeName(d)}, not a non-negative int`,
      );
    return d;
  });
}

function rebuildTensor(
  L: Loader,
  storage: unknown,
  offset: unknown,
  size: unknown,
  stride: unknown,
  requiresGrad: unknown,
): PthTensor {
  if (!(storage instanceof StorageRef))
    throw new PthError(`_rebuild_tensor: storage argument is ${typeName(storage)}, not a storage`);
  const where = `tensor on storage ${JSON.stringify(storage.key)}`;
  if (!isInt(offset) || offset < 0)
    throw new PthError(`${where}: storage offset is ${typeName(offset)} ${String(offset)}, not a non-negative int`);
  const shape = intList(size, `${where}: size`);
  const strides = intList(stride, `${where}: stride`);
  if (strides.length !== shape.length)
    throw new PthError(`${where}: size has ${shape.length} dimensions but stride has ${strides.length}`);
  if (typeof requiresGrad !== 'boolean')
    throw new PthError(`${where}: requires_grad is ${typeName(requiresGrad)}, not a bool`);
  let numel = 1;
  for (const d of shape) numel *= d; // past 2^53 inexact but still over the limit, which is all that matters
  if (numel > MAX_ELEMENTS)
    throw new PthError(`${where}: shape [${shape}] has ${numel} elements, over the limit of ${MAX_ELEMENTS}`);
  if (numel > 0) {
    let last = BigInt(offset);
    for (let k = 0; k < shape.length; k++) last += BigInt(shape[k] - 1) * BigInt(strides[k]);
    if (last >= BigInt(storage.numel)) {
      throw new PthError(
        `${where}: offset ${offset}, size [${shape}] and stride [${strides}] reach element ${last}, past the storage's ${storage.numel}`,
      );
    }
  } else if (offset > storage.numel) {
    throw new PthError(`${where}: offset ${offset} is past the storage's ${storage.numel} elements`);
  }
  const dtype = storage.dtype;
  spend(L, numel * (dtype === 'F16' || dtype === 'BF16' ? 4 : PTH_DTYPES[dtype].size), where);
  const tensor = new PthTensor(dtype, shape, EMPTY, requiresGrad);
  L.pending.push({ tensor, storage, offset, shape, stride: strides });
  return tensor;
}

const EMPTY = new Float32Array(0);

function asciiOf(v: unknown): unknown {
  return v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v;
}

function persistentLoad(L: Loader, ctx: PickleContext, pid: unknown): StorageRef {
  if (!ctx.isTuple(pid) || pid.length !== 5 || asciiOf(pid[0]) !== 'storage') {
    throw new PthError(
      `persistent id is ${typeName(pid)}${Array.isArray(pid) ? ` of ${pid.length}` : ''}, not ('storage', type, key, location, numel)`,
    );
  }
  const [, type, rawKey, location, numel] = pid;
  const key = asciiOf(rawKey);
  if (!(type instanceof PyGlobal) || type.module !== 'torch' || !DTYPE_OF_STORAGE.has(type.name)) {
    throw new PthError(`persistent id's storage type is ${typeName(type)}, not a torch.*Storage`);
  }
  if (typeof key !== 'string') throw new PthError(`persistent id's key is ${typeName(key)}, not a str`);
  if (typeof asciiOf(location) !== 'string')
    throw new PthError(`storage ${JSON.stringify(key)}: location is ${typeName(location)}, not a str`);
  if (!isInt(numel) || numel < 0)
    throw new PthError(`storage ${JSON.stringify(key)}: numel is ${typeName(numel)}, not a non-negative int`);
  const dtype = DTYPE_OF_STORAGE.get(type.name)!;
  const known = L.storages.get(key);
  if (known) {
    if (known.dtype !== dtype || known.numel !== numel) {
      throw new PthError(
        `storage ${JSON.stringify(key)} is declared as ${known.numel} × ${known.dtype} and again as ${numel} × ${dtype}`,
      );
    }
    return known;
  }
  const name = `${L.prefix}data/${key}`;
  const entry = L.dir.entries.get(name);
  if (!entry) throw new PthError(`storage ${JSON.stringify(key)} has no archive entry ${name}`);
  const bytes = numel * PTH_DTYPES[dtype].size;
  if (entry.size !== bytes) {
    throw new PthError(
      `storage ${JSON.stringify(key)} declares ${numel} × ${dtype} (${bytes} bytes) but ${name} holds ${entry.size} bytes`,
    );
  }
  spend(L, bytes, `storage ${JSON.stringify(key)}`);
  const ref = new StorageRef(key, dtype, numel, entry);
  L.storages.set(key, ref);
  return ref;
}

const NP_DTYPE = /^[<>|=]?([fiub])([1248])$/;

function numpyScalar(dtype: unknown, raw: unknown): number | bigint | boolean {
  if (!(dtype instanceof NpDtype)) throw new PthError(`numpy scalar: dtype is ${typeName(dtype)}`);
  if (!(raw instanceof Uint8Array) || raw.length !== dtype.size)
    throw new PthError(`numpy scalar: payload is not ${dtype.size} bytes`);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = dtype.order !== '>';
  const { kind, size } = dtype;
  if (kind === 'b') return raw[0] !== 0;
  if (kind === 'f')
    return size === 2 ? f16BitsToF32(v.getUint16(0, le)) : size === 4 ? v.getFloat32(0, le) : v.getFloat64(0, le);
  if (size === 8) {
    const b = kind === 'i' ? v.getBigInt64(0, le) : v.getBigUint64(0, le);
    return b >= -BigInt(Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  }
  if (kind === 'i') return size === 1 ? v.getInt8(0) : size === 2 ? v.getInt16(0, le) : v.getInt32(0, le);
  return size === 1 ? v.getUint8(0) : size === 2 ? v.getUint16(0, le) : v.getUint32(0, le);
}

function hooksFor(L: Loader): PickleHooks {
  const namespaces = new WeakSet<object>();
  const ordered = new WeakSet<object>();
  const arity = (f: PyGlobal, a: unknown[], ...counts: number[]): void => {
    if (!counts.includes(a.length))
      throw new PthError(`${f.fullName} called with ${a.length} arguments (expects ${counts.join(' or ')})`);
  };
  const make = (set: WeakSet<object>, ctx: PickleContext): Dict => {
    const d = ctx.dict();
    set.add(d);
    return d;
  };
  return {
    global(module, name) {
      const full = `${module}.${name}`;
      if (!ALLOWED_GLOBALS.has(full)) {
        if (module === 'torch' && name.endsWith('Storage')) {
          throw new PthError(
            `refused the global ${full}: tensors of this type are not supported (only ${[...DTYPE_OF_STORAGE.keys()].join(', ')})`,
          );
        }
        throw new PthError(
          `refused the global ${full}: only tensor-rebuilding names are allowed, and nothing in a file is ever executed (this file may be malicious)`,
        );
      }
      return new PyGlobal(module, name);
    },
    reduce(ctx, f, a) {
      switch (f.fullName) {
        case 'torch._utils._rebuild_tensor_v2': {
          arity(f, a, 6, 7);
          const hooks = a[5];
          if (!(ctx.isDict(hooks) && Object.keys(hooks).length === 0) && hooks !== null)
            throw new PthError('tensor with backward hooks: not supported');
          return rebuildTensor(L, a[0], a[1], a[2], a[3], a[4]);
        }
        case 'torch._utils._rebuild_tensor':
          arity(f, a, 4);
          return rebuildTensor(L, a[0], a[1], a[2], a[3], false);
        case 'torch._utils._rebuild_parameter':
        case 'torch._utils._rebuild_parameter_with_state': {
          arity(f, a, f.name.endsWith('state') ? 4 : 3);
          const [t, rg] = a;
          if (!(t instanceof PthTensor)) throw new PthError(`${f.fullName}: data is ${typeName(t)}, not a tensor`);
          if (typeof rg !== 'boolean')
            throw new PthError(`${f.fullName}: requires_grad is ${typeName(rg)}, not a bool`);
          t.requiresGrad = rg;
          return t;
        }
        case 'collections.OrderedDict': {
          const d = make(ordered, ctx);
          if (a.length === 0) return d;
          const [pairs] = a;
          if (a.length !== 1 || !Array.isArray(pairs) || pairs.some((p) => !Array.isArray(p) || p.length !== 2)) {
            throw new PthError(
              `collections.OrderedDict called with ${a.length} arguments that are not one list of pairs`,
            );
          }
          for (const [k, v] of pairs as unknown[][]) {
            if (typeof k !== 'string') throw new PthError('collections.OrderedDict pairs must have str keys');
            Object.defineProperty(d, k, { value: v, enumerable: true, writable: true, configurable: true });
          }
          return d;
        }
        case 'argparse.Namespace':
          arity(f, a, 0);
          return make(namespaces, ctx);
        case 'numpy.dtype': {
          arity(f, a, 3);
          const m = typeof a[0] === 'string' ? NP_DTYPE.exec(a[0]) : null;
          if (!m)
            throw new PthError(
              `numpy.dtype(${typeof a[0] === 'string' ? JSON.stringify(a[0]) : typeName(a[0])}) is not a supported scalar type (bool, int, uint, float)`,
            );
          // numpy has no 1-byte float and no multi-byte bool; numpyScalar reads size bytes as that kind.
          if ((m[1] === 'b' && m[2] !== '1') || (m[1] === 'f' && m[2] === '1'))
            throw new PthError(`numpy.dtype(${JSON.stringify(a[0])}) is not a supported scalar type`);
          return new NpDtype(m[1], Number(m[2]));
        }
        case 'numpy.core.multiarray.scalar':
        case 'numpy._core.multiarray.scalar':
          arity(f, a, 2);
          return numpyScalar(a[0], a[1]);
        case '_codecs.encode': {
          arity(f, a, 2);
          const [s, enc] = a;
          if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1'))
            throw new PthError("_codecs.encode is only accepted as encode(str, 'latin1'), how pickle stores bytes");
          if (/[^\u0000-\u00ff]/.test(s)) throw new PthError('_codecs.encode: string is not latin-1');
          return new Uint8Array(Buffer.from(s, 'latin1'));
        }
        default:
          throw new PthError(`${f.fullName} only names a storage type inside a persistent id; it cannot be called`);
      }
    },
    newobj(ctx, cls, a) {
      if (a.length === 0 && cls.fullName === 'argparse.Namespace') return make(namespaces, ctx);
      if (a.length === 0 && cls.fullName === 'collections.OrderedDict') return make(ordered, ctx);
      throw new PthError(`cannot instantiate ${cls.fullName} with ${a.length} arguments`);
    },
    build(ctx, obj, state) {
      if (obj instanceof NpDtype) {
        if (
          !ctx.isTuple(state) ||
          state.length < 2 ||
          typeof state[1] !== 'string' ||
          !'<>|='.includes(state[1]) ||
          state[1].length !== 1
        ) {
          throw new PthError('numpy.dtype state is not (version, byteorder, ...)');
        }
        obj.order = state[1];
        return;
      }
      const isNs = typeof obj === 'object' && obj !== null && namespaces.has(obj);
      const isOd = typeof obj === 'object' && obj !== null && ordered.has(obj);
      if (!isNs && !isOd) throw new PthError(`BUILD (setting state) on ${typeName(obj)} is not supported`);
      // (state, slotstate) or state; an OrderedDict's state is instance attributes such as a state
      // dict's _metadata (module versions), which a plain object has no place for: checked, dropped.
      const [dictState, slots] = ctx.isTuple(state) && state.length === 2 ? state : [state, null];
      for (const s of [dictState, slots]) {
        if (s !== null && !ctx.isDict(s)) throw new PthError(`BUILD state is ${typeName(s)}, not a dict`);
        if (isNs && s !== null) {
          for (const [k, v] of Object.entries(s as Dict))
            Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
      }
    },
    persistentLoad: (ctx, pid) => persistentLoad(L, ctx, pid),
    isLeaf: (v) => v instanceof PthTensor,
  };
}

function byteswap(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

function decodeInto(t: PthTensor, raw: RawArray): void {
  let data: TensorData = raw;
  if (t.dtype === 'F16') data = decodeF16(raw as Uint16Array);
  else if (t.dtype === 'BF16') data = decodeBf16(raw as Uint16Array);
  else if (t.dtype === 'BOOL') for (let i = 0; i < raw.length; i++) (raw as Uint8Array)[i] = raw[i] ? 1 : 0;
  t.data = data;
}

function materialize(L: Loader, verifyCrc: boolean, bigEndian: boolean): void {
  const byStorage = new Map<StorageRef, Pending[]>();
  for (const p of L.pending) {
    const list = byStorage.get(p.storage);
    if (list) list.push(p);
    else byStorage.set(p.storage, [p]);
  }
  for (const [storage, users] of byStorage) {
    const info = PTH_DTYPES[storage.dtype];
    const bytes = readZipEntry(L.src, L.dir, storage.entry, { verifyCrc, maxBytes: storage.entry.size });
    if (bigEndian) byteswap(bytes, info.size);
    const raw = new info.raw(bytes.buffer as ArrayBuffer, bytes.byteOffset, storage.numel);
    for (const p of users) {
      const whole =
        users.length === 1 &&
        p.offset === 0 &&
        p.tensor.shape.reduce((a, d) => a * d, 1) === storage.numel &&
        p.stride.every((s, k) => p.shape[k] === 1 || s === p.shape.slice(k + 1).reduce((a, d) => a * d, 1));
      decodeInto(p.tensor, whole ? raw : gather(raw, p.offset, p.shape, p.stride));
    }
  }
}

function legacyFormat(src: Source): boolean {
  if (src.size < 2) return false;
  const head = new Uint8Array(Math.min(src.size, 263));
  src.read(0, head);
  const tar = head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar';
  return (head[0] === 0x80 && head[1] <= 5) || tar;
}

function readSmall(L: Loader, name: string, verifyCrc: boolean): string | undefined {
  const e = L.dir.entries.get(L.prefix + name);
  if (!e) return undefined;
  const b = readZipEntry(L.src, L.dir, e, { verifyCrc, maxBytes: 64 });
  return Buffer.from(b).toString('latin1').trim();
}

function load(src: Source, options: ReadPthOptions): unknown {
  if (endianness() !== 'LE') throw new PthError('big-endian hosts are not supported');
  if (legacyFormat(src)) {
    throw new PthError(
      "this is torch's legacy format (torch.save before PyTorch 1.6, or _use_new_zipfile_serialization=False), which is not supported; re-save it with a newer torch.save",
    );
  }
  const verifyCrc = options.verifyCrc ?? true;
  const dir = readZipDirectory(src);
  const pkls = [...dir.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new PthError(
      pkls.length === 0
        ? 'archive has no <folder>/data.pkl: not a torch.save file'
        : `archive has ${pkls.length} data.pkl records: ${pkls.join(', ')}`,
    );
  }
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const L: Loader = {
    src,
    dir,
    prefix,
    budget: options.maxBytes ?? 64 * 2 ** 20 + 8 * src.size,
    used: 0,
    storages: new Map(),
    pending: [],
  };
  const version = readSmall(L, '.data/version', verifyCrc) ?? readSmall(L, 'version', verifyCrc);
  if (version !== undefined && !/^[0-9]{1,9}$/.test(version))
    throw new PthError(`archive version record is ${JSON.stringify(version)}, not a number`);
  const order = readSmall(L, 'byteorder', verifyCrc) ?? 'little';
  if (order !== 'little' && order !== 'big')
    throw new PthError(`archive byteorder record is ${JSON.stringify(order)}, not "little" or "big"`);
  const pkl = readZipEntry(src, dir, dir.entries.get(pkls[0])!, {
    verifyCrc,
    maxBytes: options.maxPickleBytes ?? 256 * 2 ** 20,
  });
  const result = unpickle(pkl, hooksFor(L), DEFAULT_PICKLE_LIMITS);
  materialize(L, verifyCrc, order === 'big');
  return result;
}

/**
 * Loads a torch.save file (path) or its bytes. Returns the saved object as plain JS values (see
 * pickle.ts) with tensors as PthTensor; any problem, including a refused global, is a PthError.
 */
export function readPth(src: string | Uint8Array, options: ReadPthOptions = {}): unknown {
  if (typeof src !== 'string') return load(bufferSource(src), options);
  try {
    return withFileSource(src, (s) => load(s, options));
  } catch (e) {
    if (e instanceof PthError && e.file === undefined) throw new PthError(e.detail, src);
    throw e;
  }
}
