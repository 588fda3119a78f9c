// JSON-lines training logs: one object per line, each handed to the kernel with a single write
// before write() returns, so a run that is killed (even with SIGKILL) keeps every line it logged.
// Only a power loss can lose lines without { fsync: true }.
//
// JSON has no NaN or Infinity, and a diverging loss is exactly what a log must show, so non-finite
// numbers are written as the strings "NaN", "Infinity" and "-Infinity"; readJsonl turns those
// strings back into numbers (unless { reviveNonFinite: false }). BigInts are written as numbers when
// exactly representable and as decimal strings otherwise; typed arrays as plain arrays.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

const NON_FINITE = new Map<string, number>([
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
]);

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView))
    return Array.from(value as unknown as ArrayLike<unknown>);
  return value;
}

/** One JSON line for `record` (no newline), with the conventions above. */
export function toJsonLine(record: object): string {
  return JSON.stringify(record, replacer);
}

export interface JsonlLoggerOptions {
  /** fsync after every line: survives power loss too, at a cost per line (default false). */
  fsync?: boolean;
  /** Add `time` (Unix seconds, ms precision) to every record: curves against wall time, across resumes. */
  timestamps?: boolean;
}

export class JsonlLogger {
  private fd: number | undefined;
  private readonly fsync: boolean;
  private readonly timestamps: boolean;

  /**
   * Appends to `path`, creating it if needed. A last line left unfinished by a killed run is cut
   * off first, so the lines of this run start on a line of their own and the file stays valid.
   */
  constructor(
    readonly path: string,
    options: JsonlLoggerOptions = {},
  ) {
    this.fsync = options.fsync ?? false;
    this.timestamps = options.timestamps ?? false;
    this.fd = openSync(path, 'a+');
    dropPartialLastLine(this.fd);
  }

  write(record: object): void {
    if (this.fd === undefined) throw new Error(`JsonlLogger: ${this.path} is closed`);
    const line = this.timestamps ? { ...record, time: Math.round(Date.now()) / 1000 } : record;
    const bytes = Buffer.from(toJsonLine(line) + '\n', 'utf8');
    for (let off = 0; off < bytes.length;) off += writeSync(this.fd, bytes, off, bytes.length - off);
    if (this.fsync) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

function dropPartialLastLine(fd: number): void {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const n = readSync(fd, buf, 0, end - start, start);
    const nl = buf.subarray(0, n).lastIndexOf(0x0a);
    if (nl >= 0) {
      if (start + nl + 1 !== size) ftruncateSync(fd, start + nl + 1);
      return;
    }
    end = start;
  }
  if (size > 0) ftruncateSync(fd, 0); // a single unfinished line and nothing else
}

export interface JsonlReadResult<T> {
  records: T[];
  /** The file ended inside a line that does not parse (a run killed mid-write); it was left out. */
  truncated: boolean;
}

export interface ReadJsonlOptions {
  /** Turn the strings "NaN", "Infinity", "-Infinity" back into numbers (default true). */
  reviveNonFinite?: boolean;
}

/**
 * Reads a JSON-lines file. An unparseable last line without its newline is taken as cut off and left
 * out; an unparseable line anywhere else is corruption and throws, naming the line.
 */
export function readJsonl<T = Record<string, unknown>>(
  path: string,
  options: ReadJsonlOptions = {},
): JsonlReadResult<T> {
  const revive = options.reviveNonFinite ?? true;
  const reviver = revive
    ? (_k: string, v: unknown) => (typeof v === 'string' && NON_FINITE.has(v) ? NON_FINITE.get(v) : v)
    : undefined;
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const last = lines.pop() ?? ''; // '' when the file ends with a newline
  const records: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line, reviver) as T);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not a JSON line (${(e as Error).message})`);
    }
  });
  let truncated = false;
  if (last.trim() !== '') {
    try {
      records.push(JSON.parse(last, reviver) as T);
    } catch {
      truncated = true;
    }
  }
  return { records, truncated };
}
