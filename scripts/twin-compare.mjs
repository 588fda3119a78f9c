#!/usr/bin/env node
// protodino vs its PyTorch twin (scripts/torch-twin/train.py): for each seed, train the same recipe
// with both engines, save checkpoints at the chosen steps, evaluate every checkpoint with the same
// `protodino eval --knn` code, and write a table of k-NN top-1 (mean ± std over seeds).
//
//   node scripts/twin-compare.mjs [--seeds 0,1,2] [--points 0,100,200,300] [--out runs/twin-compare]
//       [--threads 1] [--init protodino|torch] [--data_stream protodino|independent]
//       [--train_max 10000] [--test_max 2000] [--python /usr/bin/python3] [--nice 10] [--no-check]
//       [-- protodino train flags]
//
// Everything after `--` goes to `protodino train` (the recipe: --epochs, --lr, --koleo_proto, ...);
// the twin reads the recipe back from protodino's log.jsonl, so both train the same config. The last
// point is the number of steps; a point 0 evaluates the initial weights. protodino reaches each point
// by resuming its own checkpoint (bit-exact: the resumed run is the uninterrupted one), the twin saves
// at each point in one run.
// --init protodino (default): the twin starts from protodino's step-0 weights of that seed;
// --init torch: from torch's RNG with protodino's init scheme.
// --data_stream protodino (default): the twin draws the very crops protodino draws;
// independent: other random streams, the same distribution.
// Before training, a self-check: the twin's copy of protodino's defaults, and one training batch
// made by both pipelines (must be bit-identical with --data_stream protodino).
// After training, scripts/torch-twin/diff.py measures each seed's pair at the last point: the largest
// loss difference over the common logged steps and the largest parameter / running-statistic
// difference (meaningful for paired runs, where init and data are the same).
// Every child runs under `nice -n N` (--nice), so a comparison yields to the machine's other work.
// Resumable: finished pieces (checkpoints, evaluations) are kept and skipped when run again.
// Results: OUT/results.json and OUT/results.md.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(new URL('..', import.meta.url).pathname);
const cli = join(root, 'dist/src/cli/main.js');
const side = join(root, 'scripts/torch-twin/protodino-side.mjs');
const twin = join(root, 'scripts/torch-twin/train.py');
const diffPy = join(root, 'scripts/torch-twin/diff.py');

const dash = process.argv.indexOf('--');
const own = dash >= 0 ? process.argv.slice(2, dash) : process.argv.slice(2);
const recipe = dash >= 0 ? process.argv.slice(dash + 1) : [];
const { values } = parseArgs({
  args: own,
  strict: true,
  options: {
    seeds: { type: 'string', default: '0,1,2' },
    points: { type: 'string', default: '0,100,200,300' },
    out: { type: 'string', default: 'runs/twin-compare' },
    threads: { type: 'string', default: '1' },
    init: { type: 'string', default: 'protodino' },
    data_stream: { type: 'string', default: 'protodino' },
    train_max: { type: 'string', default: '10000' },
    test_max: { type: 'string', default: '2000' },
    python: { type: 'string', default: '/usr/bin/python3' },
    nice: { type: 'string', default: '10' },
    'no-check': { type: 'boolean', default: false },
  },
});
const list = (s, what) =>
  s
    .split(',')
    .filter((x) => x.trim() !== '')
    .map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${what}: '${x}' is not a non-negative integer`);
      return n;
    });
const seeds = list(values.seeds, 'seeds');
const points = [...new Set(list(values.points, 'points'))].sort((a, b) => a - b);
if (points.length === 0 || points.at(-1) < 1)
  throw new Error('--points: give at least one step ≥ 1 (0 adds the initial weights)');
if (!/^-?\d+$/.test(values.nice)) throw new Error(`--nice must be an integer, got '${values.nice}'`);
if (!['protodino', 'torch'].includes(values.init))
  throw new Error(`--init must be protodino or torch, got '${values.init}'`);
if (!['protodino', 'independent'].includes(values.data_stream))
  throw new Error(`--data_stream must be protodino or independent, got '${values.data_stream}'`);
for (const f of ['--seed', '--max_steps', '--output_dir', '--resume', '--threads', '--backend']) {
  if (recipe.some((a) => a === f || a.startsWith(`${f}=`)))
    throw new Error(`${f} is set by the driver; leave it out of the recipe after --`);
}
const out = resolve(values.out);
mkdirSync(out, { recursive: true });
if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build first`);

function run(cmd, args, { capture = false } = {}) {
  const t0 = performance.now();
  process.stderr.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const r = spawnSync('nice', ['-n', values.nice, cmd, ...args], {
    stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: {
      ...process.env,
      OMP_NUM_THREADS: values.threads,
      OPENBLAS_NUM_THREADS: values.threads,
      MKL_NUM_THREADS: values.threads,
    },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  return { stdout: r.stdout ?? '', seconds: (performance.now() - t0) / 1000 };
}

function readJsonl(path) {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function evalKnn(ckpt) {
  const cache = `${ckpt}.knn.json`;
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, 'utf8'));
  const { stdout } = run(
    'node',
    [
      cli,
      'eval',
      ckpt,
      '--knn',
      '--train_max',
      values.train_max,
      '--test_max',
      values.test_max,
      '--backend',
      'wasm',
      '--json',
    ],
    { capture: true },
  );
  const rep = JSON.parse(stdout.trim().split('\n').at(-1));
  const res = {
    step: rep.step,
    top1: Object.fromEntries(rep.knn.results.map((r) => [r.k, r.top1])),
    trainRows: rep.trainRows,
    testRows: rep.testRows,
  };
  writeFileSync(cache, `${JSON.stringify(res)}\n`);
  return res;
}

const lossAt = (log, step) => log.find((r) => r.event === 'step' && r.step === step)?.loss;

const perSeed = [];
const timing = [];
for (const seed of seeds) {
  const dir = join(out, `seed${seed}`);
  const pd = join(dir, 'protodino');
  const tw = join(dir, 'torch');
  mkdirSync(pd, { recursive: true });
  let pdSeconds = 0,
    twSeconds = 0;
  // protodino, point by point (each run resumes the previous checkpoint); step 0 is done below.
  for (const p of points.filter((q) => q > 0)) {
    const ck = join(pd, `checkpoint-step${p}.safetensors`);
    if (existsSync(ck)) continue;
    pdSeconds += run('node', [
      cli,
      'train',
      ...recipe,
      '--seed',
      String(seed),
      '--max_steps',
      String(p),
      '--output_dir',
      pd,
      '--resume',
      '--threads',
      values.threads,
      '--backend',
      'wasm',
      '--eval_every_epoch',
      'false',
      '--quiet',
    ]).seconds;
    copyFileSync(join(pd, 'checkpoint.safetensors'), ck);
  }
  const config = join(pd, 'log.jsonl');
  if (!values['no-check'] && seed === seeds[0]) {
    // Self-check: the twin's defaults are protodino's, and both pipelines make the same batch.
    const nodeDefaults = JSON.parse(run('node', [side, 'defaults'], { capture: true }).stdout);
    const pyDefaults = JSON.parse(
      run(
        values.python,
        [
          '-c',
          `import sys; sys.path.insert(0, ${JSON.stringify(join(root, 'scripts/torch-twin'))}); import json, train; print(json.dumps(train.DEFAULTS))`,
        ],
        { capture: true },
      ).stdout,
    );
    const canon = (o) =>
      JSON.stringify(
        Object.keys(o)
          .sort()
          .map((k) => [k, o[k]]),
      );
    if (canon(nodeDefaults) !== canon(pyDefaults)) {
      throw new Error(
        `self-check: scripts/torch-twin/train.py DEFAULTS differ from protodino's:\n${canon(pyDefaults)}\n${canon(nodeDefaults)}`,
      );
    }
    const batchFile = join(dir, 'check-batch.safetensors');
    run('node', [side, 'batch', '--config', config, '--out', batchFile, '--epoch', '0', '--batch', '1']);
    const chk = JSON.parse(
      run(values.python, [twin, '--config', config, '--out', tw, '--check_batch', batchFile], { capture: true }).stdout,
    );
    process.stderr.write(`self-check batch: ${JSON.stringify(chk)}\n`);
    if (!chk.indices_equal || chk.bit_identical_fraction !== 1)
      throw new Error("self-check: the twin's batch differs from protodino's");
    writeFileSync(join(out, 'self-check.json'), `${JSON.stringify({ defaults: 'equal', batch: chk })}\n`);
  }
  // protodino's step-0 weights: the initial state of both engines with --init protodino.
  const pdInit = join(dir, 'init.safetensors');
  if ((values.init === 'protodino' || points[0] === 0) && !existsSync(pdInit))
    run('node', [side, 'init', '--config', config, '--out', pdInit]);
  if (points[0] === 0 && !existsSync(join(pd, 'checkpoint-step0.safetensors'))) {
    // As a protodino checkpoint (the twin writes exactly these weights with the run's config).
    const tmp = join(dir, 'protodino-step0');
    run(values.python, [twin, '--config', config, '--out', tmp, '--init', pdInit, '--init_only', '--quiet']);
    copyFileSync(join(tmp, 'checkpoint-step0.safetensors'), join(pd, 'checkpoint-step0.safetensors'));
  }
  // The twin, one run saving at every point.
  const last = points.at(-1);
  if (!points.every((p) => existsSync(join(tw, `checkpoint-step${p}.safetensors`)))) {
    const init = values.init === 'protodino' ? pdInit : 'torch';
    if (existsSync(join(tw, 'log.jsonl'))) writeFileSync(join(tw, 'log.jsonl'), ''); // a fresh run: no stale records
    twSeconds += run(values.python, [
      twin,
      '--config',
      config,
      '--out',
      tw,
      '--init',
      init,
      '--save_at',
      points.join(','),
      '--max_steps',
      String(last),
      '--threads',
      values.threads,
      '--data_stream',
      values.data_stream,
      '--quiet',
    ]).seconds;
  }
  const pdLog = readJsonl(config),
    twLog = readJsonl(join(tw, 'log.jsonl'));
  const common = pdLog
    .filter((r) => r.event === 'step')
    .map((r) => r.step)
    .filter((s) => lossAt(twLog, s) !== undefined);
  const rows = points.map((p) => {
    const a = evalKnn(join(pd, `checkpoint-step${p}.safetensors`));
    const b = evalKnn(join(tw, `checkpoint-step${p}.safetensors`));
    return {
      step: p,
      protodino: a.top1,
      torch: b.top1,
      loss: { protodino: lossAt(pdLog, p) ?? null, torch: lossAt(twLog, p) ?? null },
    };
  });
  const early = common.slice(0, 5).map((s) => ({
    step: s,
    protodino: lossAt(pdLog, s),
    torch: lossAt(twLog, s),
    diff: lossAt(pdLog, s) - lossAt(twLog, s),
  }));
  const paired = JSON.parse(
    run(
      values.python,
      [
        diffPy,
        '--logs',
        config,
        join(tw, 'log.jsonl'),
        '--ckpts',
        join(pd, `checkpoint-step${last}.safetensors`),
        join(tw, `checkpoint-step${last}.safetensors`),
      ],
      { capture: true },
    ).stdout,
  );
  perSeed.push({ seed, rows, earlyLoss: early, paired });
  timing.push({ seed, protodinoSeconds: pdSeconds || null, torchSeconds: twSeconds || null });
}

const stats = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x));
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
};
const K = 20;
const table = points.map((p, i) => {
  const a = perSeed.map((s) => s.rows[i].protodino[K]);
  const b = perSeed.map((s) => s.rows[i].torch[K]);
  return { step: p, protodino: stats(a), torch: stats(b), diff: stats(a.map((x, j) => x - b[j])) };
});
const first = readJsonl(join(out, `seed${seeds[0]}`, 'protodino', 'log.jsonl')).find((r) => r.event === 'start');
const results = {
  seeds,
  points,
  k: K,
  temperature: 0.07,
  trainMax: Number(values.train_max),
  testMax: Number(values.test_max),
  threads: Number(values.threads),
  init: values.init,
  dataStream: values.data_stream,
  recipe,
  config: first?.config,
  table,
  perSeed,
  timing,
};
writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
const pct = (s) => `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}`;
const md = [
  `# protodino vs PyTorch twin: k-NN top-1 (k ${K}, T 0.07, ${values.train_max} train / ${values.test_max} test images, %)`,
  '',
  `seeds ${seeds.join(', ')}; init ${values.init}; data stream ${values.data_stream}; ${values.threads} thread(s); recipe: ${recipe.join(' ') || '(protodino defaults)'}`,
  '',
  '| step | protodino | PyTorch twin | protodino − twin (paired) |',
  '|---:|---:|---:|---:|',
  ...table.map((r) => `| ${r.step} | ${pct(r.protodino)} | ${pct(r.torch)} | ${pct(r.diff)} |`),
  '',
  'mean ± sample std over seeds. Per seed (protodino / twin, loss at the step):',
  '',
  ...perSeed.flatMap((s) =>
    s.rows.map(
      (r) =>
        `- seed ${s.seed} step ${r.step}: ${(100 * r.protodino[K]).toFixed(2)} / ${(100 * r.torch[K]).toFixed(2)}` +
        ` (difference ${(100 * (r.protodino[K] - r.torch[K])).toFixed(2)})` +
        (r.loss.protodino != null && r.loss.torch != null
          ? ` (loss ${r.loss.protodino.toFixed(4)} / ${r.loss.torch.toFixed(4)})`
          : ''),
    ),
  ),
  '',
  `Pairs at step ${points.at(-1)} (scripts/torch-twin/diff.py): largest loss difference over the common logged steps, largest absolute difference of the tensors:`,
  '',
  ...perSeed.map(
    (s) =>
      `- seed ${s.seed}: loss ${s.paired.loss_max_abs_diff?.toExponential(1) ?? '–'} over ${s.paired.n_steps} steps; ` +
      Object.entries(s.paired.max_abs_diff ?? {})
        .map(([g, d]) => `${g} ${d.toExponential(1)}`)
        .join(', '),
  ),
  '',
];
writeFileSync(join(out, 'results.md'), md.join('\n'));
process.stdout.write(md.join('\n'));
