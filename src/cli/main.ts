#!/usr/bin/env node
// protodino command line. Subcommands live in their own files; this only dispatches.
import { parseArgs } from 'node:util';
import { createBackend } from '../backend/index.js';
import { BACKEND_OPTION, backendKind, intFlag, takeTuneFlag } from './args.js';

const USAGE = `usage: protodino <command> [options]

commands:
  info  [--backend wasm|webgpu|auto] [--threads N]   describe the backend that would run
  doctor [--json]                                     the WebGPU adapters Dawn finds (features, limits), the
                                                      wasm build, threads and tuning (and where it came from),
                                                      and what --backend auto picks and why
  demo  [--quick] [--backend=wasm|webgpu|auto]        the default job: collapse and KoLeo-proto in minutes
  train [--flag value ...]                            DINO training (flags: protodino train --help); each epoch logs
                                                      unique prototypes, usage and k-NN (--eval_every_epoch false: off);
                                                      --print-flags-json: the flag table and presets as JSON (train_ddp.py reads it)
  analyze <checkpoint> [--eps 0.025,0.1] [--eps_metric euclidean|cosine] [--rule greedy|components|both] [--json] [--student]
          [--dataset fashion-mnist [--split train|test] [--max N]]
                                                      unique prototypes of a protodino or PyTorch DINO checkpoint;
                                                      with --dataset also prototype usage (protodino checkpoints only);
                                                      ε is the Euclidean distance between unit prototypes: two are
                                                      the same when their cosine exceeds 1 − ε²/2
  eval <checkpoint> [--knn] [--linear] [--fewshot] [--all] [--train_max N] [--test_max N] [--long_tail R]
       [--student] [--json] [--backend wasm|webgpu|auto] [--linear_epochs N] [--linear_lr X] [--episodes N]
                                                      k-NN (k 10/20/100/200), linear probe, 5-way few-shot, per-class
                                                      and head/medium/tail accuracy of the frozen backbone (default: all)
  embed <checkpoint> --out FILE.safetensors [--split train|test] [--max N] [--student]
                                                      backbone features [N, D] F32 and labels [N] I32 of a split
  export <checkpoint> --to pth|onnx|backbone [--out FILE] [--with_head] [--student]
                                                      pth: the checkpoint as facebookresearch/dino's .pth; onnx: the
                                                      teacher backbone, images in [0, 1] → embed's features (mean/std
                                                      applied inside; --with_head adds the head's logits);
                                                      backbone: the teacher's (--student: the student's) backbone
                                                      weights alone, .safetensors or .pth, for train --init_from
  report <run dir ...> [--out report.html] [--eps 0.025,0.1] [--eps_metric euclidean|cosine] [--images 2000] [--no-gallery]
                                                      compare training runs in one self-contained HTML page
                                                      (--eps as for analyze: a distance, a cosine gap of ε²/2)
  experiments [--seeds 3] [--variant_seeds 1] [--quick] [--out runs/experiments] [--only frozen,full]
              [--tier main,variant] [--frozen_steps N] [--full_steps N] [--full_recipe NAME] [--ks 1024,4096]
              [--methods dino,em] [--frozen_methods dino] [--frozen_backbone FILE] [--aggregate] [--list] [--plots DIR]
              [--data balanced,longtail] [--koleo_proto 0,0.1] [--sweep FLAG=v1,v2 ...] [--sweep_methods em]
                                                      the paper's grid: DINO ± KoLeo-proto (and variants), balanced
                                                      and long-tailed, frozen and full; resumable; results.json + table;
                                                      --methods: the full comparison's methods (dino, sinkhorn, memax,
                                                      vmf, ibot, em); --frozen_methods: the frozen one's (dino,
                                                      sinkhorn, memax, vmf, em; em fits the prototypes over the fixed
                                                      PCA-64 features); --frozen_backbone: the frozen setting on a
                                                      trained backbone (export --to backbone) instead of PCA-64;
                                                      --data / --koleo_proto: keep only these data columns / weights;
                                                      --sweep (repeatable): one-at-a-time, each cell of --sweep_methods
                                                      (default all) once more per value of a training flag (train
                                                      --help) that differs from the cell's; cells named by the value
                                                      (frozen-balanced-em-eta0.005-s0); a table of the swept values
                                                      with unique prototypes, usage and k-NN; results.json 'sweep'
  bench [suite ...] [--quick] [--profile]             run the benchmarks (see bench/); --profile adds per-kernel-family
                                                      time profiles (dino-step)

every command also takes --tune off|auto|FILE|family.param=value,...  (or PROTODINO_TUNE): the wasm kernels'
blocking and thread split, measured once per host and cached under ~/.cache/protodino (auto; the default of
train, demo, experiments, bench and doctor), today's defaults (off; the default elsewhere), or given values
(a JSON file or e.g. matmul.mc=192). No value changes a result (docs/performance.md).
`;

async function info(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { ...BACKEND_OPTION, threads: { type: 'string' } },
    strict: true,
  });
  const threads = values.threads === undefined ? undefined : intFlag('info', 'threads', values.threads, 0);
  const be = await createBackend({ kind: backendKind('info', values.backend), threads });
  console.log(be.description);
  be.destroy();
}

async function trainCmd(argv: string[]): Promise<void> {
  const { parseTrainArgs } = await import('../train/config.js');
  if (argv.includes('--print-flags-json')) {
    // The flag table and presets for other trainers (scripts/torch-twin/train_ddp.py) to read, so
    // their flags take the same names, kinds, defaults and recipes as this command's and cannot drift.
    const { FLAGS } = await import('../train/flags.js');
    const { PRESETS } = await import('../train/presets.js');
    const presets = Object.fromEntries(Object.entries(PRESETS).map(([k, p]) => [k, p.config]));
    process.stdout.write(`${JSON.stringify({ flags: FLAGS, presets })}\n`);
    return;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    const { PRESETS } = await import('../train/presets.js');
    const { flagHelp } = await import('../train/flags.js');
    const show = (v: unknown) => (Array.isArray(v) ? v.join(' ') : String(v));
    const presets = Object.entries(PRESETS)
      .map(
        ([name, p]) =>
          `  ${name}: ${p.summary}\n    ${Object.entries(p.config)
            .map(([k, v]) => `--${k} ${show(v)}`)
            .join(' ')}`,
      )
      .join('\n');
    process.stdout.write(
      `usage: protodino train [--preset NAME] [--flag value ...]\n\n` +
        `presets (--preset NAME starts from the recipe; flags given beside it override its values):\n${presets}\n\n` +
        'flags (a boolean flag alone means true; --no-FLAG means false; a pair takes two numbers):\n\n' +
        `${flagHelp()}`,
    );
    return;
  }
  const { train, resumeBase } = await import('../train/trainer.js');
  const cfg = parseTrainArgs(argv, resumeBase(parseTrainArgs(argv)));
  const hooks = cfg.eval_every_epoch
    ? { onEpoch: (await import('../train/diagnostics.js')).epochDiagnostics(cfg) }
    : {};
  const result = await train(cfg, hooks);
  const last = result.history.at(-1);
  console.log(`trained ${result.steps} steps; final loss ${last?.loss.toFixed(4)}; checkpoint ${result.checkpoint}`);
}

async function exportCmd(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      to: { type: 'string', default: 'pth' },
      out: { type: 'string' },
      with_head: { type: 'boolean', default: false },
      student: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new Error('export: give exactly one checkpoint file');
  const src = positionals[0];
  if (values.to === 'pth') {
    // The .pth holds both networks and their heads whole; choosing one of them means nothing there.
    if (values.with_head || values.student)
      throw new Error('export: --with_head and --student apply to --to onnx and backbone only');
    const out = values.out ?? src.replace(/\.safetensors$/, '') + '.pth';
    const { exportCheckpointToPth } = await import('../io/export-dino.js');
    exportCheckpointToPth(src, out);
    console.log(`wrote ${out}`);
  } else if (values.to === 'onnx') {
    const out = values.out ?? src.replace(/\.safetensors$/, '') + '.onnx';
    const { exportCheckpointToOnnx } = await import('../io/onnx/export.js');
    const r = await exportCheckpointToOnnx(src, out, {
      withHead: values.with_head,
      which: values.student ? 'student' : 'teacher',
    });
    const shape = (s: (number | string)[]) => `[${s.join(', ')}]`;
    console.log(
      `wrote ${out}: ${r.input.name} ${shape(r.input.shape)} in [0, 1] (mean ${r.mean.map((v) => v.toFixed(4)).join(', ')}, ` +
        `std ${r.std.map((v) => v.toFixed(4)).join(', ')} applied inside) → ` +
        r.outputs.map((o) => `${o.name} ${shape(o.shape)}`).join(', '),
    );
  } else if (values.to === 'backbone') {
    if (values.with_head) throw new Error('export: --with_head applies to --to onnx only');
    const out = values.out ?? src.replace(/\.safetensors$/, '') + '-backbone.safetensors';
    const { exportBackbone } = await import('../io/export-backbone.js');
    const which = values.student ? 'student' : 'teacher';
    const r = exportBackbone(src, out, which);
    console.log(`wrote ${out}: the ${which} backbone, ${r.tensors} tensors, ${r.parameters} values (${r.format})`);
  } else {
    throw new Error(`export: --to must be pth, onnx or backbone, got '${values.to}'`);
  }
}

async function bench(argv: string[]): Promise<void> {
  // Resolved at run time: bench/ is compiled next to src/ but is not part of the library.
  const mod = (await import(new URL('../../bench/index.js', import.meta.url).href)) as {
    main(argv: string[]): Promise<void>;
  };
  await mod.main(argv);
}

/** The lines of USAGE that describe one command (its first line up to the next command's). */
function commandUsage(cmd: string): string | null {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${cmd} `) || l === `  ${cmd}`);
  if (start < 0) return null;
  let end = start + 1;
  while (end < lines.length && lines[end].startsWith('   ') && !/^ {2}[a-z]/.test(lines[end])) end++;
  return `usage: protodino ${lines
    .slice(start, end)
    .map((l) => l.slice(2))
    .join('\n')}\n`;
}

/** Commands that train or benchmark: they tune the wasm kernels to the host unless told otherwise. */
const TUNED = new Set(['train', 'demo', 'experiments', 'bench', 'doctor']);

async function main(): Promise<void> {
  const [cmd, ...args] = process.argv.slice(2);
  const rest = cmd === undefined || cmd.startsWith('-') ? args : takeTuneFlag(args, TUNED.has(cmd) ? 'auto' : 'off');
  // Every command answers --help; train lists its flags, the others their usage lines.
  if (cmd !== 'train' && cmd !== 'bench' && (rest.includes('--help') || rest.includes('-h'))) {
    const u = commandUsage(cmd ?? '');
    if (u) {
      process.stdout.write(u);
      return;
    }
  }
  switch (cmd) {
    case 'info':
      return info(rest);
    case 'doctor':
      return (await import('./doctor.js')).doctor(rest);
    case 'demo':
      return (await import('./demo.js')).demo(rest);
    case 'train':
      return trainCmd(rest);
    case 'analyze':
      return (await import('./analyze.js')).analyze(rest);
    case 'eval':
      return (await import('./eval.js')).evalCmd(rest);
    case 'embed':
      return (await import('./embed.js')).embed(rest);
    case 'export':
      return exportCmd(rest);
    case 'report':
      return (await import('./report.js')).report(rest);
    case 'experiments':
      return (await import('./experiments.js')).experiments(rest);
    case 'bench':
      return bench(rest);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`protodino: unknown command '${cmd}'\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`protodino: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
