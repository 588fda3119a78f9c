// protodino doctor reports what the backends themselves report, and commands that run on wasm stay
// quiet: Dawn's "Couldn't load Vulkan" warning used to reach stderr on every command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend, WasmBackend, WebGPUBackend } from '../../src/backend/index.js';
import { REPORTED_FEATURES, REPORTED_LIMITS } from '../../src/backend/webgpu/adapters.js';
import { vulkanDrivers, vulkanLoader } from '../../src/backend/webgpu/vulkan-loader.js';
import type { DoctorReport } from '../../src/cli/doctor.js';
import { tuningKey } from '../../src/backend/wasm/tuner.js';
import { cachePath, checkTuning, DEFAULT_TUNING, writeCache } from '../../src/backend/wasm/tuning.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const pth = fileURLToPath(new URL('../../../test/fixtures/pth/dino-checkpoint.pth', import.meta.url));
const DAWN_VULKAN = /Couldn't load Vulkan|vkCreateInstance/;

function cmd(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 180_000, env });
  assert.is(r.status, 0, `protodino ${args.join(' ')}: ${r.stderr}`);
  return r;
}

test('doctor --json: the wasm build, the adapters and the auto choice are what the backends report', async () => {
  const r = cmd(['doctor', '--json']);
  // Dawn's own messages are collected into the report, not left on stderr.
  assert.is(r.stderr, '');
  const d = JSON.parse(r.stdout) as DoctorReport;

  const wasm = await WasmBackend.create();
  assert.equal(d.wasm, { build: wasm.rt.build, relaxedSimd: wasm.rt.build === 'relaxed', threads: wasm.rt.threads });
  wasm.destroy();

  const loader = vulkanLoader();
  assert.equal(d.vulkanLoader, loader);
  assert.ok(d.adapters.length > 0);
  for (const a of d.adapters) {
    if (!a.found) {
      assert.type(a.note, 'string');
      continue;
    }
    assert.equal(Object.keys(a.features!), [...REPORTED_FEATURES]);
    for (const f of REPORTED_FEATURES) assert.type(a.features![f], 'boolean');
    // The same adapter through the backend: its name in the description, its limits on the device
    // (the runtime asks the device for the adapter's own limits).
    const be = await WebGPUBackend.create({ adapter: a.software ? 'software' : 'hardware' });
    try {
      assert.is(be.description, `webgpu on ${a.name}${a.software ? ' (software, GLES compatibility)' : ''}`);
      for (const l of REPORTED_LIMITS) assert.is(a.limits![l], be.rt.limits[l], l);
    } finally {
      be.destroy();
    }
  }
  const vulkan = d.adapters.find((a) => a.backend === 'vulkan');
  if (process.platform === 'linux') {
    assert.ok(vulkan, 'Linux reports the Vulkan backend, asked or not');
    if (!loader.found) assert.match(vulkan!.note!, /^not asked: no Vulkan loader/);
  }

  const auto = await createBackend({ kind: 'auto' });
  assert.is(d.auto.kind, auto.kind, d.auto.reason);
  auto.destroy();
  const hardware = d.adapters.some((a) => a.found && !a.software);
  assert.is(d.auto.kind, hardware ? 'webgpu' : 'wasm');
});

test('doctor prints one readable report with the auto choice and its reason', () => {
  const r = cmd(['doctor']);
  assert.is(r.stderr, '');
  assert.match(r.stdout, /^node v\d+/);
  assert.match(r.stdout, /\nwasm: (relaxed|simd) build \(relaxed SIMD [a-z ]+\), \d+ threads?\n/);
  assert.match(r.stdout, /\nWebGPU adapters:\n/);
  assert.match(r.stdout, /\n--backend auto: (wasm|webgpu) \(.+\)\n/);
  // the test runner sets PROTODINO_TUNE=off
  assert.match(
    r.stdout,
    /\nwasm tuning \(--tune\): matmul mc 128, kc 256, chunks\/thread 4, .*; from default \(tuning off\)\n/,
  );
});

test('doctor shows the wasm tuning and where it came from: an override, or the host cache (auto)', async () => {
  let d = JSON.parse(cmd(['doctor', '--json', '--tune', 'matmul.mc=64']).stdout) as DoctorReport;
  assert.is(d.tuning.matmul.mc, 64);
  assert.is(d.tuning.conv.chunksPerThread, DEFAULT_TUNING.conv.chunksPerThread);
  assert.equal(d.tuning.source, { from: 'override', detail: 'matmul.mc=64' });

  // auto with this host's cache file in place reads it (no measuring in a test)
  const dir = mkdtempSync(join(tmpdir(), 'protodino-cache-'));
  try {
    const wasm = await WasmBackend.create();
    const key = tuningKey(wasm.rt);
    wasm.destroy();
    const path = cachePath(key, join(dir, 'protodino'));
    writeCache(path, key, checkTuning({ matmul: { mc: 192 } }), { at: 'test', ms: 0, stages: [] });
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: dir };
    delete env.PROTODINO_TUNE;
    d = JSON.parse(cmd(['doctor', '--json'], env).stdout) as DoctorReport;
    assert.is(d.tuning.matmul.mc, 192);
    assert.equal(d.tuning.source, { from: 'cache', detail: path });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('commands that run on wasm print nothing of Dawn on stderr', () => {
  for (const args of [['info'], ['info', '--backend', 'wasm'], ['analyze', pth, '--json']]) {
    const r = cmd(args);
    assert.not.match(r.stderr, DAWN_VULKAN, args.join(' '));
    if (!vulkanLoader().found) assert.is(r.stderr, '', `${args.join(' ')} with no Vulkan loader`);
  }
});

test('WebGPU without Vulkan says why once, in our words; with it, not at all', () => {
  const r = cmd(['info', '--backend', 'webgpu']);
  assert.not.match(r.stderr, DAWN_VULKAN);
  const ours = r.stderr
    .split('\n')
    .filter((l) => /^protodino: .*: WebGPU uses the OpenGL ES software adapter$/.test(l));
  const loader = vulkanLoader();
  const vulkanAsked = loader.found && loader.drivers.length > 0;
  assert.is(ours.length, vulkanAsked ? 0 : 1, r.stderr);
  if (!loader.found) assert.match(ours[0], /^protodino: no (usable )?Vulkan loader/);
});

test('vulkanDrivers: VK_DRIVER_FILES replaces the search; icd.d folders are searched otherwise', () => {
  const dir = mkdtempSync(join(tmpdir(), 'icd-'));
  try {
    const icd = join(dir, 'vulkan', 'icd.d');
    mkdirSync(icd, { recursive: true });
    writeFileSync(join(icd, 'gpu.json'), '{}');
    writeFileSync(join(icd, 'notes.txt'), '');
    const empty = join(dir, 'none');
    const xdg = { HOME: empty, XDG_CONFIG_HOME: empty, XDG_CONFIG_DIRS: empty, XDG_DATA_HOME: empty };
    assert.equal(
      vulkanDrivers({ ...xdg, XDG_DATA_DIRS: dir }).filter((f) => f.startsWith(dir)),
      [join(icd, 'gpu.json')],
    );
    assert.equal(vulkanDrivers({ VK_DRIVER_FILES: join(icd, 'gpu.json') }), [join(icd, 'gpu.json')]);
    assert.equal(vulkanDrivers({ VK_DRIVER_FILES: join(dir, 'missing.json'), XDG_DATA_DIRS: dir }), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
