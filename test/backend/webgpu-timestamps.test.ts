// The profiler's timestamp path. Pass durations come from pairs of resolved timestamps and are
// summed per kernel call; llvmpipe has no 'timestamp-query', so the command stream itself (query
// sets, timestamp writes per pass, the resolve in the step's own command buffer) is checked on
// Dawn's null backend, which validates every command and runs none: the times there are not real,
// only the plumbing and the traffic counts are. Real GPU times are unverified on this machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attributePasses, ProfiledBackend, profileTable } from '../../src/backend/profile.js';
import { passDurations } from '../../src/backend/webgpu/pass-timer.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';

test('pass durations: end − start of each pair in ns → ms; an untimed (non-increasing) pair is 0', () => {
  const ticks = BigUint64Array.from([1000n, 3_001_000n, 5_000_000n, 5_500_000n, 9n, 9n, 10n, 4n]);
  assert.equal(Array.from(passDurations(ticks, 4)), [3, 0.5, 0, 0]);
  assert.equal(Array.from(passDurations(ticks, 2)), [3, 0.5]);
  assert.throws(() => passDurations(ticks, 5), /8 timestamps for 5 passes/);
});

test('attribution: each call gets the sum of its passes; calls without passes count with 0 ms', () => {
  const d = Float64Array.from([1, 2, 4, 8, 16]);
  const m = attributePasses(d, [
    { key: 'matmul', first: 0, end: 1 },
    { key: 'layerNorm', first: 1, end: 3 }, // a kernel of two dispatches
    { key: 'copyStrided', first: 3, end: 3 }, // a copy: no pass
    { key: 'matmul', first: 3, end: 5 },
  ]);
  assert.equal(Object.fromEntries(m), {
    matmul: { calls: 2, ms: 25 },
    layerNorm: { calls: 1, ms: 6 },
    copyStrided: { calls: 1, ms: 0 },
  });
  assert.throws(() => attributePasses(d, [{ key: 'x', first: 4, end: 6 }]), /outside the 5 timed/);
});

test('llvmpipe has no timestamp queries: the profiler falls back to per-kernel submits and says why', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'webgpu')!);
  const gpu = be as WebGPUBackend;
  if (gpu.passTiming && !('unavailable' in gpu.passTiming())) {
    console.log('  (this adapter has timestamp queries: the fallback is not what runs here)');
    return;
  }
  const prof = new ProfiledBackend(be);
  assert.is(prof.timing, 'serialized');
  assert.match(prof.timingNote, /no 'timestamp-query'/);
});

test("Dawn's null backend: timed passes in the step's one command buffer, attributed per kernel", async () => {
  // Kept for the process: Dawn's binding has aborted on repeated instance creation and teardown.
  const be = await WebGPUBackend.create({ adapter: 'null' });
  const prof = new ProfiledBackend(be);
  assert.is(prof.timing, 'timestamps');
  const n = 256;
  const [a, b, c] = [0, 1, 2].map(() => prof.alloc(n, 'f32'));
  prof.upload(a, new Float32Array(n).fill(1));
  await prof.sync();
  for (let step = 0; step < 2; step++) {
    prof.beginStep();
    prof.upload(b, new Float32Array(n).fill(2)); // staged: commands may be pending
    prof.binary('add', a, b, c, [n], [1], [1]);
    for (let i = 0; i < 3; i++) prof.unary('exp', c, a, n, 0, 0);
    prof.copyStrided(a, b, [n], 0, [1], 0, [1]);
    await prof.download(c); // the step's one read-back
    prof.unary('neg', b, c, n, 0, 0); // left pending, as an optimizer update is
    await prof.endStep();
  }
  const r = prof.report();
  assert.is(r.timing, 'timestamps');
  assert.is(r.serialized, false);
  const calls = Object.fromEntries(r.kernels.map((k) => [k.name, k.calls]));
  assert.equal(calls, { 'binary.add': 1, 'unary.exp': 3, copyStrided: 1, 'unary.neg': 1 });
  for (const k of r.kernels) assert.ok(Number.isFinite(k.ms) && k.ms >= 0, `${k.name}: ${k.ms}`);
  // The step's own traffic is the read-back; the profiler's is the resolve's submit and wait.
  assert.equal({ submits: r.traffic.submits, waits: r.traffic.waits }, { submits: 1, waits: 1 });
  assert.equal({ submits: r.traffic.profilerSubmits, waits: r.traffic.profilerWaits }, { submits: 1, waits: 1 });
  const table = profileTable(r);
  assert.match(table, /timestamp queries/);
  assert.match(table, /device traffic per step: 1 submit\(s\) and 1 CPU wait\(s\)/);
  for (const s of [a, b, c]) prof.free(s);
  await prof.sync();
});

test.run();
