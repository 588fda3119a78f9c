// PNG and JPEG: decodeImage (and imageHeader, which it starts with) on mutated images. PNG mutations
// are often followed by fixing every chunk's CRC, and some rewrite the inflated scanlines, so the
// damage reaches the decoder's chunk, filter and bitmap code instead of stopping at a checksum.
import { deflateSync, inflateSync } from 'node:zlib';
import { DataError } from '../../../src/data/errors.js';
import { decodeImage, imageHeader } from '../../../src/data/image.js';
import { PNG } from 'pngjs';
import { bytes, jpegBytes, pngBytes } from '../../data/fixtures.js';
import { ascii, mutate, type Field, type Fuzz } from '../mutate.js';
import { cat, chunk, fixCrcs, handPng, pngChunks, SIG } from '../png.js';
import { MiB, type FuzzTarget } from '../target.js';

/** A 16-bit RGB PNG through pngjs's writer. */
function png16(w: number, h: number): Uint8Array {
  const p = new PNG({ width: w, height: h, bitDepth: 16, colorType: 2, inputHasAlpha: true });
  p.data.set(bytes(w * h * 4, 17));
  return new Uint8Array(PNG.sync.write(p, { bitDepth: 16, colorType: 2, inputHasAlpha: true }));
}

// Progressive JPEGs (jpeg-js writes only baseline), 13x10, made with Pillow:
// Image.save(..., 'JPEG', quality=80, progressive=True[, subsampling=2]) of an RGB gradient / its grey.
const PROGRESSIVE_RGB =
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wgARCAAKAA0DASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABgX/xAAVAQEBAAAAAAAAAAAAAAAAAAAAA//aAAwDAQACEAMQAAABPobCJP8A/8QAGBAAAgMAAAAAAAAAAAAAAAAAAwQAASL/2gAIAQEAAQUCAjBo5XqDrP8A/8QAFxEAAwEAAAAAAAAAAAAAAAAAAAMFEf/aAAgBAwEBPwGXRbh//8QAFhEBAQEAAAAAAAAAAAAAAAAAAwAB/9oACAECAQE/ASTb/8QAFhABAQEAAAAAAAAAAAAAAAAAMQAQ/9oACAEBAAY/AiN//8QAGRABAAIDAAAAAAAAAAAAAAAAAQAhEDFB/9oACAEBAAE/IdeGBVELgn//2gAMAwEAAgADAAAAEEP/xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oACAEDAQE/EC//xAAVEQEBAAAAAAAAAAAAAAAAAAAAEf/aAAgBAgEBPxCd/8QAFhABAQEAAAAAAAAAAAAAAAAAANHx/9oACAEBAAE/EMlkoUlT/9k=';
const PROGRESSIVE_GREY =
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/wgALCAAKAA0BAREA/8QAFQABAQAAAAAAAAAAAAAAAAAABgX/2gAIAQEAAAABPobCL//EABgQAAIDAAAAAAAAAAAAAAAAAAMEAAEi/9oACAEBAAEFAgIwaOV6g6z/AP/EABYQAQEBAAAAAAAAAAAAAAAAADEAEP/aAAgBAQAGPwIjf//EABkQAQACAwAAAAAAAAAAAAAAAAEAIRAxQf/aAAgBAQABPyHXhgVRC4J//9oACAEBAAAAEE//xAAWEAEBAQAAAAAAAAAAAAAAAAAA0fH/2gAIAQEAAT8QyWShSVP/2Q==';
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

const PNGS = [
  pngBytes(5, 3, bytes(45, 1)),
  pngBytes(1, 1, bytes(3, 2)),
  pngBytes(16, 9, bytes(16 * 9 * 3, 3)),
  png16(4, 3),
  handPng(7, 5, 1, 0, false, 4),
  handPng(9, 6, 2, 3, false, 5),
  handPng(6, 7, 8, 2, true, 6),
  handPng(3, 9, 4, 3, true, 7),
  handPng(5, 4, 8, 4, false, 8),
];
const JPEGS = [
  jpegBytes(8, 8, bytes(192, 9), 50),
  jpegBytes(16, 16, bytes(768, 10), 95),
  jpegBytes(17, 9, bytes(17 * 9 * 3, 11), 75),
  b64(PROGRESSIVE_RGB),
  b64(PROGRESSIVE_GREY),
];
const DONORS = [...PNGS, ...JPEGS];
const PNG_TOKENS = ['IHDR', 'IDAT', 'IEND', 'PLTE', 'tRNS', 'gAMA'].map(ascii).concat([SIG]);
const JPEG_TOKENS = [0xd8, 0xc0, 0xc2, 0xc4, 0xdb, 0xda, 0xdd, 0xd9, 0xe0, 0xd0, 0xff, 0x01].map((m) =>
  Uint8Array.of(0xff, m),
);

function pngFields(b: Uint8Array): Field[] {
  const fields: Field[] = [
    { at: 16, size: 4, le: false, what: 'IHDR width' },
    { at: 20, size: 4, le: false, what: 'IHDR height' },
    { at: 24, size: 1, le: false, what: 'IHDR bit depth' },
    { at: 25, size: 1, le: false, what: 'IHDR colour type' },
    { at: 26, size: 1, le: false, what: 'IHDR compression' },
    { at: 27, size: 1, le: false, what: 'IHDR filter' },
    { at: 28, size: 1, le: false, what: 'IHDR interlace' },
  ];
  for (const c of pngChunks(b)) fields.push({ at: c.at, size: 4, le: false, what: `${c.type} length` });
  return fields;
}

/** JPEG segments' length fields and the frame header's size and component fields. */
function jpegFields(b: Uint8Array): Field[] {
  const fields: Field[] = [];
  for (let p = 2; p + 4 <= b.length;) {
    if (b[p] !== 0xff) break;
    const m = b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    fields.push({ at: p + 2, size: 2, le: false, what: `segment 0xff${m.toString(16)} length` });
    if (m >= 0xc0 && m <= 0xc2) {
      fields.push(
        { at: p + 5, size: 2, le: false, what: 'SOF height' },
        { at: p + 7, size: 2, le: false, what: 'SOF width' },
        { at: p + 9, size: 1, le: false, what: 'SOF components' },
        { at: p + 4, size: 1, le: false, what: 'SOF precision' },
      );
      for (let k = 0; k < b[p + 9] && p + 12 + 3 * k < b.length; k++)
        fields.push({ at: p + 11 + 3 * k, size: 1, le: false, what: `SOF component ${k} sampling` });
    }
    if (m === 0xda) break;
    p += 2 + len;
  }
  return fields;
}

/** Mutates the inflated scanlines of the IDAT chunks and writes them back as one valid IDAT. */
function mutateScanlines(f: Fuzz, png: Uint8Array): Uint8Array {
  const chunks = pngChunks(png);
  const idat = chunks.filter((c) => c.type === 'IDAT');
  const raw = new Uint8Array(inflateSync(cat(idat.map((c) => png.subarray(c.at + 8, c.at + 8 + c.len)))));
  const mutated = mutate(f, raw, { tokens: [0, 1, 2, 3, 4, 5, 0xff].map((t) => Uint8Array.of(t)), maxOps: 3 });
  const first = idat[0];
  const last = idat[idat.length - 1];
  return cat([
    png.subarray(0, first.at),
    chunk('IDAT', new Uint8Array(deflateSync(mutated))),
    png.subarray(last.at + 12 + last.len),
  ]);
}

interface Input {
  source: string;
  bytes: Uint8Array;
  maxPixels: number;
}

export const target: FuzzTarget = {
  name: 'image',
  errorName: 'DataError',
  minErrorKinds: 25,
  isOwnError: (e) => e instanceof DataError,
  make(f) {
    const isPng = f.chance(0.5);
    const seed = f.pick(isPng ? PNGS : JPEGS);
    let b: Uint8Array;
    if (isPng && f.chance(0.25)) {
      f.note('mutate the scanlines');
      b = mutateScanlines(f, seed);
    } else {
      b = mutate(f, seed, {
        fields: isPng ? pngFields(seed) : jpegFields(seed),
        donors: DONORS,
        tokens: isPng ? PNG_TOKENS : JPEG_TOKENS,
      });
    }
    if (isPng && f.chance(0.6)) {
      f.note('fix the chunk CRCs');
      fixCrcs(b);
    }
    // Mostly the image folder's default limit, so a small file that declares a large image must be
    // refused for what its bytes can hold, not by the pixel cap.
    const maxPixels = f.chance(0.9) ? 64e6 : f.pick([1, 20, 100]);
    if (maxPixels !== 64e6) f.note(`maxPixels ${maxPixels}`);
    const input: Input = { source: `fuzz/image.${isPng ? 'png' : 'jpg'}`, bytes: b, maxPixels };
    return { input, bytes: b.length };
  },
  run(c) {
    const { source, bytes: b, maxPixels } = c.input as Input;
    return decodeImage(source, b, maxPixels);
  },
  check(result, c) {
    const { source, bytes: b, maxPixels } = c.input as Input;
    const img = result as { width: number; height: number; rgb: Uint8Array };
    const h = imageHeader(source, b);
    if (img.width !== h.width || img.height !== h.height)
      throw new Error(`decoded ${img.width}x${img.height}, header says ${h.width}x${h.height}`);
    if (img.width < 1 || img.height < 1 || img.width * img.height > maxPixels)
      throw new Error(`size ${img.width}x${img.height} is outside [1, ${maxPixels}] pixels`);
    if (!(img.rgb instanceof Uint8Array) || img.rgb.length !== img.width * img.height * 3)
      throw new Error(`rgb holds ${img.rgb.length} bytes for ${img.width}x${img.height}`);
    // Pixels made from anything but the file (uninitialised memory) differ from one decode to the next.
    const again = decodeImage(source, b, maxPixels).rgb;
    if (again.some((v, i) => v !== img.rgb[i]))
      throw new Error('decoding the same bytes twice gives different pixels (uninitialised memory?)');
  },
  mustName: (c) => (c.input as Input).source,
  // What the bytes can really hold: deflate expands at most ~1032x, and a 1-bit PNG has 8 pixels a
  // byte; decoding keeps a few bytes per pixel (RGBA, the RGB copy). ~100 KB per input byte.
  memLimit: (c) => 100_000 * c.bytes + 16 * MiB,
};
