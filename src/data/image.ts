// PNG / JPEG decoding for image folders. Dimensions are read from the file's own header first, so a
// file that claims gigapixels is refused before any decoder allocates for it.
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
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
    if (p + 2 >= b.length) throw new DataError(source, 'truncated JPEG: no frame header (SOF) before the end of the file');
    const m = b[p];
    p++;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) continue;
    if (m === 0xd9 || m === 0xda) throw new DataError(source, 'JPEG has no frame header (SOF) before its scan data');
    const len = u16(b, p);
    if (len < 2 || p + len > b.length) throw new DataError(source, `truncated JPEG: segment 0xff${m.toString(16)} of ${len} bytes runs past the end of the file`);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (len < 8) throw new DataError(source, 'JPEG frame header too short');
      return { format: 'jpeg', height: u16(b, p + 3), width: u16(b, p + 5) };
    }
    p += len;
  }
}

/** Format and size from the first bytes; throws a DataError for anything else. */
export function imageHeader(source: string, b: Uint8Array): ImageHeader {
  if (b.length >= 8 && PNG_SIG.every((v, i) => b[i] === v)) {
    if (b.length < 24 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') throw new DataError(source, 'truncated PNG: no IHDR chunk');
    const dv = new DataView(b.buffer, b.byteOffset + 16, 8);
    return { format: 'png', width: dv.getUint32(0), height: dv.getUint32(4) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegHeader(source, b);
  throw new DataError(source, 'is neither a PNG nor a JPEG (unrecognised signature)');
}

/** Decodes to RGB, HWC u8 (alpha dropped, as PIL's convert('RGB') does). */
export function decodeImage(source: string, bytes: Uint8Array, maxPixels: number): { width: number; height: number; rgb: Uint8Array } {
  const h = imageHeader(source, bytes);
  if (h.width === 0 || h.height === 0) throw new DataError(source, `has an empty size ${h.width}x${h.height}`);
  if (h.width * h.height > maxPixels) throw new DataError(source, `is ${h.width}x${h.height}, over the limit of ${maxPixels} pixels (raise maxPixels)`);
  const pixels = h.width * h.height;
  const rgb = new Uint8Array(pixels * 3);
  try {
    if (h.format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      if (png.width !== h.width || png.height !== h.height) throw new Error('decoded size differs from the header');
      for (let i = 0; i < pixels; i++) {
        rgb[3 * i] = png.data[4 * i];
        rgb[3 * i + 1] = png.data[4 * i + 1];
        rgb[3 * i + 2] = png.data[4 * i + 2];
      }
    } else {
      const maxResolutionInMP = Math.max(1, Math.ceil(maxPixels / 1e6));
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP });
      if (img.width !== h.width || img.height !== h.height) throw new Error('decoded size differs from the header');
      rgb.set(img.data.subarray(0, pixels * 3));
    }
  } catch (e) {
    throw new DataError(source, `cannot decode ${h.format.toUpperCase()} (${h.width}x${h.height}): ${(e as Error).message}`);
  }
  return { width: h.width, height: h.height, rgb };
}
