// protodino export --to pth: the file torch.load reads has DINO's checkpoint layout and our values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { train } from '../../src/train/trainer.js';
import { exportCheckpointToPth } from '../../src/io/export-dino.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readPth } from '../../src/io/pth/index.js';

const TORCH = '/usr/bin/python3';
const hasTorch = spawnSync(TORCH, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

test('export writes DINO checkpoint.pth layout; torch.load reads the same values', async () => {
  const be = await getBackend(ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-export-'));
  const r = await train(
    {
      arch: 'vit_cpu',
      batch_size: 4,
      subset: 8,
      local_crops_number: 2,
      out_dim: 32,
      hidden_dim: 16,
      bottleneck_dim: 8,
      max_steps: 2,
      freeze_last_layer: 0,
      quiet: true,
      output_dir: dir,
    },
    { backend: be },
  );
  const out = join(dir, 'checkpoint.pth');
  exportCheckpointToPth(r.checkpoint, out);
  const ck = readCheckpoint(r.checkpoint);
  const pth = readPth(out) as Record<string, any>;
  assert.is(pth.epoch, ck.meta.epoch);
  const v = ck.tensors.get('student.head.last_layer.weight_v')!;
  assert.equal(Array.from(pth.student['module.head.last_layer.weight_v'].data as Float32Array), Array.from(v.data));
  assert.ok(pth.teacher['backbone.blocks.0.attn.qkv.weight'], 'teacher keys have no module. prefix');
  assert.equal(Object.keys(pth.dino_loss), ['center']);
  // args holds the config (a plain dict, where DINO has its Namespace) so the .pth can be rebuilt.
  assert.equal((pth.args as { config: unknown; step: number }).config, ck.meta.config);
  assert.is((pth.args as { config: unknown; step: number }).step, ck.meta.step);
  const groups = pth.optimizer.param_groups as { params: number[]; weight_decay: number }[];
  assert.is(groups.length, 2);
  assert.is(groups[1].weight_decay, 0);
  if (!hasTorch) {
    console.log('  (torch not installed: the torch.load cross-check did not run)');
  } else {
    const script = join(dir, 'check.py');
    writeFileSync(
      script,
      [
        'import sys, torch',
        'ck = torch.load(sys.argv[1], map_location="cpu")',
        'v = ck["student"]["module.head.last_layer.weight_v"]',
        'opt = ck["optimizer"]',
        'n = sum(len(g["params"]) for g in opt["param_groups"])',
        'import json',
        'print(json.dumps({"kind": type(ck["student"]).__name__, "epoch": ck["epoch"], "shape": list(v.shape),',
        '  "sum": float(v.double().sum()), "params": n, "keys": sorted(ck.keys())}))',
      ].join('\n'),
    );
    const run = spawnSync(TORCH, [script, out], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    const sum = Array.from(v.data).reduce((a, b) => a + b, 0);
    const got = JSON.parse(run.stdout) as {
      kind: string;
      epoch: number;
      shape: number[];
      sum: number;
      params: number;
      keys: string[];
    };
    assert.is(got.kind, 'OrderedDict');
    assert.is(got.epoch, ck.meta.epoch);
    assert.equal(got.shape, v.shape);
    assert.ok(Math.abs(got.sum - sum) < 1e-4 * Math.max(1, Math.abs(sum)), `sum ${got.sum} vs ${sum}`);
    assert.is(
      got.params,
      ck.meta.optimizerGroups.reduce((a, g) => a + g.names.length, 0),
    );
    assert.equal(got.keys, ['args', 'dino_loss', 'epoch', 'optimizer', 'student', 'teacher']);
  }
  rmSync(dir, { recursive: true, force: true });
});

test.run();
