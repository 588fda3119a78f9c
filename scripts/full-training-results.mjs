// Collects full-training runs into docs/experiments/full-training.json: each run's config, its k-NN
// curve from log.jsonl (per epoch, on the epoch evaluation's subset), wall time from the log's
// timestamps, and the final teacher's k-NN on the full 60k bank / 10k test set, evaluated by
// `protodino eval` itself. Run after `npm run build`:
//
//   node scripts/full-training-results.mjs --out docs/experiments/full-training.json \
//     --headline runs/recipe-s0 runs/recipe-s0 runs/recipe-s1 runs/recipe-s2 [--runs other dirs...]
//
// --headline names the run whose checkpoint is the committed model first, then every seed of the
// recipe (the spread). Existing keys of the output file that this script does not write are kept.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli/main.js');

function parse(argv) {
  const o = { out: null, headline: [], runs: [] };
  let list = null;
  for (const a of argv) {
    if (a === '--out') list = 'out';
    else if (a === '--headline') list = 'headline';
    else if (a === '--runs') list = 'runs';
    else if (list === 'out') {
      o.out = a;
      list = null;
    } else if (list) o[list].push(a);
    else throw new Error(`full-training-results: unexpected argument '${a}'`);
  }
  if (!o.out) throw new Error('full-training-results: --out FILE is required');
  return o;
}

function readLog(dir) {
  const path = join(dir, 'log.jsonl');
  if (!existsSync(path)) throw new Error(`full-training-results: ${path} does not exist`);
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** Wall seconds spent training: the sum of each start/resume segment's span, so pauses between sessions do not count. */
function wallSeconds(records) {
  let total = 0,
    segStart = null,
    last = null;
  for (const r of records) {
    if (typeof r.time !== 'number') continue;
    if (r.event === 'start' || r.event === 'resume') {
      if (segStart !== null && last !== null) total += last - segStart;
      segStart = r.time;
    }
    last = r.time;
  }
  if (segStart !== null && last !== null) total += last - segStart;
  return total;
}

function fullKnn(ckpt) {
  const r = spawnSync(
    process.execPath,
    [cli, 'eval', ckpt, '--knn', '--json', '--train_max', '60000', '--test_max', '10000', '--backend', 'wasm'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`protodino eval ${ckpt} failed: ${r.stderr}`);
  const rep = JSON.parse(r.stdout.trim().split('\n').at(-1));
  return rep.knn.results.find((x) => x.k === 20).top1;
}

function summarise(dir) {
  const records = readLog(dir);
  const start = records.find((r) => r.event === 'start');
  if (!start) throw new Error(`full-training-results: ${dir}/log.jsonl has no start record`);
  const epochs = records.filter((r) => r.event === 'epoch' && typeof r.knn_top1 === 'number');
  const lastStep = records.filter((r) => typeof r.step === 'number').at(-1)?.step ?? 0;
  const ckpt = join(dir, 'checkpoint.safetensors');
  return {
    run: dir,
    seed: start.config.seed,
    preset: start.config.preset,
    config: start.config,
    backend: start.backend,
    steps: lastStep,
    wall_minutes: wallSeconds(records) / 60,
    curve: epochs.map((e) => ({
      epoch: e.epoch,
      step: e.step,
      knn_top1: e.knn_top1,
      bank: e.eval_train_rows,
      queries: e.eval_test_rows,
      loss: e.loss,
      unique_0025: e.unique_prototypes?.['0.025'],
      usage_used: e.usage_used,
      ...(typeof e.time === 'number' ? { time: e.time } : {}),
    })),
    knn_top1_full: fullKnn(ckpt),
  };
}

const o = parse(process.argv.slice(2));
const prev = existsSync(o.out) ? JSON.parse(readFileSync(o.out, 'utf8')) : {};
const seen = new Map();
const get = (dir) => {
  if (!seen.has(dir)) seen.set(dir, summarise(dir));
  return seen.get(dir);
};
const out = {
  ...prev,
  cpu: cpus()[0]?.model ?? 'unknown',
  protocol: 'weighted k-NN, k = 20, T = 0.07, cosine, teacher backbone features; full 60k bank / 10k test',
};
if (o.headline.length) {
  const [model, ...seeds] = o.headline.map(get);
  const xs = (seeds.length ? seeds : [model]).map((r) => r.knn_top1_full);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  out.headline = {
    preset: model.preset,
    run: model.run,
    seed: model.seed,
    knn_top1: model.knn_top1_full,
    steps: model.steps,
    wall_minutes: model.wall_minutes,
    seeds: (seeds.length ? seeds : [model]).map((r) => r.seed),
    knn_top1_mean: mean,
    knn_top1_std: std,
  };
}
out.runs = [...new Set([...o.headline, ...o.runs])].map(get);
writeFileSync(o.out, JSON.stringify(out, null, 2) + '\n');
console.log(
  '| run | seed | steps | wall min | k-NN per epoch (subset) | k-NN full 60k/10k |\n|---|---|---|---|---|---|',
);
for (const r of out.runs) {
  console.log(
    `| ${r.run} | ${r.seed} | ${r.steps} | ${r.wall_minutes.toFixed(1)} | ${r.curve.map((c) => (100 * c.knn_top1).toFixed(1)).join(' ')} | ${(100 * r.knn_top1_full).toFixed(2)} |`,
  );
}
