// The diagnostics commands end to end on a tiny trained checkpoint: eval's JSON report, embed's
// safetensors file against the dataset and an in-process embedding, analyze's usage against a direct
// forward pass, the per-epoch diagnostics in the train log, and clear errors for bad arguments.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ALL_BACKENDS, getBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/check.js';
import { train } from '../../src/train/trainer.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { writePth } from '../../src/io/pth/index.js';
import { DEFAULTS, validate, type TrainConfig } from '../../src/train/config.js';
import { buildNetwork } from '../../src/train/network.js';
import { embedDataset } from '../../src/train/evaluate.js';
import { channelStats, EvalLoader, loadFashionMNIST, subset } from '../../src/data/index.js';
import { knnClassify, prototypeUsage } from '../../src/eval/index.js';
import { createBackend } from '../../src/backend/index.js';
import { noGrad, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { tensor } from '../../src/tensor/create.js';
import { concat } from '../../src/tensor/ops/layout.js';
import { checkpointKnn } from '../../src/cli/demo.js';

const wasmCase = ALL_BACKENDS.find((b) => b.name === 'wasm-relaxed-2t')!;
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'protodino-cli-'));
const ckpt = join(dir, 'run', 'checkpoint.safetensors');

const tiny: Partial<TrainConfig> = {
  arch: 'vit_cpu',
  batch_size: 4,
  subset: 16,
  local_crops_number: 2,
  out_dim: 32,
  hidden_dim: 16,
  bottleneck_dim: 8,
  max_steps: 2,
  quiet: true,
  freeze_last_layer: 0,
  eval_every_epoch: false,
};

function cliRun(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout, env: process.env });
}

function ok(args: string[]): string {
  const r = cliRun(args);
  assert.is(r.status, 0, `protodino ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function inUnit(x: unknown, what: string): void {
  assert.ok(typeof x === 'number' && x >= 0 && x <= 1, `${what} = ${x} is not in [0, 1]`);
}

/** The network the CLI rebuilds, built here from the checkpoint by hand. */
async function teacherHere() {
  const be = await getBackend(wasmCase);
  const ck = readCheckpoint(ckpt);
  const cfg = validate({ ...DEFAULTS, ...(ck.meta.config as Partial<TrainConfig>) });
  const net = buildNetwork(cfg, be, 1, cfg.seed, 0);
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of ck.tensors) if (k.startsWith('teacher.')) state.set(k.slice('teacher.'.length), v);
  net.loadStateDict(state);
  const trainSet = await loadFashionMNIST({ split: 'train' });
  // Training normalised with the statistics of the 16 images it saw.
  const stats = channelStats(
    subset(
      trainSet,
      Array.from({ length: 16 }, (_, i) => i),
    ),
  );
  return { be, net, cfg, trainSet, stats };
}

test.before(async () => {
  await train({ ...tiny, output_dir: join(dir, 'run') }, { backend: await getBackend(wasmCase) });
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('eval --all --json reports k-NN, linear probe, few-shot and long-tail groups', () => {
  const out = ok([
    'eval',
    ckpt,
    '--all',
    '--json',
    '--backend',
    'wasm',
    '--train_max',
    '300',
    '--test_max',
    '300',
    '--episodes',
    '100',
    '--linear_epochs',
    '2',
    '--long_tail',
    '10',
  ]);
  const r = JSON.parse(out.trim().split('\n').at(-1)!);
  assert.is(r.network, 'teacher');
  assert.is(r.trainRows, 300);
  assert.is(r.testRows, 300);
  assert.is(r.dim, 64);
  assert.is(r.longTailRatio, 10);
  assert.equal(r.longTailCounts.length, 10);
  assert.ok(r.longTailCounts[0] > r.longTailCounts[9] * 9, `long-tail counts ${r.longTailCounts}`);
  assert.equal(
    r.knn.results.map((x: { k: number }) => x.k),
    [10, 20, 100, 200],
  );
  assert.is(r.knn.temperature, 0.07);
  for (const x of r.knn.results) {
    inUnit(x.top1, `k-NN@${x.k} top-1`);
    inUnit(x.top5, `k-NN@${x.k} top-5`);
    assert.ok(x.top5 >= x.top1);
  }
  // A trained (even barely) ViT beats the 10% of chance by far on k-NN.
  assert.ok(r.knn.results[0].top1 > 0.2, `k-NN@10 top-1 ${r.knn.results[0].top1}`);
  inUnit(r.linear.top1, 'linear top-1');
  assert.is(r.linear.epochs, 2);
  assert.ok(Number.isFinite(r.linear.finalLoss));
  assert.is(r.fewshot.length, 2);
  for (const [i, f] of r.fewshot.entries()) {
    assert.is(f.nWay, 5);
    assert.is(f.kShot, [1, 5][i]);
    assert.is(f.episodes, 100);
    inUnit(f.accuracy, `${f.kShot}-shot accuracy`);
    assert.ok(f.ci95 > 0 && f.ci95 < 0.2, `CI ${f.ci95}`);
    assertClose([f.ci95], [(1.96 * f.std) / Math.sqrt(100)], { rtol: 1e-9 }, 'CI half-width');
  }
  for (const part of [r.knn, r.linear]) {
    assert.is(part.perClass.length, 10);
    for (const a of part.perClass) inUnit(a, 'per-class accuracy');
    inUnit(part.meanClassAccuracy, 'mean class accuracy');
    const g = part.longTail;
    assert.equal(
      [...g.head.classes, ...g.medium.classes, ...g.tail.classes].sort((a: number, b: number) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.is(g.head.samples + g.medium.samples + g.tail.samples, 300);
    for (const k of ['head', 'medium', 'tail']) inUnit(g[k].accuracy, `${k} accuracy`);
  }
  // Long-tail classes are ordered by count, so class 0 is head and class 9 tail.
  assert.ok(r.knn.longTail.head.classes.includes(0) && r.knn.longTail.tail.classes.includes(9));
});

test('eval --knn alone, in text, skips the other evaluations', () => {
  const out = ok(['eval', ckpt, '--knn', '--backend', 'wasm', '--train_max', '150', '--test_max', '50']);
  assert.match(out, /k-NN \(T 0\.07\): k=10 [\d.]+%, k=20 [\d.]+%, k=100 [\d.]+%; per-class mean [\d.]+% \(k=20\)$/m);
  assert.not.match(out, /linear probe|few-shot/);
});

test('eval --baseline pixels: k-NN on the normalised pixels, as computed in-process', async () => {
  const r = JSON.parse(
    ok([
      'eval',
      '--baseline',
      'pixels',
      '--knn',
      '--json',
      '--backend',
      'wasm',
      '--train_max',
      '300',
      '--test_max',
      '100',
    ])
      .trim()
      .split('\n')
      .at(-1)!,
  );
  assert.is(r.arch, 'pixels');
  assert.is(r.dim, 784);
  const trainSet = await loadFashionMNIST({ split: 'train' });
  const testSet = await loadFashionMNIST({ split: 'test' });
  const { mean, std } = channelStats(trainSet);
  const feats = (ds: typeof trainSet, n: number) => ({
    data: Float32Array.from(ds.images.subarray(0, n * 784), (v) => (v / 255 - mean[0]) / std[0]),
    shape: [n, 784] as [number, number],
  });
  const be = await createBackend({ kind: 'wasm', threads: 1 });
  try {
    const want = await knnClassify(
      feats(trainSet, 300),
      trainSet.labels.subarray(0, 300),
      feats(testSet, 100),
      testSet.labels.subarray(0, 100),
      { k: 20, temperature: 0.07, backend: be },
    );
    assert.is(r.knn.results.find((x: { k: number }) => x.k === 20).top1, want[0].top1);
  } finally {
    be.destroy();
  }
});

test("the demo's k-NN of a checkpoint is the figure eval prints (the training statistics normalise both splits)", async () => {
  const r = JSON.parse(
    ok(['eval', ckpt, '--knn', '--json', '--backend', 'wasm', '--train_max', '300', '--test_max', '100'])
      .trim()
      .split('\n')
      .at(-1)!,
  );
  const be = await createBackend({ kind: 'wasm' });
  try {
    assert.is(await checkpointKnn(ckpt, be, 300, 100), r.knn.results.find((x: { k: number }) => x.k === 20).top1);
  } finally {
    be.destroy();
  }
});

test('embed writes features [N, D] F32 and the dataset labels I32, equal to an in-process embedding', async () => {
  const out = join(dir, 'feat.safetensors');
  ok(['embed', ckpt, '--out', out, '--split', 'train', '--max', '40', '--backend', 'wasm']);
  const f = readSafetensors(out, { verify: true });
  const feats = f.tensors.get('features')!,
    labels = f.tensors.get('labels')!;
  assert.is(feats.dtype, 'F32');
  assert.equal(feats.shape, [40, 64]);
  assert.is(labels.dtype, 'I32');
  assert.equal(labels.shape, [40]);
  const { net, trainSet, stats } = await teacherHere();
  try {
    assert.equal(Array.from(labels.data as Int32Array), Array.from(trainSet.labels.subarray(0, 40)));
    const here = await embedDataset(net, trainSet, { max: 40, mean: stats.mean, std: stats.std });
    assertClose(feats.data as Float32Array, here.features.data, { rtol: 1e-3, atol: 1e-4 }, 'features');
  } finally {
    net.dispose();
  }
  assert.is(f.metadata.split, 'train');
});

test('analyze --dataset reports usage equal to a direct forward pass at the teacher temperature', async () => {
  const out = ok([
    'analyze',
    ckpt,
    '--dataset',
    'fashion-mnist',
    '--max',
    '200',
    '--json',
    '--backend',
    'wasm',
    '--rule',
    'greedy',
  ]);
  const r = JSON.parse(out.trim().split('\n').at(-1)!);
  assert.is(r.prototypes, 32);
  const { net, cfg, trainSet, stats } = await teacherHere();
  let direct;
  try {
    net.eval();
    const ds = subset(
      trainSet,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const parts: Tensor[] = [];
    for (const b of new EvalLoader({ dataset: ds, batchSize: 64, mean: stats.mean, std: stats.std })) {
      parts.push(noGrad(() => tidy(() => net.forward(tensor(b.images, [b.size, 1, 28, 28], net.backend)))));
    }
    const logits = noGrad(() => concat(parts, 0));
    for (const p of parts) p.dispose();
    direct = await prototypeUsage(logits, { temperature: cfg.teacher_temp });
    logits.dispose();
  } finally {
    net.dispose();
  }
  assert.is(r.usage.samples, 200);
  assert.is(r.usage.temperature, 0.04);
  assert.is(r.usage.used, direct.used);
  assert.equal(r.usage.argmaxCounts, Array.from(direct.argmaxCounts));
  assertClose(
    [r.usage.entropy, r.usage.entropyFraction],
    [direct.entropy, direct.entropyFraction],
    { rtol: 1e-4, atol: 1e-5 },
    'entropy',
  );
  assert.ok(r.usage.used >= 1 && r.usage.used <= 32);
  const text = ok(['analyze', ckpt, '--dataset', 'fashion-mnist', '--max', '50', '--backend', 'wasm']);
  assert.match(
    text,
    /usage over 50 images of fashion-mnist\/train .* of 32 prototypes are ever the argmax; marginal entropy/,
  );
});

test('the train command logs unique prototypes, usage and k-NN in each epoch record', () => {
  const run = join(dir, 'cli-run');
  const args = [
    'train',
    '--arch',
    'vit_cpu',
    '--batch_size',
    '4',
    '--subset',
    '16',
    '--local_crops_number',
    '2',
    '--out_dim',
    '32',
    '--hidden_dim',
    '16',
    '--bottleneck_dim',
    '8',
    '--max_steps',
    '2',
    '--quiet',
    '--backend',
    'wasm',
    '--eval_train_max',
    '100',
    '--eval_test_max',
    '40',
    '--output_dir',
    run,
  ];
  const out = ok(args);
  assert.match(
    out,
    /^epoch 1: unique \d+ \(ε 0\.025\) \d+ \(ε 0\.1, euclidean\) of 32; usage \d+ used, entropy [\d.]+% of max; k-NN@20 top-1 [\d.]+%/m,
  );
  const epochRec = readFileSync(join(run, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.event === 'epoch');
  assert.ok(epochRec, 'no epoch record');
  assert.equal(Object.keys(epochRec.unique_prototypes), ['0.025', '0.1']);
  assert.is(epochRec.eps_metric, 'euclidean');
  assert.not.ok('unique_prototypes_cosine' in epochRec, 'cosine counts without --eps_metric cosine');
  // --eps_metric cosine: the same run's counts at ε = 1 − cos, a looser rule at equal ε (1 − ε < 1 − ε²/2).
  const cosRun = join(dir, 'cli-run-cosine');
  const cosOut = ok([...args.slice(0, -1), cosRun, '--eps_metric', 'cosine']);
  assert.match(cosOut, /^epoch 1: unique \d+ \(ε 0\.025\) \d+ \(ε 0\.1, cosine\) of 32;/m);
  const cosRec = readFileSync(join(cosRun, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.event === 'epoch');
  assert.is(cosRec.eps_metric, 'cosine');
  assert.equal(cosRec.unique_prototypes, epochRec.unique_prototypes, 'the Euclidean counts stay under their key');
  for (const e of ['0.025', '0.1'])
    assert.ok(cosRec.unique_prototypes_cosine[e] <= cosRec.unique_prototypes[e], `cosine count at ε ${e}`);
  assert.ok(
    epochRec.unique_prototypes['0.1'] <= epochRec.unique_prototypes['0.025'] &&
      epochRec.unique_prototypes['0.025'] <= 32,
  );
  assert.ok(epochRec.usage_used >= 1 && epochRec.usage_used <= 32);
  inUnit(epochRec.usage_entropy_fraction, 'usage entropy fraction');
  inUnit(epochRec.knn_top1, 'k-NN top-1');
  assert.is(epochRec.eval_train_rows, 100);
  assert.is(epochRec.eval_test_rows, 40);
  // Off: the record holds the loss only.
  const off = join(dir, 'cli-off');
  const out2 = ok([...args.slice(0, -1), off, '--eval_every_epoch', 'false']);
  assert.not.match(out2, /^epoch 1:/m);
  const rec2 = readFileSync(join(off, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.event === 'epoch');
  assert.is(rec2.unique_prototypes, undefined);
  assert.ok(Number.isFinite(rec2.loss));
  assert.match(
    ok(['train', '--help']),
    /--eval_every_epoch <bool> +unique prototypes, usage and k-NN after each epoch \(default true\)\n\s+--eval_train_max <int> .*\(default 5000\)\n\s+--eval_test_max <int> .*\(default 1000\)/,
  );
});

test('bad arguments are refused with clear messages', () => {
  // A real DINO checkpoint.pth, but with no protodino config in args (upstream DINO pickles a
  // Namespace there): the network cannot be rebuilt from it. A file that is no .pth at all is refused too.
  const pth = join(dir, 'model.pth');
  const w = { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) };
  writePth(pth, { student: { 'module.x': w }, teacher: { x: w }, epoch: 1 });
  const junk = join(dir, 'junk.pth');
  writeFileSync(junk, 'not really');
  const cases: [string[], RegExp][] = [
    [['eval'], /eval: give exactly one protodino checkpoint/],
    [['eval', join(dir, 'missing.safetensors')], /eval: no such file/],
    [['eval', '--baseline', 'pca'], /--baseline must be pixels, got 'pca'/],
    [['eval', ckpt, '--baseline', 'pixels'], /give no checkpoint with it/],
    [['eval', pth], /eval: .*model\.pth: is a PyTorch checkpoint without protodino's training config in 'args'/],
    [
      ['embed', junk, '--out', join(dir, 'y.safetensors')],
      /embed: .*junk\.pth: cannot be read as a PyTorch checkpoint/,
    ],
    [['eval', ckpt, '--backend', 'cuda'], /eval: --backend must be wasm, webgpu, auto, got 'cuda'/],
    [['report', ckpt, '--backend', 'cuda'], /report: --backend must be wasm, webgpu, auto, got 'cuda'/],
    [['demo', '--quick', '--backend', 'cuda'], /demo: --backend must be wasm, webgpu, auto, got 'cuda'/],
    [['demo', '--budget=0'], /demo: --budget must be a positive number/],
    [['eval', ckpt, '--train_max', '0'], /--train_max must be an integer ≥ 1, got '0'/],
    [['eval', ckpt, '--episodes', '50'], /--episodes must be an integer ≥ 100/],
    [['eval', ckpt, '--long_tail', '0.5'], /--long_tail is an imbalance ratio ≥ 1/],
    [
      ['eval', ckpt, '--knn', '--train_max', '5', '--backend', 'wasm'],
      /k-NN needs at least 10 training images, have 5/,
    ],
    [['eval', ckpt, '--bogus'], /Unknown option '--bogus'/],
    [['embed', ckpt], /embed: --out FILE.safetensors is required/],
    [['embed', ckpt, '--out', join(dir, 'x.safetensors'), '--split', 'val'], /--split must be train or test/],
    [
      ['analyze', pth, '--dataset', 'fashion-mnist'],
      /analyze: .*model\.pth: is a PyTorch checkpoint without protodino's training config in 'args'/,
    ],
    [['analyze', ckpt, '--max', '10'], /--max and --split go with --dataset/],
    [
      ['analyze', ckpt, '--dataset', 'cifar10', '--backend', 'wasm'],
      /--dataset must be fashion-mnist or the run's own dataset/,
    ],
    [['train', '--eval_train_max', '0'], /--eval_train_max: must be a positive integer/],
    [['train', '--eval_every_epoch=maybe'], /--eval_every_epoch: expects true or false/],
  ];
  for (const [args, msg] of cases) {
    const r = cliRun(args);
    assert.is.not(r.status, 0, `protodino ${args.join(' ')} succeeded`);
    assert.match(r.stderr, msg, `protodino ${args.join(' ')}: ${r.stderr}`);
  }
  assert.not.ok(existsSync(join(dir, 'x.safetensors')));
});

test.run();
