// Bounded file access for readers fed untrusted files: nothing is allocated from a size a file
// declares until that size has been checked against the bytes that are really there.
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { DataError } from './errors.js';

/** Default ceiling on any one decoded file or dataset array (1 GiB); every reader takes `maxBytes`. */
export const DEFAULT_MAX_BYTES = 1 << 30;

/** Deflate cannot expand by more than about 1032:1, so a larger declared size is a lie. */
const MAX_DEFLATE_RATIO = 1032;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The whole file, refused before reading when it is larger than `maxBytes`. */
export async function readFileBounded(path: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Uint8Array> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new DataError(path, 'is not a regular file');
    size = st.size;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(path, `cannot read: ${(e as Error).message}`);
  }
  if (size > maxBytes) throw new DataError(path, `is ${size} bytes, over the limit of ${maxBytes} (raise maxBytes)`);
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got !== size) throw new DataError(path, `shrank while being read (${got} of ${size} bytes)`);
    return buf;
  } finally {
    await fh.close();
  }
}

/**
 * Reads a header's declared total size: returns the total decoded byte count once `head` holds
 * enough of the header to know it, null while it needs more bytes, and throws on a bad header.
 */
export type DeclaredSize = (head: Uint8Array) => number | null;

/**
 * Inflates a gzip stream whose decoded size its own header declares. Decoding streams; the output
 * is allocated once, after the header is read and its size checked against `maxBytes` and against
 * what the compressed bytes can possibly inflate to; inflating past it stops at once (a gzip bomb
 * costs nothing) and falling short is reported as truncation.
 */
export function gunzipDeclared(
  source: string,
  compressed: Uint8Array,
  declared: DeclaredSize,
  maxBytes = DEFAULT_MAX_BYTES,
  alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n),
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    let head: Uint8Array = new Uint8Array(0);
    let out: Uint8Array | null = null;
    let written = 0;
    let failed = false;
    const fail = (problem: string): void => {
      if (failed) return;
      failed = true;
      z.destroy();
      reject(new DataError(source, problem));
    };
    z.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (!out) {
        const h = new Uint8Array(head.length + chunk.length);
        h.set(head);
        h.set(chunk, head.length);
        head = h;
        let total: number | null;
        try {
          total = declared(head);
        } catch (e) {
          failed = true;
          z.destroy();
          reject(e);
          return;
        }
        if (total === null) return;
        if (total > maxBytes)
          return fail(`declares ${total} decoded bytes, over the limit of ${maxBytes} (raise maxBytes)`);
        const bound = compressed.length * MAX_DEFLATE_RATIO + 1024;
        if (total > bound)
          return fail(
            `declares ${total} decoded bytes, but ${compressed.length} gzip bytes inflate to at most ${bound}`,
          );
        out = alloc(total);
        chunk = Buffer.from(head.buffer, head.byteOffset, head.length);
      }
      if (written + chunk.length > out.length) {
        return fail(`inflates past its declared size of ${out.length} bytes (corrupt, or a gzip bomb)`);
      }
      out.set(chunk, written);
      written += chunk.length;
    });
    z.on('error', (e) =>
      fail(
        `gzip error: ${e.message}${written || head.length ? ` after ${Math.max(written, head.length)} decoded bytes` : ''} (truncated or corrupt)`,
      ),
    );
    z.on('end', () => {
      if (failed) return;
      if (!out) {
        try {
          declared(head);
        } catch (e) {
          failed = true;
          reject(e);
          return;
        }
        return fail(`truncated: the stream ends after ${head.length} decoded bytes, inside the header`);
      }
      if (written < out.length)
        return fail(`truncated: inflates to ${written} bytes, the header declares ${out.length}`);
      resolve(out);
    });
    z.end(compressed);
  });
}
