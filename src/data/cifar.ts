// CIFAR-10 binary batches: records of 1 label byte + 3072 image bytes (3x32x32, channel-major).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors.js';
import { DEFAULT_MAX_BYTES, readFileBounded } from './files.js';
import { checkDataset, sharedBytes, type Dataset } from './dataset.js';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
const IMAGE = 3 * 32 * 32;
const RECORD = 1 + IMAGE;

export interface CifarOptions {
  /** Folder with data_batch_1..5.bin, test_batch.bin and optionally batches.meta.txt. */
  dir: string;
  split: 'train' | 'test';
  /** Explicit batch files instead of the split's (absolute, or relative to dir). */
  files?: string[];
  /** Limit on the summed size of the batch files (default 1 GiB). */
  maxBytes?: number;
}

/** Longest batches.meta.txt read: 256 class names of a few dozen bytes fit many times over. */
const MAX_META_BYTES = 1 << 20;

/** Class names from batches.meta.txt (one per line) when present, else the standard ten. */
async function cifarClasses(dir: string): Promise<string[]> {
  const meta = join(dir, 'batches.meta.txt');
  if (!existsSync(meta)) return CIFAR10_CLASSES;
  return parseCifarClasses(meta, await readFileBounded(meta, MAX_META_BYTES));
}

/** The class names of a batches.meta.txt held in memory: one per line, blank lines skipped. */
export function parseCifarClasses(source: string, bytes: Uint8Array): string[] {
  if (bytes.length > MAX_META_BYTES)
    throw new DataError(source, `is ${bytes.length} bytes, over the limit of ${MAX_META_BYTES} for a class list`);
  const text = new TextDecoder('utf-8').decode(bytes);
  const names = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0 || names.length > 256)
    throw new DataError(source, `lists ${names.length} class names, expected 1..256`);
  return names;
}

export async function loadCifar10(opts: CifarOptions): Promise<Dataset> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const names =
    opts.files ?? (opts.split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin']);
  const paths = names.map((f) => (f.startsWith('/') ? f : join(opts.dir, f)));
  const classes = await cifarClasses(opts.dir);
  const batches: CifarBatch[] = [];
  let total = 0;
  for (const p of paths) {
    const bytes = await readFileBounded(p, maxBytes - total);
    total += bytes.length;
    batches.push({ source: p, bytes });
  }
  return cifarDataset(batches, classes, `cifar10/${opts.split}`, maxBytes);
}

export interface CifarBatch {
  /** Names the batch in errors (its path). */
  source: string;
  bytes: Uint8Array;
}

/** CIFAR-10 batches already in memory, as one Dataset: what loadCifar10 does after reading the files. */
export function cifarDataset(
  batches: CifarBatch[],
  classes: string[],
  name: string,
  maxBytes = DEFAULT_MAX_BYTES,
): Dataset {
  if (batches.length === 0) throw new DataError(name, 'no batch files given');
  let total = 0;
  for (const { source, bytes } of batches) {
    if (bytes.length === 0 || bytes.length % RECORD !== 0) {
      throw new DataError(
        source,
        `is ${bytes.length} bytes, not a positive multiple of the ${RECORD}-byte CIFAR record (truncated or not a CIFAR-10 batch)`,
      );
    }
    total += bytes.length;
    if (total > maxBytes)
      throw new DataError(
        source,
        `brings the batches to ${total} bytes, over the limit of ${maxBytes} (raise maxBytes)`,
      );
  }
  const n = total / RECORD;
  const images = sharedBytes(n * IMAGE);
  const labels = new Int32Array(n);
  let i = 0;
  for (const { source, bytes } of batches) {
    for (let r = 0; r < bytes.length; r += RECORD, i++) {
      const l = bytes[r];
      if (l >= classes.length)
        throw new DataError(source, `record ${r / RECORD} has label ${l}, outside the ${classes.length} classes`);
      labels[i] = l;
      images.set(bytes.subarray(r + 1, r + RECORD), i * IMAGE);
    }
  }
  return checkDataset({ images, labels, n, channels: 3, height: 32, width: 32, classes, name });
}
