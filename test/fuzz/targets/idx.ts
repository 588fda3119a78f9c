// IDX (raw and gzip): parseIdx on images ([n, h, w]) and labels ([n]) files, and now and then the
// pair checked together as a Dataset.
import { gunzipSync } from 'node:zlib';
import { DataError } from '../../../src/data/errors.js';
import { idxDataset, parseIdx } from '../../../src/data/idx.js';
import { bytes, gz, idxBytes } from '../../data/fixtures.js';
import { mutate, numel, type Field, type Fuzz } from '../mutate.js';
import { MiB, type FuzzTarget } from '../target.js';

interface Seed {
  ndim: number;
  raw: Uint8Array;
  fields: Field[];
}

function seed(dims: number[], s: number, payload: Uint8Array | number[] = bytes(numel(dims), s)): Seed {
  const fields: Field[] = [
    { at: 0, size: 4, le: false, what: 'magic' },
    { at: 3, size: 1, le: false, what: 'rank byte' },
    { at: 2, size: 1, le: false, what: 'type byte' },
  ];
  dims.forEach((_, d) => fields.push({ at: 4 + 4 * d, size: 4, le: false, what: `dims[${d}]` }));
  return { ndim: dims.length, raw: idxBytes(dims, payload), fields };
}

const IMAGES = [seed([3, 4, 5], 1), seed([1, 1, 1], 2), seed([2, 7, 3], 3), seed([6, 2, 2], 4)];
const LABELS = [seed([3], 5, [0, 1, 2]), seed([1], 6, [9]), seed([2], 7, [1, 0]), seed([6], 8, [0, 1, 2, 3, 4, 5])];
const DONORS = [...IMAGES, ...LABELS].flatMap((s) => [s.raw, gz(s.raw)]);
const TOKENS: Uint8Array[] = [
  [0, 0, 8, 3],
  [0, 0, 8, 1],
  [0, 0, 0x0d, 3],
  [0x1f, 0x8b],
  [0xff, 0xff, 0xff, 0xff],
  [0, 0, 0, 0],
].map((t) => Uint8Array.from(t));

interface File {
  source: string;
  bytes: Uint8Array;
  gzip: boolean;
}

interface Input {
  kind: 'images' | 'labels' | 'pair';
  files: File[];
  maxBytes?: number;
}

/** A mutated IDX file: mutate the raw bytes (then maybe gzip them), or the gzip stream itself. */
function file(f: Fuzz, seeds: Seed[], tag: string): File {
  const s = f.pick(seeds);
  const mode = f.int(4);
  let b: Uint8Array;
  if (mode === 0) {
    f.note(`${tag}: mutate the gzip stream`);
    b = mutate(f, gz(s.raw), { donors: DONORS, tokens: TOKENS, maxOps: 2 });
  } else {
    b = f.chance(0.1) ? s.raw.slice() : mutate(f, s.raw, { fields: s.fields, donors: DONORS, tokens: TOKENS });
    if (mode === 1) {
      f.note(`${tag}: gzip the mutated bytes`);
      b = gz(b);
    }
  }
  const gzip = b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
  return { source: `fuzz/${tag}-idx${gzip ? '.gz' : ''}`, bytes: b, gzip };
}

function checkArray(r: { dims: number[]; data: Uint8Array }, ndim: number, file: File): void {
  if (r.dims.length !== ndim) throw new Error(`${r.dims.length} dims, expected ${ndim}`);
  if (r.dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new Error(`bad dims [${r.dims}]`);
  if (!(r.data instanceof Uint8Array) || r.data.length !== numel(r.dims))
    throw new Error(`data holds ${r.data.length} bytes for dims [${r.dims}]`);
  // The payload is the bytes after the header, exactly.
  const plain = file.gzip ? new Uint8Array(gunzipSync(file.bytes)) : file.bytes;
  const want = plain.subarray(4 + 4 * ndim);
  if (want.length !== r.data.length || want.some((v, i) => v !== r.data[i]))
    throw new Error('data differs from the payload bytes');
}

export const target: FuzzTarget = {
  name: 'idx',
  errorName: 'DataError',
  minErrorKinds: 15,
  isOwnError: (e) => e instanceof DataError,
  make(f) {
    const kind = f.pick(['images', 'images', 'labels', 'pair'] as const);
    const files =
      kind === 'pair'
        ? [file(f, IMAGES, 'images'), file(f, LABELS, 'labels')]
        : [file(f, kind === 'images' ? IMAGES : LABELS, kind)];
    // Mostly the default cap; sometimes one small enough that real files hit it.
    const maxBytes = f.chance(0.15) ? f.pick([16, 64, 100, 1000]) : undefined;
    if (maxBytes !== undefined) f.note(`maxBytes ${maxBytes}`);
    const input: Input = { kind, files, maxBytes };
    return { input, bytes: files.reduce((n, x) => n + x.bytes.length, 0) };
  },
  async run(c) {
    const { kind, files, maxBytes } = c.input as Input;
    if (kind !== 'pair') return parseIdx(files[0].source, files[0].bytes, kind === 'images' ? 3 : 1, { maxBytes });
    const [img, lab] = files;
    const images = await parseIdx(img.source, img.bytes, 3, { maxBytes });
    const labels = await parseIdx(lab.source, lab.bytes, 1, { maxBytes });
    return idxDataset(images, labels, { images: img.source, labels: lab.source });
  },
  check(result, c) {
    const { kind, files } = c.input as Input;
    if (kind !== 'pair')
      return checkArray(result as { dims: number[]; data: Uint8Array }, kind === 'images' ? 3 : 1, files[0]);
    const ds = result as {
      images: Uint8Array;
      labels: Int32Array;
      n: number;
      height: number;
      width: number;
      classes: string[];
    };
    if (ds.images.length !== ds.n * ds.height * ds.width)
      throw new Error(`${ds.images.length} image bytes for ${ds.n}x${ds.height}x${ds.width}`);
    if (ds.labels.length !== ds.n) throw new Error(`${ds.labels.length} labels for ${ds.n} images`);
    if (ds.labels.some((l) => l < 0 || l >= ds.classes.length)) throw new Error('a label is outside the classes');
  },
  mustName(c) {
    const { kind, files } = c.input as Input;
    // A pair's rejection names whichever file is at fault; both sources share this prefix.
    return kind === 'pair' ? 'fuzz/' : files[0].source;
  },
  memLimit(c) {
    // Decoded sizes come from the header only after a check against what the bytes can hold:
    // a raw file itself, a gzip stream at most ~1032x (deflate's limit); sharedBytes holds it twice at most.
    return 2 * 1100 * c.bytes + MiB;
  },
};
