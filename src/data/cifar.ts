// CIFAR-10 binary batches: records of 1 label byte + 3072 image bytes (3x32x32, channel-major).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors.js';
import { DEFAULT_MAX_BYTES, readFileBounded } from './files.js';
import { checkDataset, sharedBytes, type Dataset } from './dataset.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
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

/** Class names from batches.meta.txt (one per line) when present, else the standard ten. */
function cifarClasses(dir: string): string[] {
  const meta = join(dir, 'batches.meta.txt');
  if (!existsSync(meta)) return CIFAR10_CLASSES;
  const names = readFileSync(meta, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0 || names.length > 256) throw new DataError(meta, `lists ${names.length} class names, expected 1..256`);
  return names;
}

export async function loadCifar10(opts: CifarOptions): Promise<Dataset> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const names = opts.files ?? (opts.split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin']);
  const paths = names.map((f) => (f.startsWith('/') ? f : join(opts.dir, f)));
  const classes = cifarClasses(opts.dir);
  const files: Uint8Array[] = [];
  let total = 0;
  for (const p of paths) {
    const f = await readFileBounded(p, maxBytes - total);
    if (f.length === 0 || f.length % RECORD !== 0) {
      throw new DataError(p, `is ${f.length} bytes, not a positive multiple of the ${RECORD}-byte CIFAR record (truncated or not a CIFAR-10 batch)`);
    }
    total += f.length;
    files.push(f);
  }
  const n = total / RECORD;
  const images = sharedBytes(n * IMAGE);
  const labels = new Int32Array(n);
  let i = 0;
  files.forEach((f, k) => {
    for (let r = 0; r < f.length; r += RECORD, i++) {
      const l = f[r];
      if (l >= classes.length) throw new DataError(paths[k], `record ${r / RECORD} has label ${l}, outside the ${classes.length} classes`);
      labels[i] = l;
      images.set(f.subarray(r + 1, r + RECORD), i * IMAGE);
    }
  });
  return checkDataset({ images, labels, n, channels: 3, height: 32, width: 32, classes, name: `cifar10/${opts.split}` });
}
