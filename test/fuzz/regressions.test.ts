// The bugs the parser fuzzers found, each as a fixed input: they must stay fixed even if the fuzz
// targets change and no longer happen to generate them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { decodeImage } from '../../src/data/image.js';
import { DataError } from '../../src/data/errors.js';
import { loadCifar10 } from '../../src/data/cifar.js';
import { CheckpointError, readCheckpoint } from '../../src/train/checkpoint.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { bytes, cifarBytes, jpegBytes, pngBytes, tempDir, write } from '../data/fixtures.js';
import { fixCrcs, handPng } from './png.js';
import { readPth } from '../../src/io/pth/index.js';
import { archive, Op, Pk, throwsPth } from '../io/pth-helpers.js';

const tmp = tempDir('fuzz-regressions');
test.after(() => tmp.cleanup());

/** Runs fn, which must throw a DataError matching `pattern`, and returns the ArrayBuffer bytes it left allocated. */
function rejectsWithin(fn: () => unknown, pattern: RegExp): number {
  const mem0 = process.memoryUsage().arrayBuffers;
  try {
    fn();
  } catch (e) {
    const grew = process.memoryUsage().arrayBuffers - mem0;
    assert.ok(e instanceof DataError, `expected a DataError, got ${e instanceof Error ? e.stack : e}`);
    assert.match((e as Error).message, pattern);
    return grew;
  }
  return assert.unreachable(`expected a DataError matching ${pattern}`) as never;
}

test('PNG: a 100-byte file declaring 4000x4000 is refused before anything is allocated for it', () => {
  const png = handPng(4, 4, 8, 2, false, 1);
  new DataView(png.buffer).setUint32(16, 4000);
  new DataView(png.buffer).setUint32(20, 4000);
  // The CRC of the edited IHDR no longer matters: the size check comes first.
  const grew = rejectsWithin(
    () => decodeImage('big.png', png, 64e6),
    /big\.png: PNG declares 4000x4000 \(48004000 bytes of scanlines\) but its \d+ bytes of image data inflate to at most/,
  );
  assert.ok(grew < 4 * 2 ** 20, `allocated ${grew} bytes`); // was: 48 MB of RGB, then pngjs's 48 MB inflate buffer
});

test('PNG: a corrupt deflate stream is an error, not pixels from uninitialised memory', () => {
  // Fuzz case 464 (seed 1): four bytes of the deflate stream overwritten, the chunk CRCs made valid.
  const png = pngBytes(16, 9, bytes(16 * 9 * 3, 3));
  new DataView(png.buffer).setUint32(98, 1439380918);
  fixCrcs(png);
  // pngjs's inflater ignored the stream error and returned a buffer of uninitialised memory, which
  // decoded "successfully" to a different picture on every call.
  rejectsWithin(
    () => decodeImage('bad.png', png, 64e6),
    /bad\.png: cannot decode PNG \(16x9\): image data is corrupt \(invalid literal\/lengths set\)/,
  );
});

test('PNG: interlaced data that inflates past its scanlines stops at them (a bomb)', () => {
  const bomb = handPng(2, 2, 8, 0, true, 4, new Uint8Array(deflateSync(new Uint8Array(64 << 20), { level: 9 })));
  const t0 = performance.now();
  const grew = rejectsWithin(
    () => decodeImage('bomb.png', bomb, 64e6),
    /bomb\.png: cannot decode PNG \(2x2\): image data inflates past the 7 bytes of scanlines/,
  );
  assert.ok(performance.now() - t0 < 1000, 'refused quickly');
  assert.ok(grew < 8 * 2 ** 20, `allocated ${grew} bytes`); // pngjs inflated all 64 MiB of an interlaced image
});

test('JPEG: a small file declaring a large frame, or sampling factors over 4, is refused before jpeg-js allocates', () => {
  const jpg = jpegBytes(16, 16, bytes(768, 5));
  const sof = jpg.findIndex((v, i) => v === 0xff && jpg[i + 1] === 0xc0);
  const big = jpg.slice();
  new DataView(big.buffer).setUint16(sof + 5, 8000);
  new DataView(big.buffer).setUint16(sof + 7, 8000);
  const grew = rejectsWithin(
    () => decodeImage('big.jpg', big, 64e6),
    /big\.jpg: JPEG declares 8000x8000 \(1000000 8x8 blocks\) but its \d+ bytes cannot code that many/,
  );
  assert.ok(grew < 4 * 2 ** 20, `allocated ${grew} bytes`); // jpeg-js took up to its 512 MB default
  const odd = jpg.slice();
  odd[sof + 11] = 0xfe; // component 0: 15x14
  rejectsWithin(
    () => decodeImage('odd.jpg', odd, 64e6),
    /odd\.jpg: JPEG component 0 has sampling factors 15x14 \(each must be 1\.\.4\)/,
  );
});

test('CIFAR: batches.meta.txt is read with a size limit', async () => {
  const dir = tmp.path('cifar');
  write(tmp.path('cifar', 'test_batch.bin'), cifarBytes([0, 1]));
  const meta = write(tmp.path('cifar', 'batches.meta.txt'), new Uint8Array(2 << 20).fill(0x61));
  try {
    await loadCifar10({ dir, split: 'test' });
    assert.unreachable('a 2 MiB class list was read');
  } catch (e) {
    assert.ok(
      e instanceof DataError && e.message.includes(meta) && /over the limit of 1048576/.test(e.message),
      (e as Error).message,
    );
  }
});

test('pth: a numpy scalar of dtype f1 (no such float) is a PthError, not a RangeError', () => {
  // Fuzz case 23488 (seed 2): a flipped bit turned 'f8' into a dtype whose scalar was read as a
  // float64 from one byte.
  const pkl = new Pk()
    .op(...Op.PROTO2)
    .global('numpy.core.multiarray', 'scalar')
    .global('numpy', 'dtype')
    .ustr('f1')
    .op(Op.FALSE, Op.TRUE, Op.TUPLE3, Op.REDUCE, 0x43, 1, 0x3f, Op.TUPLE2, Op.REDUCE, Op.STOP)
    .bytes();
  throwsPth(() => readPth(archive(pkl)), /numpy\.dtype\("f1"\) is not a supported scalar type/);
  const f8 = new Pk()
    .op(...Op.PROTO2)
    .global('numpy.core.multiarray', 'scalar')
    .global('numpy', 'dtype')
    .ustr('f8')
    .op(
      Op.FALSE,
      Op.TRUE,
      Op.TUPLE3,
      Op.REDUCE,
      0x43,
      8,
      ...new Uint8Array(Float64Array.of(2.5).buffer),
      Op.TUPLE2,
      Op.REDUCE,
      Op.STOP,
    )
    .bytes();
  assert.is(readPth(archive(f8)), 2.5);
});

test('checkpoints: damaged metadata is a CheckpointError naming the file, bytes and path read alike', () => {
  const meta = {
    format: 'protodino-dino-v1',
    epoch: 1,
    step: 4,
    config: {},
    loader: {},
    optimizerSteps: { w: 4 },
    optimizerStep: 4,
    optimizerGroups: [{ names: ['w'], weightDecay: 0.04 }],
  };
  const file = (m: unknown): Uint8Array =>
    serializeSafetensors(
      { 'student.w': { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } },
      { protodino: JSON.stringify(m) },
    );
  const path = tmp.path('ck.safetensors');
  writeFileSync(path, file(meta));
  assert.is(readCheckpoint(path).meta.step, 4);
  assert.equal(readCheckpoint(file(meta)).meta, readCheckpoint(path).meta);
  const damaged: [unknown, RegExp][] = [
    [{ ...meta, optimizerGroups: 3 }, /optimizerGroups is 3, not a list of parameter groups/], // export crashed: groups.map is not a function
    [{ ...meta, optimizerSteps: null }, /optimizerSteps is null/], // restore crashed reading a step of null
    [{ ...meta, step: '4' }, /step is "4", not a non-negative integer/],
    [{ ...meta, optimizerGroups: [{ names: 'w', weightDecay: 0 }] }, /optimizerGroups\[0\]/],
    [[1, 2], /metadata is not a JSON object/],
  ];
  for (const [m, pattern] of damaged) {
    writeFileSync(path, file(m));
    assert.throws(
      () => readCheckpoint(path),
      (e: Error) =>
        e instanceof CheckpointError && e.message.startsWith(`${path}: checkpoint metadata`) && pattern.test(e.message),
    );
  }
  const flipped = file(meta);
  flipped[flipped.length - 1] ^= 1;
  assert.throws(
    () => readCheckpoint(flipped, 'mem.safetensors'),
    (e: Error) =>
      e instanceof CheckpointError && /^mem\.safetensors: safetensors: data checksum mismatch/.test(e.message),
  );
});

test.run();
