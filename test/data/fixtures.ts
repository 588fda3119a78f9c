// Small data files built on the fly for the data tests (IDX, CIFAR batches, image folders).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { sharedBytes, type Dataset } from '../../src/data/dataset.js';

export function tempDir(tag: string): { dir: string; path: (...p: string[]) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `protodino-data-${tag}-`));
  return { dir, path: (...p) => join(dir, ...p), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function write(path: string, bytes: Uint8Array): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** An IDX u8 file: magic 0x0000 08 ndim, big-endian u32 dims, payload. */
export function idxBytes(dims: number[], payload: Uint8Array | number[], magic?: number): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, magic ?? 0x800 | dims.length);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

export const gz = (b: Uint8Array): Uint8Array => new Uint8Array(gzipSync(b));

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

/** A CIFAR-10 batch file of the given labels, images from `bytes`. */
export function cifarBytes(labels: number[], seed = 3): Uint8Array {
  const img = bytes(labels.length * 3072, seed);
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((l, i) => {
    out[i * 3073] = l;
    out.set(img.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
  });
  return out;
}

/** PNG / JPEG from an RGB HWC image. */
export function pngBytes(w: number, h: number, rgb: Uint8Array): Uint8Array {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    png.data[4 * i] = rgb[3 * i];
    png.data[4 * i + 1] = rgb[3 * i + 1];
    png.data[4 * i + 2] = rgb[3 * i + 2];
    png.data[4 * i + 3] = 255;
  }
  return new Uint8Array(PNG.sync.write(png));
}

export function jpegBytes(w: number, h: number, rgb: Uint8Array, quality = 95): Uint8Array {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    data[4 * i + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ width: w, height: h, data }, quality).data);
}

/** A synthetic in-memory dataset with class-dependent images. */
export function synthDataset(n: number, C: number, H: number, W: number, classes = 10, seed = 7): Dataset {
  const images = sharedBytes(n * C * H * W);
  images.set(bytes(images.length, seed));
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  return {
    images,
    labels,
    n,
    channels: C,
    height: H,
    width: W,
    classes: Array.from({ length: classes }, (_, i) => `c${i}`),
    name: 'synth',
  };
}

/** Expects `fn` to reject with an error whose message contains every fragment. */
export async function rejectsWith(fn: () => Promise<unknown> | unknown, ...fragments: string[]): Promise<string> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message;
    for (const f of fragments)
      if (!msg.includes(f)) throw new Error(`error message ${JSON.stringify(msg)} lacks ${JSON.stringify(f)}`);
    return msg;
  }
  throw new Error(`expected an error mentioning ${fragments.join(', ')}`);
}
