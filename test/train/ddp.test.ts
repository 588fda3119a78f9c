// scripts/torch-twin/train_ddp.py against itself and against protodino: the same 20 steps split over 2
// gloo processes at batch B/2 each and run by 1 process at batch B, from one exported protodino
// checkpoint, must give the same run; the 2-process result must come back into protodino (embed,
// analyze, train --init_from); bad input must stop before a step. Needs Debian's python3-torch
// (scripts/setup.sh installs it): without it these tests fail, they do not skip.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { importDinoPth, type ImportedDinoCheckpoint } from '../../src/io/import-dino.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { countUniquePrototypes } from '../../src/eval/index.js';
import { createBackend } from '../../src/backend/index.js';

const PY = '/usr/bin/python3';
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'scripts', 'torch-twin', 'train_ddp.py'))) {
    const up = dirname(d);
    if (up === d) throw new Error('scripts/torch-twin/train_ddp.py not found above the test');
    d = up;
  }
  return d;
}
const ROOT = repoRoot();
const TWIN = join(ROOT, 'scripts', 'torch-twin');

const torchCheck = spawnSync(PY, ['-c', 'import torch, torch.distributed; assert torch.distributed.is_available()'], {
  encoding: 'utf8',
});
if (torchCheck.status !== 0)
  throw new Error(
    `the DDP tests need PyTorch for ${PY} (Debian's python3-torch; scripts/setup.sh installs it):\n${torchCheck.stderr}`,
  );

const dir = mkdtempSync(join(tmpdir(), 'protodino-ddp-'));
const flagsJson = join(dir, 'flags.json');
// Spawned processes read the flag table from this build, not from whatever dist/ the repo holds.
writeFileSync(
  flagsJson,
  spawnSync(process.execPath, [cli, 'train', '--print-flags-json'], { encoding: 'utf8' }).stdout,
);
const ENV = { ...process.env, OMP_NUM_THREADS: '1', PROTODINO_FLAGS_JSON: flagsJson };

function protodino(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: ENV });
}

function torchrun(nproc: number, args: string[]): SpawnSyncReturns<string> {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  return spawnSync(
    PY,
    [
      join(TWIN, 'torchrun.py'),
      `--nproc_per_node=${nproc}`,
      '--master_addr=127.0.0.1',
      `--master_port=${port}`,
      join(TWIN, 'train_ddp.py'),
      ...args,
    ],
    { encoding: 'utf8', env: ENV, timeout: 240_000 },
  );
}

// A tiny recipe with BatchNorm in backbone and head (so SyncBatchNorm matters), KoLeo-proto on.
const RECIPE = [
  '--arch', 'resnet_cpu', '--use_bn_in_head', '--out_dim', '64', '--subset', '64', '--batch_size', '16',
  '--local_crops_number', '2', '--epochs', '8', '--koleo_proto', '0.1', '--log_every', '1', '--quiet',
]; // prettier-ignore
const STEPS = 20;
let init = '';
let startStep = 0;

test('setup: a one-step protodino run of the recipe, exported with export --to pth', () => {
  const out = join(dir, 'init');
  const r = protodino([
    'train',
    ...RECIPE,
    '--max_steps',
    '1',
    '--no-eval_every_epoch',
    '--output_dir',
    out,
    '--backend',
    'wasm',
  ]);
  assert.is(r.status, 0, r.stderr);
  init = join(dir, 'init.pth');
  const e = protodino(['export', join(out, 'checkpoint.safetensors'), '--to', 'pth', '--out', init]);
  assert.is(e.status, 0, e.stderr);
  // DINO restarts at the start of the epoch it saved: 4 batches of 16 in 64 images per epoch.
  startStep = (importDinoPth(init) as ImportedDinoCheckpoint).epoch * 4;
});

function stepLosses(logDir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(join(logDir, 'log.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { event: string; step: number; loss: number };
    if (r.event === 'step') out.set(r.step, r.loss);
  }
  return out;
}

const relDiff = (a: Float32Array, b: Float32Array): { num: number; den: number; maxAbs: number } => {
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { num, den, maxAbs };
};

test('2 processes at batch B/2 = 1 process at batch B: loss step by step, teacher, centre', () => {
  const args = (out: string) => [...RECIPE, '--max_steps', String(startStep + STEPS), '--init_from', init,
    '--output_dir', out, '--device', 'cpu']; // prettier-ignore
  const t0 = performance.now();
  // Only the 2-process run evaluates after each epoch (on rank 0, in eval mode: no state changes), so
  // its log has the epoch records protodino report draws.
  const two = torchrun(2, [...args(join(dir, 'w2')), '--eval_train_max', '64', '--eval_test_max', '64']);
  const t1 = performance.now();
  assert.is(two.status, 0, two.stderr);
  const one = torchrun(1, [...args(join(dir, 'w1')), '--no-eval_every_epoch']);
  const t2 = performance.now();
  assert.is(one.status, 0, one.stderr);
  console.log(`  (2 processes: ${((t1 - t0) / 1000).toFixed(1)} s, 1 process: ${((t2 - t1) / 1000).toFixed(1)} s)`);

  const l1 = stepLosses(join(dir, 'w1'));
  const l2 = stepLosses(join(dir, 'w2'));
  assert.is(l1.size, STEPS, 'one loss per step');
  assert.equal([...l2.keys()], [...l1.keys()]);
  for (const [s, v] of l1) {
    const rel = Math.abs(l2.get(s)! - v) / Math.abs(v);
    assert.ok(rel < 1e-5, `step ${s}: loss ${l2.get(s)} with 2 processes, ${v} with 1 (relative ${rel})`);
  }

  const a = importDinoPth(join(dir, 'w1', 'checkpoint.pth')) as ImportedDinoCheckpoint;
  const b = importDinoPth(join(dir, 'w2', 'checkpoint.pth')) as ImportedDinoCheckpoint;
  // The Linear biases right before a BatchNorm have a zero gradient in exact arithmetic (the norm
  // subtracts them out): what they get is rounding noise, which AdamW scales up to about ±lr a step,
  // so they are random walks in both runs, bounded by STEPS·lr, and change no output. Everything else
  // must agree to float32 reduction-order tolerance: the gradient all-reduce and the synchronised
  // BatchNorm sums add in another order than one process does, ~1e-7 per step.
  const preBn = new Set(['head.mlp.0.bias', 'head.mlp.3.bias']);
  const lrMax = (0.0005 * 16) / 256;
  let num = 0;
  let den = 0;
  for (const [k, t] of a.teacher) {
    const u = b.teacher.get(k);
    assert.ok(u, `teacher ${k} missing from the 2-process checkpoint`);
    const d = relDiff(u.data, t.data);
    if (preBn.has(k)) {
      assert.ok(d.maxAbs <= 2 * STEPS * lrMax, `${k}: moved ${d.maxAbs} apart, more than 2·steps·lr`);
      continue;
    }
    if (k.endsWith('num_batches_tracked')) {
      assert.equal(Array.from(u.data), Array.from(t.data), k);
      continue;
    }
    num += d.num;
    den += d.den;
  }
  const rel = Math.sqrt(num / den);
  console.log(`  (teacher relative difference ${rel.toExponential(2)} over ${a.teacher.size} tensors)`);
  assert.ok(rel < 1e-5, `teacher weights differ by ${rel} relative (tolerance 1e-5)`);
  const c = relDiff(b.center!.data, a.center!.data);
  assert.ok(Math.sqrt(c.num / c.den) < 1e-5, `centre differs by ${Math.sqrt(c.num / c.den)} relative`);
  assert.is(a.epoch, b.epoch);
});

test('the 2-process checkpoint back in protodino: embed = the PyTorch teacher, analyze, report, train --init_from', () => {
  const ck = join(dir, 'w2', 'checkpoint.pth');
  const ours = join(dir, 'embed-protodino.safetensors');
  const theirs = join(dir, 'embed-torch.safetensors');
  const e = protodino(['embed', ck, '--out', ours, '--max', '64', '--backend', 'wasm']);
  assert.is(e.status, 0, e.stderr);
  const p = spawnSync(PY, [join(TWIN, 'embed.py'), ck, '--out', theirs, '--max', '64'], { encoding: 'utf8', env: ENV });
  assert.is(p.status, 0, p.stderr);
  const x = readSafetensors(ours).tensors.get('features')!;
  const y = readSafetensors(theirs).tensors.get('features')!;
  assert.equal(x.shape, y.shape);
  const d = relDiff(x.data as Float32Array, y.data as Float32Array);
  const rel = Math.sqrt(d.num / d.den);
  console.log(`  (embed: protodino vs PyTorch teacher features, relative ${rel.toExponential(2)})`);
  assert.ok(rel < 1e-4, `features differ by ${rel} relative`);

  const an = protodino(['analyze', ck, '--dataset', 'fashion-mnist', '--max', '64', '--backend', 'wasm']);
  assert.is(an.status, 0, an.stderr);
  assert.match(an.stdout, /^prototypes: 64 x 64 \(teacher\)/m);
  assert.match(an.stdout, /usage over 64 images of fashion-mnist\/train .* of 64 prototypes are ever the argmax/);

  const html = join(dir, 'report.html');
  const rep = protodino(['report', join(dir, 'w2'), '--out', html, '--no-gallery']);
  assert.is(rep.status, 0, rep.stderr);
  const page = readFileSync(html, 'utf8');
  // The results table's grouped header: "unique prototypes" over one column per ε.
  assert.match(page, /unique prototypes/);
  assert.match(page, /ε 0\.025/);
  assert.ok(existsSync(join(dir, 'report.unique.svg')), 'the unique-prototypes plot, from the epoch records');
  assert.ok(existsSync(join(dir, 'report.knn.svg')), 'the k-NN plot, from the epoch records');

  const out = join(dir, 'back');
  const tr = protodino(['train', ...RECIPE, '--init_from', ck, '--max_steps', String(startStep + STEPS + 1),
    '--no-eval_every_epoch', '--output_dir', out, '--backend', 'wasm']); // prettier-ignore
  assert.is(tr.status, 0, tr.stderr);
  assert.ok(existsSync(join(out, 'checkpoint.safetensors')));
});

test('--resume continues from checkpoint.pth at its step: the same teacher as the run never stopped', () => {
  const ddp = (out: string, extra: string[]) =>
    spawnSync(PY, [join(TWIN, 'train_ddp.py'), ...RECIPE, '--init_from', init, '--no-eval_every_epoch',
      '--device', 'cpu', '--output_dir', out, ...extra], { encoding: 'utf8', env: ENV, timeout: 120_000 }); // prettier-ignore
  const end = String(startStep + 6);
  const straight = ddp(join(dir, 'straight'), ['--max_steps', end]);
  assert.is(straight.status, 0, straight.stderr);
  // Stopped mid-epoch (save_every 1 leaves the last step's checkpoint), then resumed to the same end.
  const part = ddp(join(dir, 'part'), ['--max_steps', String(startStep + 3), '--save_every', '1']);
  assert.is(part.status, 0, part.stderr);
  cpSync(join(dir, 'part'), join(dir, 'part-copy-src'), { recursive: true });
  const rest = ddp(join(dir, 'part'), ['--max_steps', end, '--resume']);
  assert.is(rest.status, 0, rest.stderr);
  assert.match(rest.stdout, new RegExp(`trained 3 steps \\(to step ${end}\\)`));
  // --resume alone (no recipe flags) takes the config the checkpoint saved; --max_steps still overrides.
  cpSync(join(dir, 'part-copy-src'), join(dir, 'bare'), { recursive: true });
  const bare = spawnSync(
    PY,
    [join(TWIN, 'train_ddp.py'), '--device', 'cpu', '--output_dir', join(dir, 'bare'), '--resume', '--max_steps', end],
    { encoding: 'utf8', env: ENV, timeout: 120_000 },
  );
  assert.is(bare.status, 0, bare.stderr);
  const a = importDinoPth(join(dir, 'straight', 'checkpoint.pth')) as ImportedDinoCheckpoint;
  for (const run of ['part', 'bare']) {
    const b = importDinoPth(join(dir, run, 'checkpoint.pth')) as ImportedDinoCheckpoint;
    for (const [k, t] of a.teacher)
      assert.equal(Array.from(b.teacher.get(k)!.data), Array.from(t.data), `${run}: teacher ${k}`);
    assert.equal(Array.from(b.center!.data), Array.from(a.center!.data), `${run}: centre`);
  }
});

// train_ddp.py exits 2 on refused input; torchrun reports a failed worker with its own exit 1.
test('the trainer logs protodino’s greedy unique-prototype count; its blocked KoLeo-proto is the K×K one', async () => {
  // Near-duplicate rows at several distances, so the count depends on ε and on the scan order.
  const K = 300;
  const D = 16;
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const base = Array.from({ length: 60 }, () => Array.from({ length: D }, rand));
  const rows = Array.from({ length: K }, (_, i) =>
    base[i % 60].map((v) => v + [0, 0.003, 0.02, 0.06, 0.3][i % 5] * rand()),
  );
  const file = join(dir, 'protos.json');
  writeFileSync(file, JSON.stringify(rows));
  const py = [
    'import sys, json, torch',
    `sys.path.insert(0, ${JSON.stringify(TWIN)})`,
    'import dist_ops, train as twin',
    `w = torch.tensor(json.load(open(${JSON.stringify(file)})), dtype=torch.float32)`,
    'print(json.dumps({"unique": dist_ops.unique_greedy(w, [0.025, 0.1], block=64),',
    '  "koleo_blocked": float(dist_ops.koleo_blocked(w, block=64)), "koleo_full": float(twin.koleo(w))}))',
  ].join('\n');
  const r = spawnSync(PY, ['-c', py], { encoding: 'utf8', env: ENV });
  assert.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { unique: Record<string, number>; koleo_blocked: number; koleo_full: number };
  const be = await createBackend({ kind: 'wasm' });
  try {
    const want = await countUniquePrototypes(
      { data: Float32Array.from(rows.flat()), shape: [K, D] },
      { eps: [0.025, 0.1], rule: 'greedy', backend: be },
    );
    const counts = Object.fromEntries(want.perEps.map((e) => [String(e.eps), e.greedy!.unique]));
    assert.ok(
      counts['0.025'] < K && counts['0.1'] < counts['0.025'],
      `a matrix that tests something: ${JSON.stringify(counts)}`,
    );
    assert.equal(got.unique, counts);
  } finally {
    be.destroy();
  }
  assert.ok(Math.abs(got.koleo_blocked - got.koleo_full) <= 1e-6 * Math.abs(got.koleo_full), JSON.stringify(got));
});

function refused(r: SpawnSyncReturns<string>, pattern: RegExp, status = 2): void {
  assert.is(r.status, status, `exit ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.not.match(r.stderr, /^step \d+/m, 'no step ran');
}

test('bad input stops before any step: another architecture, an unknown flag, a batch the world size does not divide', () => {
  const ddp = (args: string[]) =>
    spawnSync(PY, [join(TWIN, 'train_ddp.py'), ...args], { encoding: 'utf8', env: ENV, timeout: 120_000 });
  const base = [...RECIPE.filter((a) => a !== '--quiet'), '--max_steps', '40', '--device', 'cpu'];
  refused(
    ddp([...base, '--arch', 'resnet18', '--init_from', init, '--output_dir', join(dir, 'bad1')]),
    /train_ddp: .*init\.pth: its student is not the network --arch resnet18 .*\(another architecture\?\)/,
  );
  refused(
    ddp([...base, '--bogus_flag', '3', '--output_dir', join(dir, 'bad2')]),
    /train_ddp: --bogus_flag: unknown flag; known flags: --preset --arch/,
  );
  refused(
    torchrun(2, [...base, '--batch_size', '15', '--output_dir', join(dir, 'bad3')]),
    /--batch_size 15 is not divisible by the world size 2/,
    1,
  );
  for (const d of ['bad1', 'bad2', 'bad3'])
    assert.not.ok(existsSync(join(dir, d, 'checkpoint.pth')), `${d} saved nothing`);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
