// PNG files written by hand, for the image fuzz target and the regression tests: pngjs writes
// neither palettes, low bit depths nor Adam7 interlacing.
import { deflateSync } from 'node:zlib';
import { crc32 } from '../../src/io/pth/zip.js';
import { bytes } from '../data/fixtures.js';
import { ascii } from './mutate.js';

export const SIG = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export function cat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Bits per pixel of a PNG colour type at a bit depth. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * A PNG with every scanline of filter type 0 and pseudo-random pixel bytes, a palette with an entry
 * for every index; `idat` replaces the compressed image data (to build lying or corrupt files).
 */
export function handPng(
  w: number,
  h: number,
  depth: number,
  colorType: number,
  interlace: boolean,
  seed: number,
  idat?: Uint8Array,
): Uint8Array {
  const bpp = CHANNELS[colorType] * depth;
  const passes = interlace
    ? [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ]
    : [[0, 0, 1, 1]];
  const rows: Uint8Array[] = [];
  let s = seed;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    for (let y = 0; y < ph; y++) {
      const row = new Uint8Array(1 + Math.ceil((pw * bpp) / 8));
      row.set(bytes(row.length - 1, ++s), 1); // the palette has 2^depth entries: every index is valid
      rows.push(row);
    }
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr.set([depth, colorType, 0, 0, interlace ? 1 : 0], 8);
  const parts = [SIG, chunk('IHDR', ihdr)];
  if (colorType === 3) parts.push(chunk('PLTE', bytes(3 * Math.min(256, 2 ** depth), seed + 99)));
  parts.push(chunk('IDAT', idat ?? new Uint8Array(deflateSync(cat(rows)))), chunk('IEND', new Uint8Array(0)));
  return cat(parts);
}

/** PNG chunks of b (as far as the lengths hold): where each starts and how long its data is. */
export function pngChunks(b: Uint8Array): { at: number; len: number; type: string }[] {
  const out: { at: number; len: number; type: string }[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 12 <= b.length;) {
    const len = v.getUint32(p);
    if (p + 12 + len > b.length) break;
    out.push({ at: p, len, type: Buffer.from(b.subarray(p + 4, p + 8)).toString('latin1') });
    p += 12 + len;
  }
  return out;
}

/** Recomputes every chunk's CRC, so damage inside chunks reaches the decoder. */
export function fixCrcs(b: Uint8Array): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const c of pngChunks(b)) v.setUint32(c.at + 8 + c.len, crc32(b.subarray(c.at + 4, c.at + 8 + c.len)));
}
