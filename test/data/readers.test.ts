import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DATASET_STATS, channelStats, classCounts } from '../../src/data/dataset.js';
import { FASHION_MNIST_CLASSES, loadFashionMNIST, loadIdxDataset } from '../../src/data/idx.js';
import { CIFAR10_CLASSES, loadCifar10 } from '../../src/data/cifar.js';
import { loadImageFolder } from '../../src/data/folder.js';
import { bytes, cifarBytes, gz, idxBytes, jpegBytes, pngBytes, tempDir, write } from './fixtures.js';

const tmp = tempDir('readers');
test.after(() => tmp.cleanup());

test('Fashion-MNIST train: 60000 28x28 grey images, 6000 per class, shared memory', async () => {
  const ds = await loadFashionMNIST({ split: 'train' });
  assert.equal([ds.n, ds.channels, ds.height, ds.width], [60000, 1, 28, 28]);
  assert.is(ds.images.length, 60000 * 784);
  assert.ok(ds.images.buffer instanceof SharedArrayBuffer);
  assert.equal(ds.classes, FASHION_MNIST_CLASSES);
  assert.equal(classCounts(ds), Array(10).fill(6000));
  // The first training image is an ankle boot (label 9) with a dark border.
  assert.is(ds.labels[0], 9);
  assert.is(ds.images[0], 0);
  let sum = 0;
  for (let i = 0; i < 784; i++) sum += ds.images[i];
  assert.ok(sum > 10000, 'first image is not blank');
  const st = channelStats(ds);
  assert.ok(Math.abs(st.mean[0] - DATASET_STATS['fashion-mnist'].mean[0]) < 1e-3, `mean ${st.mean}`);
  assert.ok(Math.abs(st.std[0] - DATASET_STATS['fashion-mnist'].std[0]) < 1e-3, `std ${st.std}`);
});

test('Fashion-MNIST test split: 10000 images, 1000 per class', async () => {
  const ds = await loadFashionMNIST({ split: 'test' });
  assert.is(ds.n, 10000);
  assert.equal(classCounts(ds), Array(10).fill(1000));
});

test('IDX fixtures: raw and gzip give the same dataset', async () => {
  const pix = bytes(5 * 3 * 4, 11);
  const labs = [0, 2, 1, 2, 0];
  const raw = await loadIdxDataset({
    images: write(tmp.path('a-img'), idxBytes([5, 3, 4], pix)),
    labels: write(tmp.path('a-lab'), idxBytes([5], labs)),
  });
  const zip = await loadIdxDataset({
    images: write(tmp.path('b-img.gz'), gz(idxBytes([5, 3, 4], pix))),
    labels: write(tmp.path('b-lab.gz'), gz(idxBytes([5], labs))),
  });
  for (const ds of [raw, zip]) {
    assert.equal([ds.n, ds.channels, ds.height, ds.width], [5, 1, 3, 4]);
    assert.equal(Array.from(ds.images), Array.from(pix));
    assert.equal(Array.from(ds.labels), labs);
    assert.equal(ds.classes, ['0', '1', '2']);
  }
});

test('CIFAR-10 fixtures: records split into CHW images and labels across batch files', async () => {
  const dir = tmp.path('cifar');
  write(tmp.path('cifar', 'data_batch_1.bin'), cifarBytes([3, 9], 1));
  for (let i = 2; i <= 5; i++) write(tmp.path('cifar', `data_batch_${i}.bin`), cifarBytes([i], i));
  const test = cifarBytes([0, 1, 2], 9);
  write(tmp.path('cifar', 'test_batch.bin'), test);
  const tr = await loadCifar10({ dir, split: 'train' });
  assert.equal([tr.n, tr.channels, tr.height, tr.width], [6, 3, 32, 32]);
  assert.equal(Array.from(tr.labels), [3, 9, 2, 3, 4, 5]);
  assert.equal(tr.classes, CIFAR10_CLASSES);
  const te = await loadCifar10({ dir, split: 'test' });
  assert.equal(Array.from(te.labels), [0, 1, 2]);
  assert.equal(Array.from(te.images.subarray(3072, 6144)), Array.from(test.subarray(3074, 3073 * 2)));
  write(tmp.path('cifar', 'batches.meta.txt'), new TextEncoder().encode('a\nb\nc\n\n'));
  assert.equal((await loadCifar10({ dir, split: 'test' })).classes, ['a', 'b', 'c']);
});

/** A 4x3 RGB image whose pixel (y, x) is (10y + x + base, 2 base, 255 − base). */
function rgbImage(w: number, h: number, base: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) rgb.set([10 * y + x + base, 2 * base, 255 - base], 3 * (y * w + x));
  return rgb;
}

test('image folder: classes sorted, PNG exact, JPEG close, RGB to CHW', async () => {
  const root = tmp.path('folder');
  write(tmp.path('folder', 'dog', 'b.png'), pngBytes(4, 3, rgbImage(4, 3, 20)));
  write(tmp.path('folder', 'dog', 'a.PNG'), pngBytes(4, 3, rgbImage(4, 3, 40)));
  write(tmp.path('folder', 'cat', 'x.jpg'), jpegBytes(4, 3, rgbImage(4, 3, 60), 100));
  write(tmp.path('folder', 'cat', 'notes.txt'), new Uint8Array([1, 2, 3]));
  const ds = await loadImageFolder({ root });
  assert.equal(ds.classes, ['cat', 'dog']);
  assert.equal([ds.n, ds.channels, ds.height, ds.width], [3, 3, 3, 4]);
  assert.equal(Array.from(ds.labels), [0, 1, 1]);
  const img1 = ds.images.subarray(36, 72);
  const want = rgbImage(4, 3, 40);
  for (let p = 0; p < 12; p++) for (let c = 0; c < 3; c++) assert.is(img1[c * 12 + p], want[3 * p + c]);
  const jp = rgbImage(4, 3, 60);
  for (let p = 0; p < 12; p++)
    for (let c = 0; c < 3; c++)
      assert.ok(Math.abs(ds.images[c * 12 + p] - jp[3 * p + c]) <= 12, 'jpeg close to source');
});

test('image folder: size resizes every image, channels 1 gives luma', async () => {
  const root = tmp.path('folder2');
  const flat = (w: number, h: number, rgb: number[]): Uint8Array => {
    const a = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) a.set(rgb, 3 * i);
    return a;
  };
  write(tmp.path('folder2', 'a', '1.png'), pngBytes(10, 6, flat(10, 6, [200, 100, 50])));
  write(tmp.path('folder2', 'b', '2.png'), pngBytes(3, 5, flat(3, 5, [0, 255, 0])));
  const rgb = await loadImageFolder({ root, size: 8 });
  assert.equal([rgb.n, rgb.channels, rgb.height, rgb.width], [2, 3, 8, 8]);
  assert.ok(rgb.images.subarray(0, 64).every((v) => v === 200));
  assert.ok(rgb.images.subarray(192 + 64, 192 + 128).every((v) => v === 255));
  const grey = await loadImageFolder({ root, size: [4, 5], channels: 1 });
  assert.equal([grey.channels, grey.height, grey.width], [1, 4, 5]);
  assert.is(grey.images[0], Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50));
  assert.is(grey.images[20], 150);
});

test.run();
