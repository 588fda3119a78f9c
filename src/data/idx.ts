// IDX files (LeCun's MNIST format, also Fashion-MNIST's): raw or gzip-compressed.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors.js';
import { DEFAULT_MAX_BYTES, gunzipDeclared, isGzip, readFileBounded } from './files.js';
import { checkDataset, sharedBytes, type Dataset } from './dataset.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

const TYPE_NAMES: Record<number, string> = {
  0x08: 'u8',
  0x09: 'i8',
  0x0b: 'i16',
  0x0c: 'i32',
  0x0d: 'f32',
  0x0e: 'f64',
};

export interface IdxHeader {
  dims: number[];
  headerBytes: number;
  /** header + payload bytes */
  total: number;
}

/**
 * Parses the header at the start of `head`; null when `head` is too short to hold it yet. Only u8
 * payloads are accepted, with the dimension count the caller expects.
 */
export function parseIdxHeader(source: string, head: Uint8Array, ndim: number): IdxHeader | null {
  if (head.length < 4) return null;
  const magic = ((head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3]) >>> 0;
  const hex = '0x' + magic.toString(16).padStart(8, '0');
  const want = '0x' + (0x800 | ndim).toString(16).padStart(8, '0');
  if (head[0] !== 0 || head[1] !== 0 || !(head[2] in TYPE_NAMES))
    throw new DataError(source, `not an IDX file (magic ${hex}, expected ${want})`);
  if (head[2] !== 0x08)
    throw new DataError(
      source,
      `IDX element type ${TYPE_NAMES[head[2]]} is not supported, only u8 (magic ${hex}, expected ${want})`,
    );
  if (head[3] !== ndim)
    throw new DataError(
      source,
      `IDX file has ${head[3]} dimensions, expected ${ndim} (magic ${hex}, expected ${want})`,
    );
  const headerBytes = 4 + 4 * ndim;
  if (head.length < headerBytes) return null;
  const view = new DataView(head.buffer, head.byteOffset, headerBytes);
  const dims: number[] = [];
  let payload = 1;
  for (let d = 0; d < ndim; d++) {
    const v = view.getUint32(4 + 4 * d);
    if (v === 0) throw new DataError(source, `IDX dimension ${d} is 0`);
    dims.push(v);
    payload *= v;
  }
  return { dims, headerBytes, total: headerBytes + payload };
}

export interface IdxReadOptions {
  /** Refuse files (and decoded payloads) larger than this; default 1 GiB. */
  maxBytes?: number;
}

/** An IDX u8 array with `ndim` dimensions; `data` is shared-memory backed. */
export async function readIdx(
  path: string,
  ndim: number,
  opts: IdxReadOptions = {},
): Promise<{ dims: number[]; data: Uint8Array }> {
  return parseIdx(path, await readFileBounded(path, opts.maxBytes ?? DEFAULT_MAX_BYTES), ndim, opts);
}

/**
 * The bytes of an IDX file (raw or gzip) already in memory; `source` names them in errors. What
 * readIdx does after reading the file, so in-memory callers (and the fuzz tests) get the same checks.
 */
export async function parseIdx(
  source: string,
  file: Uint8Array,
  ndim: number,
  opts: IdxReadOptions = {},
): Promise<{ dims: number[]; data: Uint8Array }> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (file.length > maxBytes)
    throw new DataError(source, `is ${file.length} bytes, over the limit of ${maxBytes} (raise maxBytes)`);
  if (isGzip(file)) {
    let header: IdxHeader | null = null;
    const out = await gunzipDeclared(
      source,
      file,
      (head) => (header = parseIdxHeader(source, head, ndim))?.total ?? null,
      maxBytes,
      sharedBytes,
    );
    const h = header as unknown as IdxHeader;
    return { dims: h.dims, data: out.subarray(h.headerBytes) };
  }
  const h = parseIdxHeader(source, file, ndim);
  if (!h)
    throw new DataError(source, `truncated: ${file.length} bytes cannot hold an IDX header of ${4 + 4 * ndim} bytes`);
  if (file.length < h.total)
    throw new DataError(
      source,
      `truncated: header declares ${h.total} bytes (dims ${h.dims.join('x')}), the file has ${file.length}`,
    );
  if (file.length > h.total)
    throw new DataError(
      source,
      `has ${file.length - h.total} bytes past the ${h.total} its header declares (dims ${h.dims.join('x')})`,
    );
  const data = sharedBytes(h.total - h.headerBytes);
  data.set(file.subarray(h.headerBytes));
  return { dims: h.dims, data };
}

export interface IdxDatasetOptions extends IdxReadOptions {
  images: string;
  labels: string;
  /** Class names; default '0', '1', ... up to the largest label. */
  classes?: string[];
  name?: string;
}

/** An image IDX file ([n, h, w] u8, grey) and its label IDX file ([n] u8) as a Dataset. */
export async function loadIdxDataset(opts: IdxDatasetOptions): Promise<Dataset> {
  const [img, lab] = await Promise.all([readIdx(opts.images, 3, opts), readIdx(opts.labels, 1, opts)]);
  return idxDataset(img, lab, opts);
}

/** Images and labels already parsed (readIdx / parseIdx), checked against each other. */
export function idxDataset(
  img: { dims: number[]; data: Uint8Array },
  lab: { dims: number[]; data: Uint8Array },
  opts: Pick<IdxDatasetOptions, 'images' | 'labels' | 'classes' | 'name'>,
): Dataset {
  if (img.dims.length !== 3)
    throw new DataError(opts.images, `has ${img.dims.length} dimensions, expected 3 (n, height, width)`);
  if (lab.dims.length !== 1) throw new DataError(opts.labels, `has ${lab.dims.length} dimensions, expected 1 (n)`);
  const [n, height, width] = img.dims;
  if (lab.dims[0] !== n)
    throw new DataError(opts.labels, `holds ${lab.dims[0]} labels but ${opts.images} holds ${n} images`);
  const labels = Int32Array.from(lab.data);
  let classes = opts.classes;
  if (!classes) {
    let max = 0;
    for (const l of labels) max = Math.max(max, l);
    classes = Array.from({ length: max + 1 }, (_, i) => String(i));
  }
  const name = opts.name ?? opts.images;
  try {
    return checkDataset({ images: img.data, labels, n, channels: 1, height, width, classes, name });
  } catch (e) {
    throw e instanceof DataError ? new DataError(opts.labels, e.message) : e;
  }
}

/** Debian's `dataset-fashion-mnist` package puts the files here. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Fashion-MNIST (60k train / 10k test, 28x28 grey); `.gz` files preferred, uncompressed ones accepted. */
export async function loadFashionMNIST(opts: {
  split: 'train' | 'test';
  dir?: string;
  maxBytes?: number;
}): Promise<Dataset> {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const prefix = opts.split === 'train' ? 'train' : 't10k';
  const file = (kind: string): string => {
    const base = join(dir, `${prefix}-${kind}-ubyte`);
    return existsSync(base + '.gz') || !existsSync(base) ? base + '.gz' : base;
  };
  return loadIdxDataset({
    images: file('images-idx3'),
    labels: file('labels-idx1'),
    classes: FASHION_MNIST_CLASSES,
    name: `fashion-mnist/${opts.split}`,
    maxBytes: opts.maxBytes,
  });
}
