// The PyTorch twin's protodino side, without PyTorch: scripts/torch-twin/train.py keeps its own copy
// of protodino's training defaults (it must run without node), which must not drift from
// src/train/config.ts; and protodino-side.mjs init writes the step-0 weights the twin loads, under
// the state-dict names of buildNetwork, student equal to teacher.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, validate } from '../../src/train/config.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { buildNetwork } from '../../src/train/network.js';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';

// Compiled to dist/test/train/: the repository root is three levels up.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const twinDir = join(root, 'scripts/torch-twin');

test("train.py DEFAULTS equal protodino's DEFAULTS", () => {
  const src = readFileSync(join(twinDir, 'train.py'), 'utf8');
  const m = /^DEFAULTS = (\{[\s\S]*?\n\})/m.exec(src);
  assert.ok(m, 'DEFAULTS = {...} not found in train.py');
  const json = m[1]
    .replace(/\bTrue\b/g, 'true')
    .replace(/\bFalse\b/g, 'false')
    .replace(/,(\s*\})/g, '$1');
  assert.equal(JSON.parse(json), JSON.parse(JSON.stringify(DEFAULTS)));
});

test("protodino-side.mjs init: step-0 weights under buildNetwork's names, student = teacher", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'twin-'));
  try {
    const cfg = {
      ...DEFAULTS,
      out_dim: 16,
      hidden_dim: 8,
      bottleneck_dim: 4,
      use_bn_in_head: true,
      subset: 128,
      seed: 7,
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const out = join(dir, 'init.safetensors');
    execFileSync(
      process.execPath,
      [join(twinDir, 'protodino-side.mjs'), 'init', '--config', join(dir, 'config.json'), '--out', out],
      { stdio: 'pipe' },
    );
    const file = readSafetensors(out);
    const be = await getBackend(ALL_BACKENDS[0]);
    const net = buildNetwork(validate(cfg), be, 1, 7);
    try {
      const want = await net.hostState();
      for (const [name, t] of want) {
        for (const which of ['student', 'teacher']) {
          const got = file.tensors.get(`${which}.${name}`);
          assert.ok(got, `${which}.${name} missing`);
          assert.equal(got.shape, [...t.shape], name);
          assert.equal(Array.from(got.data as Float32Array), Array.from(t.data), name);
        }
      }
      assert.is(file.tensors.size, 2 * want.size);
      assert.ok(want.has('head.mlp.1.running_var'), 'the BatchNorm buffers are part of the state');
    } finally {
      net.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
