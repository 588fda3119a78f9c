// Seeded byte mutations for the parser fuzz tests. Every case draws from its own generator, seeded
// from (run seed, case index), so any single case can be rebuilt without replaying the ones before
// it; every mutation appends a short note to the case's log, which failures print.
import { rng } from '../helpers/check.js';

/** The case's random source, with the draws the targets need. */
export class Fuzz {
  readonly log: string[] = [];
  private readonly r: () => number;
  constructor(seed: number, index: number) {
    this.r = rng(mix(seed, index));
  }
  /** Uniform in [0, n). */
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  note(s: string): void {
    this.log.push(s);
  }
}

/** A 32-bit hash of (seed, index), so neighbouring cases get unrelated streams. */
function mix(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A length, count or offset field of a seed file, for "set a size field to a huge value". */
export interface Field {
  at: number;
  size: 1 | 2 | 4 | 8;
  le: boolean;
  what: string;
}

export interface MutateOptions {
  /** Known size fields of `input` (positions valid before the first mutation). */
  fields?: Field[];
  /** Other valid files to splice from. */
  donors?: Uint8Array[];
  /** Format tokens (opcodes, JSON punctuation, markers) worth inserting or writing over bytes. */
  tokens?: Uint8Array[];
  /** How many mutations at most (default 4). */
  maxOps?: number;
}

const BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x20, 0x0a];
const U16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];
const U32 = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const U64 = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  2n ** 53n - 1n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

/** Writes `v` (wrapped to the field's width) into b at `at`; the caller keeps it inside b. */
function writeInt(b: Uint8Array, at: number, size: number, le: boolean, v: bigint): void {
  for (let k = 0; k < size; k++) {
    const byte = Number((v >> BigInt(8 * k)) & 0xffn);
    b[le ? at + k : at + size - 1 - k] = byte;
  }
}

function readInt(b: Uint8Array, at: number, size: number, le: boolean): bigint {
  let v = 0n;
  for (let k = 0; k < size; k++) v |= BigInt(b[le ? at + k : at + size - 1 - k]) << BigInt(8 * k);
  return v;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A value a size field is likely to be checked against badly: 0, off by one, huge, sign edges. */
function interestingFor(f: Fuzz, size: number, current: bigint): bigint {
  const max = (1n << BigInt(8 * size)) - 1n;
  const near = [current - 1n, current + 1n, current * 2n, current + 8n, current * 1000n].map((v) =>
    v < 0n ? 0n : v > max ? max : v,
  );
  const table = size === 1 ? BYTES.map(BigInt) : size === 2 ? U16.map(BigInt) : size === 4 ? U32.map(BigInt) : U64;
  return f.chance(0.3)
    ? f.pick(near)
    : f.chance(0.2)
      ? BigInt(f.int(Number(max < 1n << 20n ? max + 1n : 1n << 20n)))
      : f.pick(table);
}

/**
 * 1..maxOps mutations of a copy of `input`: truncation, bit flips, interesting bytes and integers,
 * inserted, deleted and duplicated chunks, splices from donor files, size fields set to huge or
 * off-by-one values, format tokens. Notes go to f.log.
 */
export function mutate(f: Fuzz, input: Uint8Array, opts: MutateOptions = {}): Uint8Array {
  let b: Uint8Array = input.slice();
  const ops = 1 + f.int(opts.maxOps ?? 4);
  for (let k = 0; k < ops; k++) {
    const at = f.int(b.length + 1);
    const kind = f.int(12);
    switch (kind) {
      case 0: // truncate
        if (f.chance(0.5) || b.length === 0) {
          f.note(`truncate to ${at}`);
          b = b.slice(0, at);
        } else {
          const from = f.int(Math.min(b.length, 64));
          f.note(`drop the first ${from}`);
          b = b.slice(from);
        }
        break;
      case 1: {
        // bit flips
        const n = 1 + f.int(4);
        for (let j = 0; j < n && b.length > 0; j++) {
          const p = f.int(b.length);
          const bit = f.int(8);
          b[p] ^= 1 << bit;
          f.note(`flip bit ${bit} at ${p}`);
        }
        break;
      }
      case 2: // one interesting byte
        if (b.length > 0) {
          const p = f.int(b.length);
          b[p] = f.chance(0.7) ? f.pick(BYTES) : f.int(256);
          f.note(`byte ${p} = 0x${b[p].toString(16)}`);
        }
        break;
      case 3: {
        // an interesting 2/4/8-byte integer anywhere
        const size = f.pick([2, 4, 4, 8] as const);
        if (b.length < size) break;
        const le = f.chance(0.5);
        const p = f.int(b.length - size + 1);
        const v = interestingFor(f, size, readInt(b, p, size, le));
        writeInt(b, p, size, le, v);
        f.note(`u${8 * size}${le ? 'le' : 'be'} at ${p} = ${v}`);
        break;
      }
      case 4: {
        // insert random or repeated bytes
        const n = 1 + f.int(f.chance(0.8) ? 16 : 512);
        const fill = f.chance(0.5) ? -1 : f.pick(BYTES);
        const ins = Uint8Array.from({ length: n }, () => (fill < 0 ? f.int(256) : fill));
        b = concat(b.subarray(0, at), ins, b.subarray(at));
        f.note(`insert ${n} bytes${fill < 0 ? '' : ` of 0x${fill.toString(16)}`} at ${at}`);
        break;
      }
      case 5: {
        // delete a chunk
        const n = 1 + f.int(f.chance(0.8) ? 16 : 1024);
        b = concat(b.subarray(0, at), b.subarray(at + n));
        f.note(`delete ${n} bytes at ${at}`);
        break;
      }
      case 6: {
        // duplicate a chunk somewhere else
        if (b.length === 0) break;
        const from = f.int(b.length);
        const n = 1 + f.int(Math.min(256, b.length - from));
        const chunk = b.slice(from, from + n);
        b = concat(b.subarray(0, at), chunk, b.subarray(at));
        f.note(`copy ${n} bytes from ${from} to ${at}`);
        break;
      }
      case 7: {
        // splice from another valid file
        const donors = opts.donors ?? [];
        if (donors.length === 0) break;
        const d = f.int(donors.length);
        const donor = donors[d];
        const from = f.int(donor.length + 1);
        if (f.chance(0.5)) {
          b = concat(b.subarray(0, at), donor.subarray(from));
          f.note(`splice: own bytes [0, ${at}) then donor ${d} from ${from}`);
        } else {
          const n = f.int(Math.min(512, donor.length - from) + 1);
          b = concat(b.subarray(0, at), donor.subarray(from, from + n), b.subarray(at + n));
          f.note(`overwrite ${n} bytes at ${at} with donor ${d} bytes from ${from}`);
        }
        break;
      }
      case 8:
      case 9: {
        // a known size field (only meaningful while the layout is unchanged)
        const fields = (opts.fields ?? []).filter((x) => x.at + x.size <= b.length);
        if (fields.length === 0) break;
        const fld = f.pick(fields);
        const v = interestingFor(f, fld.size, readInt(b, fld.at, fld.size, fld.le));
        writeInt(b, fld.at, fld.size, fld.le, v);
        f.note(`${fld.what} = ${v}`);
        break;
      }
      case 10: {
        // a format token, inserted or written over
        const tokens = opts.tokens ?? [];
        if (tokens.length === 0) break;
        const t = f.pick(tokens);
        if (f.chance(0.5)) {
          b = concat(b.subarray(0, at), t, b.subarray(at));
          f.note(`insert token ${hex(t)} at ${at}`);
        } else {
          b = concat(b.subarray(0, at), t, b.subarray(at + t.length));
          f.note(`write token ${hex(t)} at ${at}`);
        }
        break;
      }
      default: {
        // overwrite a run with one byte value (zeros, 0xff, ...)
        const n = 1 + f.int(64);
        const v = f.pick(BYTES);
        b.fill(v, at, at + n);
        f.note(`fill ${n} bytes at ${at} with 0x${v.toString(16)}`);
      }
    }
  }
  return b;
}

function hex(t: Uint8Array): string {
  const printable = t.every((c) => c >= 0x20 && c < 0x7f);
  return printable ? JSON.stringify(Buffer.from(t).toString('latin1')) : Buffer.from(t).toString('hex');
}

export const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** Product of dims, for self-consistency oracles. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}
