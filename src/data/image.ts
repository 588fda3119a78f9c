// PNG / JPEG decoding for image folders. Dimensions are read from the file's own header first, so a
// file that claims gigapixels is refused before any decoder allocates for it.
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { inflateSync } from 'node:zlib';
import { DataError } from './errors.js';

export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function u16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}

function jpegHeader(source: string, b: Uint8Array): ImageHeader {
  let p = 2;
  for (;;) {
    while (p < b.length && b[p] !== 0xff) p++;
    while (p < b.length && b[p] === 0xff) p++;
    if (p + 2 >= b.length)
      throw new DataError(source, 'truncated JPEG: no frame header (SOF) before the end of the file');
    const m = b[p];
    p++;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) continue;
    if (m === 0xd9 || m === 0xda) throw new DataError(source, 'JPEG has no frame header (SOF) before its scan data');
    const len = u16(b, p);
    if (len < 2 || p + len > b.length)
      throw new DataError(
        source,
        `truncated JPEG: segment 0xff${m.toString(16)} of ${len} bytes runs past the end of the file`,
      );
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (len < 8) throw new DataError(source, 'JPEG frame header too short');
      const components = b[p + 7];
      if (len < 8 + 3 * components)
        throw new DataError(source, `JPEG frame header of ${len} bytes is too short for its ${components} components`);
      // The standard allows sampling factors 1..4; jpeg-js takes up to 15, and pads every block row
      // and column to them, which turns a small image into hundreds of times its size in blocks.
      for (let k = 0; k < components; k++) {
        const hv = b[p + 9 + 3 * k];
        if (hv >> 4 < 1 || hv >> 4 > 4 || (hv & 15) < 1 || (hv & 15) > 4) {
          throw new DataError(
            source,
            `JPEG component ${k} has sampling factors ${hv >> 4}x${hv & 15} (each must be 1..4)`,
          );
        }
      }
      return { format: 'jpeg', height: u16(b, p + 3), width: u16(b, p + 5) };
    }
    p += len;
  }
}

/** Format and size from the first bytes; throws a DataError for anything else. */
export function imageHeader(source: string, b: Uint8Array): ImageHeader {
  if (b.length >= 8 && PNG_SIG.every((v, i) => b[i] === v)) {
    if (b.length < 24 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR')
      throw new DataError(source, 'truncated PNG: no IHDR chunk');
    const dv = new DataView(b.buffer, b.byteOffset + 16, 8);
    return { format: 'png', width: dv.getUint32(0), height: dv.getUint32(4) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegHeader(source, b);
  throw new DataError(source, 'is neither a PNG nor a JPEG (unrecognised signature)');
}

/** Deflate cannot expand by more than about 1032:1 (as in files.ts). */
const MAX_DEFLATE_RATIO = 1032;

/** PNG channels per colour type, and the bit depths each allows. */
const PNG_COLOUR: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/**
 * Checks a PNG's image data before pngjs sees it: the scanlines the header implies must be something
 * the IDAT bytes could inflate to (so a small file cannot make pngjs allocate for a huge image), and
 * the data must inflate, under that size as a hard cap, to exactly those scanlines. pngjs's own
 * inflater returns uninitialised memory as pixels for a corrupt deflate stream instead of failing,
 * and inflates interlaced data with no cap at all.
 */
function checkPngData(source: string, b: Uint8Array, w: number, h: number): void {
  const colour = PNG_COLOUR[b[25]];
  const depth = b[24];
  if (!colour) throw new DataError(source, `PNG colour type ${b[25]} is not one of 0, 2, 3, 4, 6`);
  if (!colour.depths.includes(depth))
    throw new DataError(
      source,
      `PNG bit depth ${depth} is not valid for colour type ${b[25]} (${colour.depths.join(', ')})`,
    );
  if (b[28] > 1) throw new DataError(source, `PNG interlace method ${b[28]} is not 0 or 1`);
  const bpp = colour.channels * depth;
  let scanlines = 0;
  for (const [x0, y0, dx, dy] of b[28] === 1 ? ADAM7 : [[0, 0, 1, 1]]) {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (pw > 0 && ph > 0) scanlines += ph * (1 + Math.ceil((pw * bpp) / 8));
  }
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 12 <= b.length;) {
    const len = view.getUint32(p);
    if (p + 12 + len > b.length) break; // pngjs reports the truncated chunk
    if (b[p + 4] === 0x49 && b[p + 5] === 0x44 && b[p + 6] === 0x41 && b[p + 7] === 0x54) {
      // IDAT
      idat.push(b.subarray(p + 8, p + 8 + len));
      idatBytes += len;
    }
    p += 12 + len;
  }
  if (scanlines > idatBytes * MAX_DEFLATE_RATIO + 64) {
    throw new DataError(
      source,
      `PNG declares ${w}x${h} (${scanlines} bytes of scanlines) but its ${idatBytes} bytes of image data inflate to at most ${idatBytes * MAX_DEFLATE_RATIO}: truncated or corrupt`,
    );
  }
  let inflated: number;
  try {
    inflated = inflateSync(Buffer.concat(idat), { maxOutputLength: Math.max(1, scanlines) }).length;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ERR_BUFFER_TOO_LARGE'
        ? `inflates past the ${scanlines} bytes of scanlines its header implies`
        : `is corrupt (${err.message})`;
    throw new DataError(source, `cannot decode PNG (${w}x${h}): image data ${why}`);
  }
  if (inflated !== scanlines) {
    throw new DataError(
      source,
      `cannot decode PNG (${w}x${h}): image data inflates to ${inflated} bytes, the header implies ${scanlines} bytes of scanlines (truncated or corrupt)`,
    );
  }
}

/** Decodes to RGB, HWC u8 (alpha dropped, as PIL's convert('RGB') does). */
export function decodeImage(
  source: string,
  bytes: Uint8Array,
  maxPixels: number,
): { width: number; height: number; rgb: Uint8Array } {
  const h = imageHeader(source, bytes);
  if (h.width === 0 || h.height === 0) throw new DataError(source, `has an empty size ${h.width}x${h.height}`);
  if (h.width * h.height > maxPixels)
    throw new DataError(source, `is ${h.width}x${h.height}, over the limit of ${maxPixels} pixels (raise maxPixels)`);
  const pixels = h.width * h.height;
  // Nothing is allocated for the image until its size is shown plausible from the bytes present.
  if (h.format === 'png') checkPngData(source, bytes, h.width, h.height);
  else {
    // Every 8x8 block of a JPEG frame costs at least one bit of entropy-coded data (its DC code).
    const blocks = Math.ceil(h.width / 8) * Math.ceil(h.height / 8);
    if (blocks > 8 * bytes.length) {
      throw new DataError(
        source,
        `JPEG declares ${h.width}x${h.height} (${blocks} 8x8 blocks) but its ${bytes.length} bytes cannot code that many: truncated or corrupt`,
      );
    }
  }
  let rgb: Uint8Array;
  try {
    if (h.format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      if (png.width !== h.width || png.height !== h.height) throw new Error('decoded size differs from the header');
      rgb = new Uint8Array(pixels * 3);
      for (let i = 0; i < pixels; i++) {
        rgb[3 * i] = png.data[4 * i];
        rgb[3 * i + 1] = png.data[4 * i + 1];
        rgb[3 * i + 2] = png.data[4 * i + 2];
      }
    } else {
      const maxResolutionInMP = Math.max(1, Math.ceil(maxPixels / 1e6));
      // jpeg-js keeps ~4 bytes per pixel per component, plus its output; its default cap is 512 MB.
      const maxMemoryUsageInMB = Math.min(512, Math.max(16, Math.ceil((pixels * 32) / 2 ** 20)));
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        tolerantDecoding: false,
        maxResolutionInMP,
        maxMemoryUsageInMB,
      });
      if (img.width !== h.width || img.height !== h.height) throw new Error('decoded size differs from the header');
      rgb = img.data.length === pixels * 3 ? img.data : img.data.slice(0, pixels * 3);
    }
  } catch (e) {
    throw new DataError(
      source,
      `cannot decode ${h.format.toUpperCase()} (${h.width}x${h.height}): ${(e as Error).message}`,
    );
  }
  return { width: h.width, height: h.height, rgb };
}
