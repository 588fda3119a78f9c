// The WebGPU runtime keeps a step in one command buffer: an upload while commands are pending is
// staged and copied in encoder order (no submit, and the pending commands still see the old data),
// more uniform blocks than one arena holds go into further arenas (no submit), and only read-backs
// and syncs submit and wait. Uploads larger than a staging chunk still submit first, correctly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend, DeviceTraffic } from '../../src/backend/backend.js';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { STAGING_CHUNK } from '../../src/backend/webgpu/staging.js';

const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;

const diff = (a: DeviceTraffic, b: DeviceTraffic) => ({ submits: b.submits - a.submits, waits: b.waits - a.waits });

async function read(be: Backend, s: ReturnType<Backend['alloc']>): Promise<number[]> {
  return Array.from(await be.download(s));
}

test('an upload between pending kernels lands in encoder order and submits nothing', async () => {
  const be = await getBackend(gpuCase);
  const n = 64;
  const x = be.alloc(n, 'f32'),
    y = be.alloc(n, 'f32'),
    z = be.alloc(n, 'f32');
  try {
    be.upload(
      x,
      Float32Array.from({ length: n }, (_, i) => i),
    );
    await be.sync();
    const t0 = be.traffic();
    be.unary('neg', x, y, n, 0, 0); // pending: reads x as it is now
    be.upload(
      x,
      Float32Array.from({ length: n }, (_, i) => 1000 + i),
    );
    be.unary('neg', x, z, n, 0, 0); // reads the new x
    assert.equal(diff(t0, be.traffic()), { submits: 0, waits: 0 });
    assert.equal(
      await read(be, y),
      Array.from({ length: n }, (_, i) => -i),
    );
    assert.equal(diff(t0, be.traffic()), { submits: 1, waits: 1 });
    assert.equal(
      await read(be, z),
      Array.from({ length: n }, (_, i) => -(1000 + i)),
    );
  } finally {
    for (const s of [x, y, z]) be.free(s);
  }
});

test('a pooled buffer reused for an upload while the commands that read it are pending', async () => {
  const be = await getBackend(gpuCase);
  const n = 32;
  const a = be.alloc(n, 'f32');
  be.upload(a, new Float32Array(n).fill(3));
  const out = be.alloc(n, 'f32');
  be.unary('square', a, out, n, 0, 0);
  be.free(a); // back to the pool while the square is still pending
  const b = be.alloc(n, 'f32'); // the same size bucket: the buffer the square reads
  try {
    be.upload(b, new Float32Array(n).fill(5));
    assert.equal(await read(be, out), new Array(n).fill(9));
    assert.equal(await read(be, b), new Array(n).fill(5));
  } finally {
    be.free(b);
    be.free(out);
  }
});

test('more kernels than one uniform arena holds: one submit, right result', async () => {
  const be = await getBackend(gpuCase);
  const n = 16,
    kernels = 1300; // over two arenas of 512 uniform blocks
  const a = be.alloc(n, 'f32'),
    b = be.alloc(n, 'f32');
  try {
    be.upload(a, new Float32Array(n));
    await be.sync();
    const t0 = be.traffic();
    // affine: a·x + b; each step adds 1, ping-ponging between the two buffers
    for (let k = 0; k < kernels; k++) be.unary('affine', k % 2 ? b : a, k % 2 ? a : b, n, 1, 1);
    assert.equal(diff(t0, be.traffic()), { submits: 0, waits: 0 });
    assert.equal(await read(be, kernels % 2 ? b : a), new Array(n).fill(kernels));
    assert.equal(diff(t0, be.traffic()), { submits: 1, waits: 1 });
  } finally {
    be.free(a);
    be.free(b);
  }
});

test('an upload larger than a staging chunk submits the pending commands first', async () => {
  const be = await getBackend(gpuCase);
  const big = STAGING_CHUNK / 4 + 1;
  const x = be.alloc(big, 'f32'),
    y = be.alloc(big, 'f32');
  try {
    be.upload(x, new Float32Array(big).fill(2));
    await be.sync();
    const t0 = be.traffic();
    be.unary('neg', x, y, big, 0, 0);
    be.upload(x, new Float32Array(big).fill(7));
    assert.equal(diff(t0, be.traffic()), { submits: 1, waits: 0 });
    const ys = await be.download(y),
      xs = await be.download(x);
    assert.ok(
      ys.every((v) => v === -2),
      'the pending kernel saw the new data',
    );
    assert.ok(
      xs.every((v) => v === 7),
      'the upload was lost',
    );
  } finally {
    be.free(x);
    be.free(y);
  }
});

test.run();
