// The profiling backend: it forwards every call unchanged (same results as the wrapped backend), it
// counts and times kernels only inside a profiled step, groups them by kernel family, leaves out
// the first step when there are more, and its rows add up to the step time. The trainer's
// --profile writes the report and trains exactly as without it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, KernelName } from '../../src/backend/backend.js';
import { KERNEL_NAMES, matmulParams } from '../../src/backend/backend.js';
import {
  ProfiledBackend,
  kernelFamily,
  profileTable,
  KERNEL_FAMILIES,
  type ProfileReport,
} from '../../src/backend/profile.js';
import { conformance, ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { randArray } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { train } from '../../src/train/trainer.js';

// Everything on Backend that is not a kernel, type-checked as exactly that set: a member added to
// Backend outside KernelFamilies (so neither assembled from family files nor profiled) has to be
// named here before this test compiles.
const NOT_KERNELS: Record<Exclude<keyof Backend, KernelName>, true> = {
  kind: true,
  description: true,
  alloc: true,
  free: true,
  upload: true,
  download: true,
  sync: true,
  flush: true,
  memory: true,
  traffic: true,
  peakLiveBytes: true,
  resetPeakLiveBytes: true,
  attentionSavedLength: true,
  destroy: true,
};

test('every kernel has a family; the rest of Backend is not a kernel', () => {
  assert.ok(KERNEL_NAMES.length >= 34, `only ${KERNEL_NAMES.length} kernels`);
  for (const k of KERNEL_NAMES) assert.ok(KERNEL_FAMILIES.includes(kernelFamily(k)), k);
  for (const k of Object.keys(NOT_KERNELS)) assert.throws(() => kernelFamily(k), /not a kernel/, k);
});

const f32 = (n: number, seed: number) => Float32Array.from(randArray(n, seed));

/** A small forward pass through several kernel families; its output values. */
async function forward(be: Backend): Promise<Float32Array> {
  const x = pd.tensor(f32(6 * 8, 1), [6, 8], be);
  const w = pd.tensor(f32(5 * 8, 2), [5, 8], be);
  const b = pd.tensor(f32(5, 3), [5], be);
  const y = pd.softmax(pd.linear(x, w, b, 'gelu'), -1);
  const out = (await y.data()) as Float32Array;
  for (const t of [x, w, b, y]) t.dispose();
  return out;
}

conformance('ProfiledBackend', (it, raw) => {
  it('the backend holds exactly the kernels of the contract, and the profiler wraps each', () => {
    const be = raw() as unknown as Record<string, unknown>;
    const own = Object.keys(be)
      .filter((k) => typeof be[k] === 'function')
      .sort();
    assert.equal(own, [...KERNEL_NAMES].sort());
    const prof = new ProfiledBackend(raw()) as unknown as Record<string, unknown>;
    for (const k of KERNEL_NAMES) assert.type(prof[k], 'function', `ProfiledBackend.${k}`);
  });

  it('forwards: same values as the wrapped backend; nothing recorded outside a step', async () => {
    const be = new ProfiledBackend(raw());
    assert.equal(Array.from(await forward(be)), Array.from(await forward(raw())));
    assert.is(be.steps, 0);
    assert.throws(() => be.report(), /no step was recorded/);
    assert.is(be.kind, raw().kind);
  });

  it('counts kernels by family inside steps, leaves out the first step, rows add up to the step', async () => {
    const inner = raw();
    const be = new ProfiledBackend(inner);
    const n = 64;
    // Every kernel reads and writes distinct storages, as the kernel contract asks.
    const [a, c, d, m, v] = [0, 1, 2, 3, 4].map(() => be.alloc(n * n, 'f32'));
    const p = matmulParams({ batch: 1, m: n, n, k: n });
    try {
      be.upload(a, f32(n * n, 4));
      be.fill(m, n * n, 0);
      be.fill(v, n * n, 0);
      // step 1: one matmul only (left out of the report once step 2 exists)
      be.beginStep();
      be.matmul(a, a, c, p);
      await be.endStep();
      let r = be.report();
      assert.is(r.steps, 1);
      assert.is(r.firstStepExcluded, false);
      assert.equal(
        r.families.map((f) => [f.name, f.calls]),
        [['matmul', 1]],
      );
      // step 2: two matmuls, three unary ops, a softmax, an AdamW update and an upload
      be.beginStep();
      assert.throws(() => be.beginStep(), /twice/);
      be.upload(a, f32(n * n, 5));
      be.matmul(a, a, c, p);
      be.matmul(c, a, d, { ...p, accumulate: true });
      be.unary('gelu', d, c, n * n, 0, 0);
      be.unary('gelu', c, d, n * n, 0, 0);
      be.unary('exp', d, c, n * n, 0, 0);
      be.softmax(c, d, n, n, false);
      be.adamw(a, d, m, v, n * n, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 });
      await be.endStep();
      r = be.report();
      assert.is(r.steps, 1);
      assert.is(r.firstStepExcluded, true);
      const calls = Object.fromEntries(r.families.map((f) => [f.name, f.calls]));
      assert.equal(calls, { matmul: 2, elementwise: 3, softmax: 1, optim: 1 });
      const kernels = Object.fromEntries(r.kernels.map((k) => [k.name, k.calls]));
      assert.equal(kernels, { matmul: 2, 'unary.gelu': 2, 'unary.exp': 1, softmax: 1, adamw: 1 });
      assert.is(r.transfer.calls, 1);
      assert.is(r.serialized, inner.kind === 'webgpu');
      const parts = [...r.families, r.transfer, r.deviceWait, r.host];
      const sumMs = parts.reduce((s, x) => s + x.ms, 0);
      assert.ok(
        Math.abs(sumMs - r.stepMs) < 1e-6 * Math.max(1, r.stepMs),
        `rows sum to ${sumMs} ms, step ${r.stepMs} ms`,
      );
      assert.ok(Math.abs(parts.reduce((s, x) => s + x.pct, 0) - 100) < 1e-6);
      for (const f of r.families) assert.ok(f.ms >= 0 && f.ms <= r.stepMs, `${f.name} ${f.ms} of ${r.stepMs}`);
      assert.ok(r.host.ms >= 0, `host ${r.host.ms}`);
      const table = profileTable(r);
      for (const f of ['matmul', 'elementwise', 'softmax', 'optim', 'host', 'unary.gelu'])
        assert.ok(table.includes(`| ${f}`), `table row ${f}:\n${table}`);
      // outside a step nothing is added
      be.matmul(a, a, c, p);
      assert.equal(be.report().families.find((f) => f.name === 'matmul')?.calls, 2);
      let error = '';
      await be.endStep().catch((e: Error) => {
        error = e.message;
      });
      assert.match(error, /without beginStep/);
    } finally {
      for (const s of [a, c, d, m, v]) be.free(s);
    }
  });
});

test('train --profile: report in the result and profile.json, training unchanged', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const base = {
    arch: 'vit_cpu' as const,
    batch_size: 4,
    subset: 12,
    local_crops_number: 2,
    out_dim: 64,
    hidden_dim: 32,
    bottleneck_dim: 16,
    epochs: 1,
    log_every: 1,
    quiet: true,
    freeze_last_layer: 0,
    koleo_proto: 0.1,
  };
  const dirs = [mkdtempSync(join(tmpdir(), 'protodino-prof-')), mkdtempSync(join(tmpdir(), 'protodino-prof-'))];
  try {
    const plain = await train({ ...base, output_dir: dirs[0] }, { backend: be });
    const profiled = await train({ ...base, output_dir: dirs[1], profile: true }, { backend: be });
    assert.equal(
      profiled.history.map((h) => h.loss),
      plain.history.map((h) => h.loss),
    );
    assert.is(plain.profile, undefined);
    assert.not.ok(existsSync(join(dirs[0], 'profile.json')));
    const r = profiled.profile as ProfileReport;
    assert.ok(r, 'no profile in the result');
    assert.is(r.steps, 2); // 3 steps, the first left out
    const fams = r.families.map((f) => f.name);
    for (const f of ['matmul', 'elementwise', 'norm', 'softmax', 'layout', 'neighbours', 'optim'])
      assert.ok(fams.includes(f), `family ${f} missing: ${fams}`);
    assert.equal(JSON.parse(readFileSync(join(dirs[1], 'profile.json'), 'utf8')), JSON.parse(JSON.stringify(r)));
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test.run();
