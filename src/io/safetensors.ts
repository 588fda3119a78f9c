// safetensors checkpoints (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the data buffer the offsets index.
//
// Files written here are byte-identical to what the reference implementation (the Rust crate behind
// the Python package) writes for the same tensors: compact JSON, "__metadata__" first, tensors laid
// out by descending dtype (the crate's alignment order) then by name, header padded with spaces to a
// multiple of 8 — so every tensor starts aligned to its element size and PyTorch/numpy can map it
// without copying. Metadata keys are written sorted (the crate's order is a hash order).
//
// Reading treats the file as untrusted: every length, offset and shape is checked against the file
// size before anything is allocated, and any problem is a SafetensorsError naming the tensor.
// Checks follow the reference: the tensors must tile the data buffer exactly (no gap, overlap or
// trailing bytes), in any header order. Unknown fields inside a tensor entry are ignored, as there.
//
// Element types on reading (`data`):
//   F32 → Float32Array, F64 → Float64Array, F16 and BF16 → Float32Array (decoded exactly),
//   I32/U32/I16/U16/I8/U8 → the matching typed array, BOOL → Uint8Array,
//   I64 → BigInt64Array and U64 → BigUint64Array, always: lossless and the same type whatever the
//   values (step counters, BatchNorm's num_batches_tracked); int64ToInt32 narrows with a range check.
// On writing, F16/BF16 take a Float32Array (rounded to nearest even, as PyTorch casts) or a
// Uint16Array of raw bits, I64 takes a BigInt64Array or an Int32Array; every other dtype takes its
// own typed array.
//
// Checksums: the writer stores the SHA-256 of the data buffer, in hex, as __metadata__[CHECKSUM_KEY]
// (opt out with { checksum: false }). The reader verifies it when present (default), requires it
// with { verify: true }, and skips it with { verify: false }. It covers the tensor bytes, not the
// header; header damage is caught by the structural checks unless it rewrites a shape into another
// with the same element count.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../util/half.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { bytesOf, tensorBytes } from './tensor-bytes.js';
import { JsonNumber, JsonSyntaxError, parseStrictJson, type JsonValue } from '../util/strict-json.js';

export type SafetensorsDtype =
  'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

export type TensorData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

export interface SafeTensorInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export interface WriteOptions {
  /** Store the data buffer's SHA-256 in __metadata__[CHECKSUM_KEY] (default true). */
  checksum?: boolean;
}

export interface ReadOptions {
  /** true: the checksum must be present and match; false: skip it; default: check it if present. */
  verify?: boolean;
}

export const CHECKSUM_KEY = 'payload_sha256';
/** The reference implementation's limit; real headers are kilobytes. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  /** `file`: the path read, when the input was one (readSafetensors adds it, so messages name the file). */
  constructor(
    readonly detail: string,
    readonly tensor?: string,
    readonly file?: string,
  ) {
    const where = [file, tensor === undefined ? undefined : `tensor ${JSON.stringify(tensor)}`].filter(
      (x) => x !== undefined,
    );
    super(`safetensors: ${where.map((w) => `${w}: `).join('')}${detail}`);
    this.name = 'SafetensorsError';
  }
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): TensorData; readonly name: string };

// rank: position in the reference's Dtype enum, which it keeps in increasing alignment order.
const DTYPES: Record<SafetensorsDtype, { size: number; rank: number; array: ArrayCtor }> = {
  BOOL: { size: 1, rank: 0, array: Uint8Array },
  U8: { size: 1, rank: 1, array: Uint8Array },
  I8: { size: 1, rank: 2, array: Int8Array },
  I16: { size: 2, rank: 3, array: Int16Array },
  U16: { size: 2, rank: 4, array: Uint16Array },
  F16: { size: 2, rank: 5, array: Uint16Array },
  BF16: { size: 2, rank: 6, array: Uint16Array },
  I32: { size: 4, rank: 7, array: Int32Array },
  U32: { size: 4, rank: 8, array: Uint32Array },
  F32: { size: 4, rank: 9, array: Float32Array },
  F64: { size: 8, rank: 10, array: Float64Array },
  I64: { size: 8, rank: 11, array: BigInt64Array },
  U64: { size: 8, rank: 12, array: BigUint64Array },
};

function isDtype(s: string): s is SafetensorsDtype {
  return Object.hasOwn(DTYPES, s);
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE')
    throw new SafetensorsError('big-endian hosts are not supported (the format is little-endian)');
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Random access to the file or buffer being read; read() fills `into` completely or throws. */
interface Source {
  size: number;
  read(position: number, into: Uint8Array): void;
}

function bufferSource(buf: Uint8Array): Source {
  return { size: buf.length, read: (pos, into) => into.set(buf.subarray(pos, pos + into.length)) };
}

function fileSource(fd: number): Source {
  return {
    size: fstatSync(fd).size,
    read(pos, into) {
      for (let off = 0; off < into.length;) {
        const n = readSync(fd, into, off, Math.min(into.length - off, 1 << 30), pos + off);
        if (n === 0)
          throw new SafetensorsError(`file ended at byte ${pos + off} while reading (was it truncated meanwhile?)`);
        off += n;
      }
    },
  };
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  headerBytes: number;
  entries: Entry[]; // sorted by data offset
  metadata: Record<string, string>;
}

function describe(v: JsonValue | undefined): string {
  if (v instanceof JsonNumber) return v.text;
  if (v instanceof Map) return 'an object';
  if (Array.isArray(v)) return 'an array';
  return JSON.stringify(v) ?? 'nothing';
}

function readLength(src: Source): number {
  if (src.size < 8) throw new SafetensorsError(`input is ${src.size} bytes, too short for the 8-byte header length`);
  const b = new Uint8Array(8);
  src.read(0, b);
  const n = new DataView(b.buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw new SafetensorsError(`header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (8n + n > BigInt(src.size))
    throw new SafetensorsError(`header length ${n} runs past the end of the ${src.size}-byte input`);
  return Number(n);
}

function parseJsonHeader(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so it fails the '{' check instead of vanishing.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  if (text[0] !== '{') throw new SafetensorsError(`header does not start with '{'`);
  try {
    return parseStrictJson(text, { maxDepth: 32 });
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    if (e.duplicateKey !== undefined) {
      const [outer] = e.keyPath;
      if (e.duplicateKey === '__metadata__' && outer === undefined)
        throw new SafetensorsError('duplicate "__metadata__" in header');
      if (outer === undefined) throw new SafetensorsError('duplicate tensor name in header', e.duplicateKey);
      if (outer === '__metadata__')
        throw new SafetensorsError(`duplicate __metadata__ key ${JSON.stringify(e.duplicateKey)}`);
      throw new SafetensorsError(`duplicate field ${JSON.stringify(e.duplicateKey)}`, outer);
    }
    throw new SafetensorsError(`header is not valid JSON: ${e.message}`);
  }
}

function nonNegativeInt(v: JsonValue | undefined): number | undefined {
  if (!(v instanceof JsonNumber) || !v.integral || !Number.isSafeInteger(v.value) || v.value < 0) return undefined;
  return v.value === 0 ? 0 : v.value; // -0 is a valid spelling of 0
}

function parseEntry(name: string, v: JsonValue, dataBytes: number): Entry {
  const fail = (msg: string): never => {
    throw new SafetensorsError(msg, name);
  };
  if (!(v instanceof Map)) return fail(`entry is ${describe(v)}, not an object`);
  const dtype = v.get('dtype');
  if (dtype === undefined) fail('missing "dtype"');
  if (typeof dtype !== 'string') return fail(`dtype is ${describe(dtype)}, not a string`);
  if (!isDtype(dtype)) return fail(`unknown or unsupported dtype ${JSON.stringify(dtype)}`);
  const rawShape = v.get('shape');
  if (rawShape === undefined) fail('missing "shape"');
  if (!Array.isArray(rawShape)) return fail(`shape is ${describe(rawShape)}, not an array`);
  const shape = rawShape.map(
    (d, k) => nonNegativeInt(d) ?? fail(`shape[${k}] is ${describe(d)}, not a non-negative integer`),
  );
  const offsets = v.get('data_offsets');
  if (offsets === undefined) fail('missing "data_offsets"');
  if (!Array.isArray(offsets) || offsets.length !== 2) return fail('data_offsets is not a [begin, end] pair');
  const [begin, end] = offsets.map(
    (o, k) => nonNegativeInt(o) ?? fail(`data_offsets[${k}] is ${describe(o)}, not a non-negative integer`),
  );
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) fail(`data_offsets [${begin}, ${end}] are out of range of the ${dataBytes}-byte data buffer`);
  // Past 2^53 the product is inexact but can only be larger than any span, which is what matters.
  const numel = shape.reduce((a, d) => a * d, 1);
  const size = DTYPES[dtype].size;
  if (numel * size !== end - begin) {
    fail(
      `shape [${shape}] × ${size} bytes (${dtype}) is ${numel * size} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

function parseMetadata(v: JsonValue): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === null) return out; // the reference reads the field as Option<map>
  if (!(v instanceof Map)) throw new SafetensorsError(`__metadata__ is ${describe(v)}, not an object of strings`);
  for (const [k, s] of v) {
    if (typeof s !== 'string')
      throw new SafetensorsError(`__metadata__[${JSON.stringify(k)}] is ${describe(s)}, not a string`);
    Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readHeader(src: Source): Header {
  const n = readLength(src);
  const bytes = new Uint8Array(n);
  src.read(8, bytes);
  const json = parseJsonHeader(bytes);
  if (!(json instanceof Map)) throw new SafetensorsError('header is not a JSON object');
  const dataBytes = src.size - 8 - n;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of json) {
    if (name === '__metadata__') metadata = parseMetadata(v);
    else entries.push(parseEntry(name, v, dataBytes));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin < pos && prev) {
      throw new SafetensorsError(
        `data_offsets [${e.begin}, ${e.end}] overlap those of ${JSON.stringify(prev.name)} [${prev.begin}, ${prev.end}]`,
        e.name,
      );
    }
    if (e.begin > pos)
      throw new SafetensorsError(`data bytes [${pos}, ${e.begin}) before it belong to no tensor`, e.name);
    pos = e.end;
    prev = e;
  }
  if (pos !== dataBytes)
    throw new SafetensorsError(`the last ${dataBytes - pos} bytes of the data buffer belong to no tensor`);
  return { headerBytes: n, entries, metadata };
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array): TensorData {
  const { size, array } = DTYPES[dtype];
  const raw = new array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
  if (dtype === 'F16') return decodeF16(raw as Uint16Array);
  if (dtype === 'BF16') return decodeBf16(raw as Uint16Array);
  return raw;
}

function readFrom(src: Source, options: ReadOptions): SafetensorsFile {
  assertLittleEndian();
  const { headerBytes, entries, metadata } = readHeader(src);
  const expected = Object.hasOwn(metadata, CHECKSUM_KEY) ? metadata[CHECKSUM_KEY] : undefined;
  if (options.verify === true && expected === undefined)
    throw new SafetensorsError(`no __metadata__.${CHECKSUM_KEY} to verify`);
  const hash = options.verify !== false && expected !== undefined ? createHash('sha256') : undefined;
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    // Fresh, exactly sized buffers: aligned for any element type, and no view pins the whole file.
    const bytes = new Uint8Array(e.end - e.begin);
    src.read(8 + headerBytes + e.begin, bytes);
    hash?.update(bytes); // the entries tile the data buffer in order, so this hashes all of it
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decode(e.dtype, bytes) });
  }
  if (hash) {
    const actual = hash.digest('hex');
    if (actual !== expected) {
      throw new SafetensorsError(
        `data checksum mismatch: header says ${expected}, data hashes to ${actual} (corrupt or modified file)`,
      );
    }
  }
  return { tensors, metadata };
}

/** Reads a safetensors file (by path) or an in-memory copy of one. */
export function readSafetensors(src: string | Uint8Array, options: ReadOptions = {}): SafetensorsFile {
  if (typeof src !== 'string') return readFrom(bufferSource(src), options);
  const fd = openSync(src, 'r');
  try {
    return readFrom(fileSource(fd), options);
  } catch (e) {
    if (e instanceof SafetensorsError && e.file === undefined) throw new SafetensorsError(e.detail, e.tensor, src);
    throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * A file's __metadata__ from its header alone: no tensor bytes are read and no checksum is verified,
 * but the header is checked as readSafetensors checks it (a truncated file still fails).
 */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    return readHeader(fileSource(fd)).metadata;
  } catch (e) {
    if (e instanceof SafetensorsError && e.file === undefined) throw new SafetensorsError(e.detail, e.tensor, path);
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** SHA-256 (hex) of the data buffer after the header, as stored under CHECKSUM_KEY. */
export function payloadSha256(src: string | Uint8Array): string {
  const hash = createHash('sha256');
  if (typeof src !== 'string') {
    const n = readLength(bufferSource(src));
    return hash.update(src.subarray(8 + n)).digest('hex');
  }
  const fd = openSync(src, 'r');
  try {
    const s = fileSource(fd);
    const n = readLength(s);
    const chunk = new Uint8Array(1 << 20);
    for (let pos = 8 + n; pos < s.size; pos += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, s.size - pos));
      s.read(pos, part);
      hash.update(part);
    }
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The named tensor as f32 values (F32, F16 or BF16), checking its shape when one is given. */
export function getF32(file: SafetensorsFile, name: string, shape?: readonly number[]): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new SafetensorsError('not in the file', name);
  if (!(t.data instanceof Float32Array)) throw new SafetensorsError(`is ${t.dtype}, not a float tensor`, name);
  if (shape && (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i]))) {
    throw new SafetensorsError(`has shape [${t.shape}], expected [${shape}]`, name);
  }
  return t.data;
}

/** Narrows I64/U64 data to Int32Array, failing (naming the tensor) if any value is out of range. */
export function int64ToInt32(data: BigInt64Array | BigUint64Array, name?: string): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < -2147483648n || v > 2147483647n)
      throw new SafetensorsError(`value ${v} at index ${i} does not fit in int32`, name);
    out[i] = Number(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

interface Prepared {
  header: Uint8Array; // length prefix + padded JSON
  chunks: Uint8Array[]; // the data buffer, in file order
}

const LONE_SURROGATE = /\p{Cs}/u;

function encodeTensor(name: string, t: SafeTensorInput): Uint8Array {
  const fail = (msg: string): never => {
    throw new SafetensorsError(msg, name);
  };
  if (typeof t.dtype !== 'string' || !isDtype(t.dtype))
    return fail(`unknown or unsupported dtype ${JSON.stringify(t.dtype)}`);
  if (!Array.isArray(t.shape)) fail(`shape [${t.shape}] is not a list of non-negative integers`);
  const { data, dtype } = t;
  if (!ArrayBuffer.isView(data) || data instanceof DataView) return fail('data is not a typed array');
  return tensorBytes(dtype, t.shape, data, DTYPES[dtype].array, fail);
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function prepare(
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata: Record<string, string>,
  options: WriteOptions,
): Prepared {
  assertLittleEndian();
  const list = [...(tensors instanceof Map ? tensors : Object.entries(tensors))].map(([name, t]) => {
    if (name === '__metadata__') throw new SafetensorsError('the name is reserved for the metadata', name);
    if (LONE_SURROGATE.test(name)) throw new SafetensorsError('the name is not well-formed Unicode', name);
    return { name, t, bytes: encodeTensor(name, t) };
  });
  list.sort((a, b) => DTYPES[b.t.dtype].rank - DTYPES[a.t.dtype].rank || utf8Compare(a.name, b.name));

  const meta = new Map<string, string>();
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`__metadata__[${JSON.stringify(k)}] must be a string`);
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v))
      throw new SafetensorsError(`__metadata__[${JSON.stringify(k)}] is not well-formed Unicode`);
    if (k !== CHECKSUM_KEY) meta.set(k, v); // a stale checksum from a file read earlier must not survive
  }
  if (options.checksum ?? true) {
    const hash = createHash('sha256');
    for (const { bytes } of list) hash.update(bytes);
    meta.set(CHECKSUM_KEY, hash.digest('hex'));
  }

  const parts: string[] = [];
  if (meta.size > 0) {
    const kv = [...meta]
      .sort(([a], [b]) => utf8Compare(a, b))
      .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const { name, t, bytes } of list) {
    const end = offset + bytes.length;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES)
    throw new SafetensorsError(`header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, chunks: list.map((e) => e.bytes) };
}

/** The file's bytes in memory (what writeSafetensors puts on disk). */
export function serializeSafetensors(
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata: Record<string, string> = {},
  options: WriteOptions = {},
): Uint8Array {
  const { header, chunks } = prepare(tensors, metadata, options);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, header.length));
  out.set(header);
  let pos = header.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * Writes a checkpoint atomically: the bytes go to `${path}.tmp-${pid}`, are fsynced, and the file is
 * renamed over `path`, so a crash leaves either the old file or the complete new one. Tensor data is
 * written straight from the given arrays (no whole-file copy in memory).
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensorInput> | Map<string, SafeTensorInput>,
  metadata: Record<string, string> = {},
  options: WriteOptions = {},
): void {
  const { header, chunks } = prepare(tensors, metadata, options);
  writeFileAtomic(path, [header, ...chunks]);
}
