// CIFAR-10 binary batches: cifarDataset on one or two mutated batches, with the standard classes or
// a mutated batches.meta.txt.
import { CIFAR10_CLASSES, cifarDataset, parseCifarClasses, type CifarBatch } from '../../../src/data/cifar.js';
import { DataError } from '../../../src/data/errors.js';
import type { Dataset } from '../../../src/data/dataset.js';
import { cifarBytes } from '../../data/fixtures.js';
import { ascii, mutate, type Field, type Fuzz } from '../mutate.js';
import { MiB, type FuzzTarget } from '../target.js';

const RECORD = 3073;
const BATCHES = [cifarBytes([3]), cifarBytes([0, 9], 5), cifarBytes([1, 2, 7], 9)];
const fields = (b: Uint8Array): Field[] =>
  Array.from({ length: b.length / RECORD }, (_, r) => ({
    at: r * RECORD,
    size: 1 as const,
    le: false,
    what: `label of record ${r}`,
  }));
const META = [ascii('a\nb\nc\n'), ascii(`${CIFAR10_CLASSES.join('\n')}\n`), ascii('x\r\ny\r\n\r\n')];
const TOKENS = [
  Uint8Array.of(10),
  Uint8Array.of(0xff),
  Uint8Array.of(0),
  ascii('\r\n'),
  ascii('\n\n\n'),
  Uint8Array.of(0xef, 0xbb, 0xbf),
  Uint8Array.of(0xc3),
];

interface Input {
  batches: CifarBatch[];
  meta?: { source: string; bytes: Uint8Array };
  maxBytes?: number;
}

function batch(f: Fuzz, k: number): CifarBatch {
  const s = f.pick(BATCHES);
  const bytes = f.chance(0.2) ? s.slice() : mutate(f, s, { fields: fields(s), donors: BATCHES, maxOps: 3 });
  return { source: `fuzz/data_batch_${k}.bin`, bytes };
}

export const target: FuzzTarget = {
  name: 'cifar',
  errorName: 'DataError',
  minErrorKinds: 4,
  isOwnError: (e) => e instanceof DataError,
  make(f) {
    const batches = Array.from({ length: f.chance(0.3) ? 2 : 1 }, (_, k) => batch(f, k + 1));
    let meta: Input['meta'];
    if (f.chance(0.3)) {
      f.note('with batches.meta.txt');
      meta = {
        source: 'fuzz/batches.meta.txt',
        bytes: mutate(f, f.pick(META), { donors: META, tokens: TOKENS, maxOps: 2 }),
      };
    }
    const maxBytes = f.chance(0.1) ? f.pick([RECORD, 2 * RECORD, 4 * RECORD]) : undefined;
    if (maxBytes !== undefined) f.note(`maxBytes ${maxBytes}`);
    const input: Input = { batches, meta, maxBytes };
    return { input, bytes: batches.reduce((n, b) => n + b.bytes.length, meta?.bytes.length ?? 0) };
  },
  run(c) {
    const { batches, meta, maxBytes } = c.input as Input;
    const classes = meta ? parseCifarClasses(meta.source, meta.bytes) : CIFAR10_CLASSES;
    return cifarDataset(batches, classes, 'fuzz/cifar10', maxBytes);
  },
  check(result, c) {
    const { batches } = c.input as Input;
    const ds = result as Dataset;
    const all = batches.flatMap((b) =>
      Array.from({ length: b.bytes.length / RECORD }, (_, r) => b.bytes.subarray(r * RECORD, (r + 1) * RECORD)),
    );
    if (ds.n !== all.length || ds.labels.length !== ds.n)
      throw new Error(`n ${ds.n}, ${ds.labels.length} labels, ${all.length} records`);
    if (ds.images.length !== ds.n * 3 * 32 * 32) throw new Error(`${ds.images.length} image bytes for ${ds.n} images`);
    if (
      ds.classes.length < 1 ||
      ds.classes.length > 256 ||
      ds.classes.some((s) => typeof s !== 'string' || s.length === 0)
    )
      throw new Error('bad class list');
    all.forEach((rec, i) => {
      if (ds.labels[i] !== rec[0] || ds.labels[i] >= ds.classes.length)
        throw new Error(`label ${i} is ${ds.labels[i]}, record says ${rec[0]}`);
      const img = ds.images.subarray(i * 3072, (i + 1) * 3072);
      if (img.some((v, j) => v !== rec[1 + j])) throw new Error(`image ${i} differs from its record`);
    });
  },
  mustName: () => 'fuzz/',
  memLimit: (c) => 2 * c.bytes + MiB,
};
