// Image folders laid out as torchvision's ImageFolder reads them: root/<class>/<image>.png|jpg.
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DataError } from './errors.js';
import { DEFAULT_MAX_BYTES, readFileBounded } from './files.js';
import { checkDataset, sharedBytes, type Dataset } from './dataset.js';
import { decodeImage, imageHeader } from './image.js';
import { resizeChw } from './resize.js';

export interface ImageFolderOptions {
  root: string;
  /**
   * Output size (one number: square). Given: every image is resized to it (triangle filter, aspect
   * ratio not kept — crop beforehand if that matters). Omitted: all images must have the first
   * image's size, and a different one is an error naming the file.
   */
  size?: number | [height: number, width: number];
  /** 3: RGB (default); 1: grey by ITU-R 601 luma, as PIL's convert('L'). */
  channels?: 1 | 3;
  /** Per-image pixel limit, checked from the file header before decoding (default 64 M). */
  maxPixels?: number;
  /** Per-file byte limit (default 64 MiB). */
  maxFileBytes?: number;
  /** Limit on the dataset's image array (default 1 GiB). */
  maxBytes?: number;
  extensions?: string[];
}

async function listFolder(
  root: string,
  exts: string[],
): Promise<{ classes: string[]; files: { path: string; label: number }[] }> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new DataError(root, `cannot list: ${(e as Error).message}`);
  }
  const classes = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) throw new DataError(root, 'has no class subfolders (expected root/<class>/<image>)');
  const files: { path: string; label: number }[] = [];
  for (let label = 0; label < classes.length; label++) {
    const dir = join(root, classes[label]);
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && exts.includes(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort();
    if (names.length === 0) throw new DataError(dir, `class folder holds no image (${exts.join(', ')})`);
    for (const n of names) files.push({ path: join(dir, n), label });
  }
  return { classes, files };
}

/** Every image under root/<class>/, decoded, converted and (optionally) resized, as a Dataset. */
export async function loadImageFolder(opts: ImageFolderOptions): Promise<Dataset> {
  const C = opts.channels ?? 3;
  const maxPixels = opts.maxPixels ?? 64e6;
  const maxFileBytes = opts.maxFileBytes ?? 64 << 20;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const { classes, files } = await listFolder(opts.root, opts.extensions ?? ['.png', '.jpg', '.jpeg']);
  let H: number;
  let W: number;
  if (opts.size !== undefined) {
    [H, W] = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
    if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0 && H * W <= maxPixels)) {
      throw new DataError(opts.root, `output size ${H}x${W} must be positive integers within maxPixels`);
    }
  } else {
    const first = imageHeader(files[0].path, await readFileBounded(files[0].path, maxFileBytes));
    [H, W] = [first.height, first.width];
  }
  const n = files.length;
  const per = C * H * W;
  if (n * per > maxBytes)
    throw new DataError(
      opts.root,
      `${n} images of ${C}x${H}x${W} need ${n * per} bytes, over the limit of ${maxBytes} (raise maxBytes)`,
    );
  const images = sharedBytes(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const { path, label } = files[i];
    labels[i] = label;
    const img = decodeImage(path, await readFileBounded(path, maxFileBytes), maxPixels);
    if (opts.size === undefined && (img.height !== H || img.width !== W)) {
      throw new DataError(
        path,
        `is ${img.width}x${img.height} but ${files[0].path} is ${W}x${H}; pass size to resize them all`,
      );
    }
    const hw = img.width * img.height;
    const chw = new Uint8Array(C * hw);
    for (let p = 0; p < hw; p++) {
      const r = img.rgb[3 * p],
        g = img.rgb[3 * p + 1],
        b = img.rgb[3 * p + 2];
      if (C === 1) chw[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
      else {
        chw[p] = r;
        chw[hw + p] = g;
        chw[2 * hw + p] = b;
      }
    }
    const dst = images.subarray(i * per, (i + 1) * per);
    if (img.height === H && img.width === W) dst.set(chw);
    else resizeChw(chw, C, img.height, img.width, H, W, dst);
  }
  return checkDataset({ images, labels, n, channels: C, height: H, width: W, classes, name: opts.root });
}
