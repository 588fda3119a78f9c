// createBackend refuses option names it does not read: { backend: 'wasm' } used to give the auto
// backend without a word.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBackend, CREATE_BACKEND_OPTIONS } from '../../src/backend/index.js';
import { BackendError } from '../../src/backend/backend.js';

async function refused(opts: unknown, re: RegExp): Promise<void> {
  try {
    await createBackend(opts as never);
  } catch (e) {
    assert.instance(e, BackendError);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`createBackend(${JSON.stringify(opts)}) succeeded`);
}

test('unknown option names are refused with the list of valid ones', async () => {
  await refused(
    { backend: 'wasm' },
    /createBackend: unknown option 'backend' \(the backend is chosen with kind: 'wasm' \| 'webgpu' \| 'auto'\); valid options are kind, threads, build, adapter, tune/,
  );
  await refused(
    { kind: 'wasm', thread: 2, device: 0 },
    /unknown options 'thread', 'device'; valid options are kind, threads/,
  );
  await refused([], /takes an options object, got an array/);
  assert.equal([...CREATE_BACKEND_OPTIONS], ['kind', 'threads', 'build', 'adapter', 'tune']);
});

test('the valid names still work', async () => {
  const be = await createBackend({ kind: 'wasm', threads: 1, build: 'simd' });
  assert.is(be.kind, 'wasm');
  assert.match(be.description, /simd build, 1 thread$/);
  be.destroy();
  await refused({ kind: 'tpu' }, /unknown backend kind 'tpu'/);
});

test.run();
