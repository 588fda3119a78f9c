// The GPU-machine kit, checked here: scripts/device-pack.sh packs under the device's 64 MiB, and
// scripts/gpu-check.sh --local runs in a copy of the tree that has nothing but what travels (no
// node_modules: the pack's own), on this machine's adapter, and writes its results file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const LIMIT = 64 * 1024 * 1024;

test('device-pack: node, the runtime node_modules and the Vulkan loader, all that travels under 64 MiB', () => {
  const r = spawnSync('bash', ['scripts/device-pack.sh'], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  assert.is(r.status, 0, r.stderr);
  const manifest = readFileSync(join(root, '.device/MANIFEST'), 'utf8');
  const total = Number(/^travels: .* = (\d+) bytes/m.exec(manifest)?.[1]);
  assert.ok(total > 20 * 1024 * 1024 && total <= LIMIT, manifest);
  const listed = execFileSync('tar', ['-tJf', join(root, '.device/runtime.tar.xz')], { encoding: 'utf8' }).split('\n');
  for (const f of ['bin/node', 'node_modules/webgpu/dist/linux-x64/dawn.node', 'node_modules/uvu/package.json'])
    assert.ok(listed.includes(f), `${f} in runtime.tar.xz`);
  const loader = readFileSync(join(root, '.device/lib/libvulkan.so.1'));
  assert.is(loader.subarray(0, 4).toString('latin1'), '\x7fELF');
});

test('gpu-check --local: runs from the pack alone and writes one results file', () => {
  const copy = mkdtempSync(join(tmpdir(), 'gpu-check-'));
  try {
    // What a device call sends: the files git would, plus the carried paths.
    const files = execFileSync('git', ['ls-files', '-z', '-co', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
      .split('\0')
      .filter((f) => f);
    for (const f of files) {
      mkdirSync(join(copy, dirname(f)), { recursive: true });
      cpSync(join(root, f), join(copy, f));
    }
    for (const d of ['.device', 'dist', 'build']) cpSync(join(root, d), join(copy, d), { recursive: true });
    const out = join(copy, 'out');
    const r = spawnSync(
      'bash',
      ['scripts/gpu-check.sh', '--local', '--out', out, '--tests', 'conformance/matmul\\.test\\.js$'],
      { cwd: copy, encoding: 'utf8', timeout: 600_000 },
    );
    assert.is(r.status, 0, r.stdout + r.stderr);
    const results = readFileSync(join(out, 'gpu-check.txt'), 'utf8');
    assert.match(results, /^# protodino gpu-check \(local\)/);
    assert.match(results, /\nWebGPU adapters:\n/);
    assert.match(results, /\n\d+ passed, 0 failed\n/);
    assert.match(results, /\nbench gpu \[webgpu on .+\] matmul n=\d+: [\d.]+ GFLOP\/s/);
    assert.match(results, /\nbench gpu \[webgpu on .+\] dino step vit_cpu batch \d+: [\d.]+ images\/s/);
    const summary = results.slice(results.indexOf('\n# summary'));
    for (const s of ['doctor: ok', 'conformance-webgpu: ok', 'bench-gpu: ok']) assert.ok(summary.includes(s), summary);
    assert.match(summary, /\ntorch: /);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test.run();
