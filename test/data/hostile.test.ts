// Hostile and broken inputs: each must fail with a DataError naming the file and the problem, and
// none may allocate from a size the file merely declares.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuMs } from '../helpers/check.js';
import { gzipSync } from 'node:zlib';
import { loadIdxDataset, readIdx } from '../../src/data/idx.js';
import { loadCifar10 } from '../../src/data/cifar.js';
import { loadImageFolder } from '../../src/data/folder.js';
import { decodeImage } from '../../src/data/image.js';
import { DataError } from '../../src/data/errors.js';
import { bytes, cifarBytes, gz, idxBytes, jpegBytes, pngBytes, rejectsWith, tempDir, write } from './fixtures.js';

const tmp = tempDir('hostile');
test.after(() => tmp.cleanup());

const good = idxBytes([4, 5, 6], bytes(120));

test('truncated IDX: raw payload, raw header, gzip stream', async () => {
  const p1 = write(tmp.path('trunc.idx'), good.subarray(0, good.length - 7));
  await rejectsWith(() => readIdx(p1, 3), p1, 'truncated', '136 bytes', '129');
  const p2 = write(tmp.path('trunc-head.idx'), good.subarray(0, 9));
  await rejectsWith(() => readIdx(p2, 3), p2, 'truncated', 'header');
  const z = gz(good);
  const p3 = write(tmp.path('trunc.idx.gz'), z.subarray(0, z.length - 12));
  await rejectsWith(() => readIdx(p3, 3), p3, 'truncated');
  const p4 = write(tmp.path('trunc-payload.idx.gz'), gz(good.subarray(0, 100)));
  await rejectsWith(() => readIdx(p4, 3), p4, 'truncated', 'inflates to 100 bytes', 'declares 136');
  const p5 = write(tmp.path('extra.idx'), new Uint8Array([...good, 1, 2]));
  await rejectsWith(() => readIdx(p5, 3), p5, '2 bytes past');
});

test('wrong magic, wrong element type, wrong rank', async () => {
  const p1 = write(tmp.path('magic.idx'), idxBytes([4, 5, 6], bytes(120), 0x12345678));
  await rejectsWith(() => readIdx(p1, 3), p1, 'not an IDX file', '0x12345678', '0x00000803');
  const p2 = write(tmp.path('f32.idx'), idxBytes([4, 5, 6], bytes(120), 0x00000d03));
  await rejectsWith(() => readIdx(p2, 3), p2, 'f32', 'only u8');
  const p3 = write(tmp.path('labels-as-images.idx.gz'), gz(idxBytes([7], bytes(7))));
  await rejectsWith(() => readIdx(p3, 3), p3, '1 dimensions, expected 3');
  const p4 = write(tmp.path('png-as-idx'), pngBytes(2, 2, bytes(12)));
  await rejectsWith(() => readIdx(p4, 3), p4, 'not an IDX file');
});

test('absurd dimensions are refused before allocating', async () => {
  const head = idxBytes([0xffffffff, 0xffff, 0xffff], []);
  const p1 = write(tmp.path('absurd.idx'), new Uint8Array([...head, ...bytes(64)]));
  await rejectsWith(() => readIdx(p1, 3), p1, 'truncated', 'declares');
  // Compressed: the declared size exceeds anything these gzip bytes could inflate to.
  const p2 = write(tmp.path('absurd.idx.gz'), gz(idxBytes([100000, 28, 28], bytes(64))));
  await rejectsWith(() => readIdx(p2, 3), p2, 'declares 78400016 decoded bytes', 'inflate to at most');
  const p3 = write(tmp.path('huge.idx.gz'), gz(idxBytes([0xffffffff, 0xffff, 0xffff], [])));
  await rejectsWith(() => readIdx(p3, 3), p3, 'over the limit');
  const p4 = write(tmp.path('zero.idx'), idxBytes([0, 28, 28], []));
  await rejectsWith(() => readIdx(p4, 3), p4, 'dimension 0 is 0');
  const p5 = write(tmp.path('big-enough.idx'), good);
  await rejectsWith(() => readIdx(p5, 3, { maxBytes: 100 }), p5, 'over the limit of 100');
});

test('gzip that inflates past its declared size stops at the cap (bomb)', async () => {
  // Declares 2 images of 4x4 (48 bytes with the header), then 64 MiB of zeros: ~64 KiB compressed.
  const bomb = new Uint8Array(48 + (64 << 20));
  bomb.set(idxBytes([2, 4, 4], bytes(32)));
  const p = write(tmp.path('bomb.idx.gz'), new Uint8Array(gzipSync(bomb, { level: 9 })));
  const t0 = cpuMs();
  await rejectsWith(() => readIdx(p, 3), p, 'inflates past its declared size of 48 bytes');
  assert.ok(cpuMs() - t0 < 2000, 'bomb rejected quickly (CPU time)');
});

test('corrupt gzip and mismatched label files', async () => {
  const z = gz(good);
  z[z.length - 20] ^= 0xff;
  const p1 = write(tmp.path('corrupt.idx.gz'), z);
  await rejectsWith(() => readIdx(p1, 3), p1, 'gzip error');
  const img = write(tmp.path('m-img.idx'), good);
  const lab = write(tmp.path('m-lab.idx'), idxBytes([3], [0, 1, 2]));
  await rejectsWith(() => loadIdxDataset({ images: img, labels: lab }), lab, 'holds 3 labels', '4 images');
  const lab2 = write(tmp.path('m-lab2.idx'), idxBytes([4], [0, 1, 2, 12]));
  await rejectsWith(() => loadIdxDataset({ images: img, labels: lab2, classes: ['a', 'b', 'c'] }), lab2, 'label 12');
  await rejectsWith(() => readIdx(tmp.path('missing.idx'), 3), 'missing.idx', 'cannot read');
});

test('CIFAR: partial record and out-of-range label', async () => {
  const dir = tmp.path('cifar');
  const p1 = write(tmp.path('cifar', 'test_batch.bin'), cifarBytes([1, 2]).subarray(0, 5000));
  await rejectsWith(() => loadCifar10({ dir, split: 'test' }), p1, '5000 bytes', '3073-byte');
  write(p1, cifarBytes([1, 10, 2]));
  await rejectsWith(() => loadCifar10({ dir, split: 'test' }), p1, 'record 1', 'label 10');
  await rejectsWith(() => loadCifar10({ dir, split: 'train' }), 'data_batch_1.bin', 'cannot read');
});

test('images: absurd PNG/JPEG sizes refused from the header, truncated and foreign files named', async () => {
  const png = pngBytes(3, 2, bytes(18));
  const big = png.slice();
  new DataView(big.buffer).setUint32(16, 100000);
  new DataView(big.buffer).setUint32(20, 100000);
  assert.throws(
    () => decodeImage('big.png', big, 64e6),
    (e: Error) => e instanceof DataError && /big\.png.*100000x100000.*over the limit/.test(e.message),
  );
  assert.throws(
    () => decodeImage('t.png', png.subarray(0, png.length - 20), 64e6),
    (e: Error) => /t\.png: cannot decode PNG/.test(e.message),
  );
  assert.throws(() => decodeImage('h.png', png.subarray(0, 20), 64e6), /h\.png: truncated PNG/);
  const jpg = jpegBytes(16, 16, bytes(768));
  const bigJ = jpg.slice();
  const sof = bigJ.findIndex((v, i) => v === 0xff && bigJ[i + 1] === 0xc0);
  bigJ[sof + 5] = 0xff;
  bigJ[sof + 6] = 0xff;
  bigJ[sof + 7] = 0xff;
  bigJ[sof + 8] = 0xff;
  assert.throws(() => decodeImage('big.jpg', bigJ, 64e6), /big\.jpg: is 65535x65535, over the limit/);
  assert.throws(() => decodeImage('t.jpg', jpg.subarray(0, jpg.length / 2), 64e6), /t\.jpg: cannot decode JPEG/);
  assert.throws(() => decodeImage('s.jpg', jpg.subarray(0, 30), 64e6), /s\.jpg: truncated JPEG/);
  assert.throws(() => decodeImage('x.png', bytes(100), 64e6), /x\.png: is neither a PNG nor a JPEG/);
});

test('image folder: unequal sizes without size, empty class, dataset over maxBytes', async () => {
  const root = tmp.path('folder');
  write(tmp.path('folder', 'a', '1.png'), pngBytes(4, 4, bytes(48)));
  const odd = write(tmp.path('folder', 'b', '2.png'), pngBytes(5, 4, bytes(60)));
  await rejectsWith(() => loadImageFolder({ root }), odd, 'is 5x4', '4x4', 'size');
  await rejectsWith(() => loadImageFolder({ root, size: 64, maxBytes: 1000 }), root, 'over the limit of 1000');
  write(tmp.path('folder', 'c', 'readme.txt'), bytes(3));
  await rejectsWith(() => loadImageFolder({ root, size: 4 }), tmp.path('folder', 'c'), 'no image');
});

test.run();
