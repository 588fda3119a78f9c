// Faults: what a user sees when the device runs out of memory or is lost, and what training leaves
// on disk when the backend fails mid-run.
// - A tensor beyond the adapter's buffer limits is refused up front, naming alloc and the sizes.
// - A real buffer-creation failure (the process's address space capped, in a child process) becomes
//   a BackendError naming alloc and the sizes; after disposing its tensors the backend computes again.
// - A lost device (GPUDevice.destroy() mid-use, in a child) fails the pending read and every later
//   call with a BackendError that says so and why, nothing hangs, and the process exits by itself.
// - train() on a backend that starts failing mid-run (in a kernel, or while writing a checkpoint)
//   rejects with that error, frees every tensor, and leaves the last good checkpoint resumable
//   (tidy() frees what a throwing scope created; it used to strand it).
// - A destroyed backend whose Dawn instance GC collects at once lets the process exit cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_BACKENDS, getBackend } from './helpers/backends.js';
import { BackendError, type Backend } from '../src/backend/backend.js';
import type { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { empty, full } from '../src/tensor/create.js';
import { add, mul } from '../src/tensor/ops/elementwise.js';
import { sum } from '../src/tensor/ops/reduce.js';
import { liveTensors, tidy } from '../src/tensor/tensor.js';
import { readResumable, train } from '../src/train/trainer.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import type { TrainConfig } from '../src/train/config.js';

const gpuCase = ALL_BACKENDS.find((b) => b.name === 'webgpu')!;
const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;

/** Runs a compiled helper under test/helpers in a fresh node and returns its last JSON line. */
function child(name: string): { status: number | null; result: Record<string, any>; stderr: string } {
  const file = fileURLToPath(new URL(`./helpers/${name}.js`, import.meta.url));
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000, env: process.env });
  // Dawn prints debug lines on stdout; the child's report is its last JSON line.
  const line = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  assert.ok(line, `${name} printed no report (exit ${run.status}, signal ${run.signal}): ${run.stdout}\n${run.stderr}`);
  return { status: run.status, result: JSON.parse(line!), stderr: run.stderr };
}

test('a tensor beyond the adapter limit is refused naming alloc and the sizes; the backend carries on', async () => {
  const be = (await getBackend(gpuCase)) as WebGPUBackend;
  const limit = be.rt.limits.maxStorageBufferBindingSize;
  const n = limit / 4 + 1;
  const before = { tensors: liveTensors(), ...be.memory() };
  try {
    empty([n], be);
    assert.unreachable(`a ${n}-element tensor was allocated past maxStorageBufferBindingSize ${limit}`);
  } catch (e) {
    assert.instance(e, BackendError);
    assert.is((e as BackendError).kernel, 'alloc');
    assert.match((e as Error).message, `${n} f32 elements`);
    assert.match((e as Error).message, `maxStorageBufferBindingSize of ${limit} bytes`);
  }
  assert.equal({ tensors: liveTensors(), ...be.memory() }, before, 'nothing allocated by the refused tensor');
  const x = full([1000], 2, be);
  const s = sum(x);
  assert.is(await s.item(), 2000);
  x.dispose();
  s.dispose();
});

test('a buffer the device cannot create is a BackendError naming alloc and sizes; disposing recovers', () => {
  const { status, result: r, stderr } = child('webgpu-oom-child');
  assert.is(status, 0, `child exit ${status}: ${stderr}`);
  assert.ok(
    r.error,
    `no allocation failed under an address-space cap of ${r.limit} bytes (${r.allocated} tensors of 32 MiB)`,
  );
  assert.is(r.error.name, 'BackendError');
  assert.is(r.error.kernel, 'alloc');
  assert.match(
    r.error.message,
    /^alloc: out of memory: creating a 33554432-byte buffer for a tensor of 8388608 f32 elements failed/,
  );
  assert.match(r.error.message, /GL_OUT_OF_MEMORY|out of memory/i);
  assert.ok(r.allocated >= 2, `the cap left room for ${r.allocated - 1} tensors only`);
  assert.is(r.atError.liveBuffers, r.allocated, 'the failed tensor is counted live until disposed');
  assert.is(r.atError.pooledBytes, 0, 'the pool is released on an allocation failure');
  assert.equal(
    r.afterDispose,
    { liveBuffers: 0, liveBytes: 0, pooledBytes: 0 },
    'disposed buffers go back to the device, not the pool',
  );
  assert.is(r.value, r.expected, 'the backend computes correctly afterwards, under the same cap');
});

test('a lost device fails the pending read and every later call with a BackendError; the process exits', () => {
  const { status, result: r, stderr } = child('webgpu-lost-child');
  assert.is(status, 0, `a process with a lost device should exit normally; exit ${status}: ${stderr}`);
  assert.ok(r.before > 0, 'the device worked before');
  const lost = /the WebGPU device was lost \(destroyed: .+\); this backend cannot run anything any more/;
  for (const [what, kernel] of [
    ['read', 'download'],
    ['lateRead', 'download'],
    ['op', 'alloc'],
    ['upload', 'alloc'],
    ['sync', 'sync'],
    ['readOld', 'download'],
  ] as const) {
    const o = r[what];
    assert.ok(o !== 'hang', `${what} hung after the device was lost`);
    assert.is(o.ok, false, `${what} succeeded on a lost device`);
    assert.is(o.name, 'BackendError', `${what}: ${o.message}`);
    assert.is(o.kernel, kernel, `${what} names the call that found the loss: ${o.message}`);
    assert.match(o.message, lost, what);
  }
  assert.is(r.dispose.ok, true, 'tensors can still be disposed');
  assert.is(r.memory.liveBuffers, 0);
});

test('a destroyed backend whose Dawn objects are garbage-collected at once exits cleanly', () => {
  // Five children: before the fix each one crashed (SIGSEGV, SIGABRT) or hung.
  for (let i = 0; i < 5; i++) {
    const run = child('webgpu-destroy-gc-child');
    assert.type(run.result.description, 'string');
    assert.is(run.status, 0, `child ${i} exited with ${run.status}: ${run.stderr}`);
  }
});

test('a step that throws inside nested tidy() scopes frees every tensor it created there', async () => {
  const be = await getBackend(wasmCase);
  const kept = full([4], 1, be);
  const before = { tensors: liveTensors(), buffers: be.memory().liveBuffers };
  assert.throws(
    () =>
      tidy(() => {
        const a = add(kept, kept);
        tidy(() => {
          mul(a, a);
          throw new BackendError('injected fault', 'binary(mul)');
        });
      }),
    /injected fault/,
  );
  assert.equal({ tensors: liveTensors(), buffers: be.memory().liveBuffers }, before);
  // The scopes unwound: a tensor made now belongs to no scope and survives the next tidy.
  const after = full([4], 2, be);
  tidy(() => add(after, after)).dispose();
  assert.equal(Array.from(await after.data()), [2, 2, 2, 2]);
  after.dispose();
  kept.dispose();
});

/**
 * Wraps a backend so that it fails on demand, as a faulting device would: every kernel from the
 * armed count on, or every read of a tensor with more than GUARD_READ elements (those are
 * checkpoint writes and parameter norms: the training step itself reads back its guard's scalars only).
 */
/** The divergence guard's one read-back per step: health, loss and the DINO term. */
const GUARD_READ = 3;

class FaultyBackend {
  kernelsLeft = Infinity;
  failTensorReads = false;
  readonly backend: Backend;
  constructor(inner: Backend) {
    const plumbing = new Set(['alloc', 'free', 'upload', 'sync', 'memory', 'traffic', 'destroy']);
    this.backend = new Proxy(inner, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function' || typeof prop !== 'string' || plumbing.has(prop))
          return typeof v === 'function' ? v.bind(target) : v;
        if (prop === 'download') {
          return (...args: unknown[]) =>
            this.failTensorReads && (args[0] as { length: number }).length > GUARD_READ
              ? Promise.reject(new BackendError('injected fault: the device stopped answering reads', 'download'))
              : v.apply(target, args);
        }
        return (...args: unknown[]) => {
          if (this.kernelsLeft-- <= 0)
            throw new BackendError('injected fault: the device stopped running kernels', prop);
          return v.apply(target, args);
        };
      },
    });
  }
}

// 16 images in batches of 4: an epoch is 4 steps, and each epoch ends with a checkpoint.
const tiny: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  global_crops_size: 16,
  local_crops_size: 8,
  batch_size: 4,
  subset: 16,
  local_crops_number: 2,
  out_dim: 32,
  hidden_dim: 32,
  bottleneck_dim: 16,
  epochs: 3,
  log_every: 100,
  quiet: true,
  freeze_last_layer: 0,
};

for (const fault of ['kernel', 'checkpoint read'] as const) {
  test(`train() failing in a ${fault} in epoch 3 rejects with the error, frees its tensors, keeps epoch 2 resumable`, async () => {
    const inner = await getBackend(wasmCase);
    const faulty = new FaultyBackend(inner);
    const dir = mkdtempSync(join(tmpdir(), 'protodino-fault-'));
    const ckpt = join(dir, 'checkpoint.safetensors');
    const tensors = liveTensors(),
      buffers = inner.memory().liveBuffers;
    try {
      const err = await train(
        { ...tiny, output_dir: dir },
        {
          backend: faulty.backend,
          onEpoch: async ({ epoch }) => {
            if (epoch !== 1) return;
            // Epoch 2's checkpoint is on disk. Fail inside step 9, or while writing epoch 3's checkpoint.
            if (fault === 'kernel') faulty.kernelsLeft = 40;
            else faulty.failTensorReads = true;
          },
        },
      ).then(
        () => null,
        (e: unknown) => e,
      );
      assert.instance(err, BackendError, `train() should reject with the backend's error, got ${err}`);
      assert.match((err as Error).message, 'injected fault');
      assert.is(liveTensors(), tensors, 'every tensor freed after the fault');
      assert.is(inner.memory().liveBuffers, buffers, 'every buffer freed after the fault');

      // The fault struck where intended: in step 9, or after step 12 was done and logged.
      const logged = readFileSync(join(dir, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((r) => r.event === 'step')
        .map((r) => r.step as number);
      assert.is(logged.at(-1), fault === 'kernel' ? 8 : 12, `last logged step (${logged.join(', ')})`);
      if (fault === 'kernel') assert.is(readCheckpoint(ckpt).meta.step, 8, "the latest checkpoint is epoch 2's");
      // Whatever files the failed write left, each one reads back whole and none claims a later step.
      const files = readdirSync(dir).filter((f) => f !== 'log.jsonl');
      for (const f of files) {
        assert.ok(
          f === 'checkpoint.safetensors' || f === 'checkpoint.safetensors.prev',
          `unexpected file ${f} left in the run directory`,
        );
        const step = readCheckpoint(join(dir, f)).meta.step;
        assert.ok(step <= 8, `${f} holds step ${step}, after the fault`);
      }
      const resumable = readResumable(ckpt, true);
      assert.ok(resumable, 'a checkpoint to resume from');
      assert.is(resumable!.meta.step, 8);
      assert.is(resumable!.meta.epoch, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
