// The zip container of torch.save (PyTorch ≥ 1.6): a reader for the central directory and its
// entries, and a writer of STORED entries laid out as PyTorch's own writer does.
//
// torch writes every record STORED (uncompressed), with CRC and sizes only in the central directory
// and data descriptors (the local headers hold zeros), a zip64 end record even for small files, and a
// local "FB" extra field of 'Z' bytes that pads each record's data to a 64-byte boundary so storages
// can be mapped in place. So the reader trusts the central directory, not the local headers, for
// sizes. DEFLATE is accepted too (a checkpoint re-zipped by other tools), with a hard cap on output.
//
// The input is untrusted: every offset and size is checked against the file before anything is
// read or allocated, and every failure is a PthError naming the entry.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { PthError } from './errors.js';

/** Random access to the file or buffer being read; read() fills `into` completely or throws. */
export interface Source {
  size: number;
  read(position: number, into: Uint8Array): void;
}

export function bufferSource(buf: Uint8Array): Source {
  return {
    size: buf.length,
    read(pos, into) {
      if (pos < 0 || pos + into.length > buf.length)
        throw new PthError(`read of ${into.length} bytes at ${pos} is past the end of the ${buf.length}-byte input`);
      into.set(buf.subarray(pos, pos + into.length));
    },
  };
}

/** Runs `fn` on a Source over the file at `path`, closing it afterwards. */
export function withFileSource<T>(path: string, fn: (src: Source) => T): T {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    return fn({
      size,
      read(pos, into) {
        if (pos < 0 || pos + into.length > size)
          throw new PthError(`read of ${into.length} bytes at ${pos} is past the end of the ${size}-byte file`);
        for (let off = 0; off < into.length;) {
          const n = readSync(fd, into, off, Math.min(into.length - off, 1 << 30), pos + off);
          if (n === 0)
            throw new PthError(`file ended at byte ${pos + off} while reading (was it truncated meanwhile?)`);
          off += n;
        }
      },
    });
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (the zip polynomial). Node ≥ 20.15 has it natively; older Node 20 releases fall back to a
// table, which is slower but only matters for multi-gigabyte checkpoints.

let crcTable: Uint32Array | undefined;

function crc32Table(data: Uint8Array, crc: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `crc` (the CRC of the bytes before it). */
export function crc32(data: Uint8Array, crc = 0): number {
  return nativeCrc ? nativeCrc(data, crc) >>> 0 : crc32Table(data, crc);
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

export interface ZipDirectory {
  entries: Map<string, ZipEntry>;
  /** Entries in central-directory order (torch's reader takes the archive folder from the first). */
  order: ZipEntry[];
  /** Where the central directory starts: every entry's data must end before it. */
  dataEnd: number;
}

const EOCD_SIG = 0x06054b50;
const Z64_EOCD_SIG = 0x06064b50;
const Z64_LOCATOR_SIG = 0x07064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const MAX_COMMENT = 0xffff;
/** More than any checkpoint has (one entry per storage); bounds the directory we build. */
export const MAX_ENTRIES = 1_000_000;
/** DEFLATE cannot compress better than about 1032:1; a larger declared ratio is a bomb or a lie. */
const MAX_DEFLATE_RATIO = 1100;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PthError(`zip: ${what} ${v} is too large`);
  return Number(v);
}

function readBytes(src: Source, pos: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  src.read(pos, b);
  return b;
}

interface EndRecord {
  count: number;
  cdSize: number;
  cdOffset: number;
  /** First byte of the end records (zip64 or not): the central directory must end at or before it. */
  start: number;
}

function findEnd(src: Source): EndRecord {
  if (src.size < 22) throw new PthError(`zip: input is ${src.size} bytes, too short for a zip archive`);
  const tailLen = Math.min(src.size, 22 + MAX_COMMENT + 20 + 56);
  const tailStart = src.size - tailLen;
  const tail = readBytes(src, tailStart, tailLen);
  const view = new DataView(tail.buffer);
  let at = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === EOCD_SIG && i + 22 + view.getUint16(i + 20, true) <= tailLen) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new PthError('zip: no end-of-central-directory record (not a zip archive, or truncated)');
  const disk = view.getUint16(at + 4, true);
  const cdDisk = view.getUint16(at + 6, true);
  let count = view.getUint16(at + 10, true);
  let cdSize = view.getUint32(at + 12, true);
  let cdOffset = view.getUint32(at + 16, true);
  let start = tailStart + at;
  if (at >= 20 && view.getUint32(at - 20, true) === Z64_LOCATOR_SIG) {
    const z64At = u64(view, at - 20 + 8, 'zip64 end record offset');
    const locatorPos = tailStart + at - 20;
    if (z64At + 56 > locatorPos)
      throw new PthError(`zip: zip64 end record at ${z64At} overlaps its locator at ${locatorPos}`);
    const rec = readBytes(src, z64At, 56);
    const rv = new DataView(rec.buffer);
    if (rv.getUint32(0, true) !== Z64_EOCD_SIG)
      throw new PthError(`zip: no zip64 end record at ${z64At} where the locator points`);
    if (rv.getUint32(16, true) !== 0 || rv.getUint32(20, true) !== 0)
      throw new PthError('zip: multi-disk archives are not supported');
    count = u64(rv, 32, 'entry count');
    cdSize = u64(rv, 40, 'central directory size');
    cdOffset = u64(rv, 48, 'central directory offset');
    start = z64At;
  } else if (disk !== 0 || cdDisk !== 0) {
    throw new PthError('zip: multi-disk archives are not supported');
  }
  if (cdOffset + cdSize > start) {
    throw new PthError(
      `zip: central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end records at ${start} (truncated or corrupt)`,
    );
  }
  if (count > MAX_ENTRIES) throw new PthError(`zip: ${count} entries is over the limit of ${MAX_ENTRIES}`);
  if (count * 46 > cdSize) throw new PthError(`zip: ${count} entries cannot fit in a ${cdSize}-byte central directory`);
  return { count, cdSize, cdOffset, start };
}

/** Reads and checks the central directory; entry data is checked when it is read. */
export function readZipDirectory(src: Source): ZipDirectory {
  const { count, cdSize, cdOffset } = findEnd(src);
  const cd = readBytes(src, cdOffset, cdSize);
  const view = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  const order: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || view.getUint32(p, true) !== CENTRAL_SIG)
      throw new PthError(`zip: central directory record ${i} at ${cdOffset + p} is missing or corrupt`);
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw new PthError(`zip: central directory record ${i} runs past the end of the directory`);
    let name: string;
    try {
      name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    } catch {
      throw new PthError(`zip: entry ${i}'s name is not valid UTF-8`);
    }
    // Zip64 extended information: 8-byte values, present only for the fields saturated above.
    for (let q = p + 46 + nameLen; q + 4 <= p + 46 + nameLen + extraLen;) {
      const id = view.getUint16(q, true);
      const len = view.getUint16(q + 2, true);
      if (q + 4 + len > p + 46 + nameLen + extraLen)
        throw new PthError(`zip: entry ${JSON.stringify(name)} has a malformed extra field`);
      if (id === 0x0001) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > q + 4 + len)
            throw new PthError(`zip: entry ${JSON.stringify(name)}'s zip64 field lacks its ${what}`);
          const v = u64(view, r, what);
          r += 8;
          return v;
        };
        if (size === 0xffffffff) size = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localOffset === 0xffffffff) localOffset = take('header offset');
      }
      q += 4 + len;
    }
    if (entries.has(name)) throw new PthError(`zip: entry ${JSON.stringify(name)} appears twice`);
    if (localOffset + 30 > cdOffset)
      throw new PthError(
        `zip: entry ${JSON.stringify(name)}'s header at ${localOffset} is past the start of the central directory at ${cdOffset}`,
      );
    const e: ZipEntry = { name, method, flags, crc, compressedSize, size, localOffset };
    entries.set(name, e);
    order.push(e);
    p = end;
  }
  return { entries, order, dataEnd: cdOffset };
}

export interface ExtractOptions {
  /** Check the stored CRC-32 (default true). A CRC of 0 means none was recorded (torch can skip it). */
  verifyCrc?: boolean;
  /** Largest uncompressed size accepted for this entry. */
  maxBytes: number;
}

/** The entry's uncompressed bytes, in a fresh buffer of exactly that size (aligned for any type). */
export function readZipEntry(src: Source, dir: ZipDirectory, e: ZipEntry, opts: ExtractOptions): Uint8Array {
  const what = `zip: entry ${JSON.stringify(e.name)}`;
  if (e.flags & 1) throw new PthError(`${what} is encrypted`);
  if (e.method !== 0 && e.method !== 8)
    throw new PthError(`${what} uses compression method ${e.method} (only stored and deflate are supported)`);
  if (e.size > opts.maxBytes) throw new PthError(`${what} is ${e.size} bytes, over the limit of ${opts.maxBytes}`);
  const local = readBytes(src, e.localOffset, 30);
  const lv = new DataView(local.buffer);
  if (lv.getUint32(0, true) !== LOCAL_SIG) throw new PthError(`${what} has no local header at ${e.localOffset}`);
  const nameLen = lv.getUint16(26, true);
  const extraLen = lv.getUint16(28, true);
  const start = e.localOffset + 30 + nameLen + extraLen;
  if (start + e.compressedSize > dir.dataEnd) {
    throw new PthError(
      `${what}: data [${start}, ${start + e.compressedSize}) runs past the start of the central directory at ${dir.dataEnd}`,
    );
  }
  const localName = readBytes(src, e.localOffset + 30, nameLen);
  if (Buffer.compare(localName, Buffer.from(e.name, 'utf8')) !== 0)
    throw new PthError(`${what}: the local header names a different file`);
  let out: Uint8Array;
  if (e.method === 0) {
    if (e.compressedSize !== e.size)
      throw new PthError(`${what} is stored but its sizes differ (${e.compressedSize} vs ${e.size})`);
    out = readBytes(src, start, e.size);
  } else {
    if (e.size > Math.max(e.compressedSize, 1) * MAX_DEFLATE_RATIO) {
      throw new PthError(
        `${what} claims ${e.size} bytes from ${e.compressedSize} compressed (ratio over ${MAX_DEFLATE_RATIO}: a zip bomb?)`,
      );
    }
    const packed = readBytes(src, start, e.compressedSize);
    let inflated: Uint8Array;
    try {
      // maxOutputLength stops a bomb whose directory lies about the size, without inflating it all.
      inflated = zlib.inflateRawSync(packed, { maxOutputLength: Math.max(e.size, 1) });
    } catch (err) {
      throw new PthError(
        `${what}: deflate data is corrupt or larger than its declared ${e.size} bytes (${(err as Error).message})`,
      );
    }
    if (inflated.length !== e.size)
      throw new PthError(`${what} inflates to ${inflated.length} bytes, not the declared ${e.size}`);
    out = new Uint8Array(e.size);
    out.set(inflated);
  }
  if ((opts.verifyCrc ?? true) && e.crc !== 0) {
    const actual = crc32(out);
    if (actual !== e.crc)
      throw new PthError(
        `${what}: CRC-32 mismatch (directory says ${hex(e.crc)}, data gives ${hex(actual)}): corrupt file`,
      );
  }
  return out;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface ZipInput {
  name: string;
  data: Uint8Array;
}

/** Alignment of each record's data, as PyTorch's writer uses (kFieldAlignment). */
export const DATA_ALIGNMENT = 64;
const ZIP32_LIMIT = 0xffffffff;

/**
 * The archive as a list of byte pieces to write in order (entry data is passed through, not
 * copied). STORED entries; CRC and sizes in the local headers (no data descriptors); each entry's
 * data aligned to DATA_ALIGNMENT by an "FB" extra field of 'Z' bytes, exactly as torch pads.
 */
export function storedZip(inputs: ZipInput[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const { name, data } of inputs) {
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > 0xffff) throw new PthError(`zip: entry name of ${nameBytes.length} bytes is too long`);
    const pad = (DATA_ALIGNMENT - ((pos + 30 + nameBytes.length + 4) % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
    const local = new Uint8Array(30 + nameBytes.length + 4 + pad);
    const lv = new DataView(local.buffer);
    const crc = crc32(data);
    if (pos > ZIP32_LIMIT || data.length >= ZIP32_LIMIT)
      throw new PthError('zip: archives over 4 GiB (zip64) are not supported by this writer');
    lv.setUint32(0, LOCAL_SIG, true);
    lv.setUint16(4, 20, true); // version needed: 2.0
    lv.setUint16(6, 0, true); // flags
    lv.setUint16(8, 0, true); // STORED
    lv.setUint32(10, 0, true); // time and date 0, as torch writes: reproducible bytes
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameBytes.length, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(nameBytes, 30);
    local[30 + nameBytes.length] = 0x46; // 'F'
    local[31 + nameBytes.length] = 0x42; // 'B'
    lv.setUint16(32 + nameBytes.length, pad, true);
    local.fill(0x5a, 34 + nameBytes.length); // 'Z'

    const c = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, CENTRAL_SIG, true);
    cv.setUint16(4, 20, true); // made by: 2.0, MS-DOS attributes
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, pos, true);
    c.set(nameBytes, 46);
    central.push(c);

    pieces.push(local, data);
    pos += local.length + data.length;
  }
  const cdOffset = pos;
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  if (cdOffset + cdSize > ZIP32_LIMIT || inputs.length > 0xffff)
    throw new PthError('zip: archives over 4 GiB or 65535 entries (zip64) are not supported by this writer');
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, EOCD_SIG, true);
  ev.setUint16(8, inputs.length, true);
  ev.setUint16(10, inputs.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdOffset, true);
  pieces.push(...central, end);
  return pieces;
}

export function concatBytes(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of pieces) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
