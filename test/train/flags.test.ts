// The declarative flag table: the defaults, kinds, choices, `train --help` and the flags a resume may
// change all come from it, every flag parses back to its default, and every command answers --help.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEFAULTS, parseTrainArgs } from '../../src/train/config.js';
import { FLAG_NAMES, FLAGS, RUN_ONLY, flagDefaults } from '../../src/train/flags.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('DEFAULTS holds exactly the declared flags, each of its kind and among its choices', () => {
  assert.equal(Object.keys(DEFAULTS), FLAG_NAMES);
  for (const k of FLAG_NAMES) {
    const f = FLAGS[k] as { kind: string; choices?: readonly string[]; help: string };
    const v = DEFAULTS[k] as unknown;
    const ok =
      f.kind === 'int'
        ? Number.isInteger(v)
        : f.kind === 'float'
          ? typeof v === 'number'
          : f.kind === 'bool'
            ? typeof v === 'boolean'
            : f.kind === 'pair'
              ? Array.isArray(v) && v.length === 2
              : typeof v === 'string';
    assert.ok(ok, `--${k}: default ${JSON.stringify(v)} is not a ${f.kind}`);
    if (f.choices)
      assert.ok(f.choices.includes(v as string), `--${k}: default '${v}' is not among ${f.choices.join(', ')}`);
    assert.ok(f.help.length > 10, `--${k} has no help line`);
  }
  // Fresh copies: changing one config's pair cannot change the table.
  const d = flagDefaults();
  d.global_crops_scale[0] = 0.9;
  assert.is(flagDefaults().global_crops_scale[0], 0.4);
});

test('every flag given its default on the command line parses back to DEFAULTS', () => {
  const show = (v: unknown) => (Array.isArray(v) ? v.map(String) : [String(v)]);
  const argv = FLAG_NAMES.filter((k) => k !== 'preset').flatMap((k) => [`--${k}`, ...show(DEFAULTS[k])]);
  assert.equal(parseTrainArgs(argv), DEFAULTS);
  assert.throws(
    () => parseTrainArgs(['--arch', 'vgg']),
    (e: unknown) => e instanceof ConfigError && /--arch: must be one of vit_cpu/.test((e as Error).message),
  );
});

test('the flags a resume may change are the ones declared not to change results', () => {
  assert.equal([...RUN_ONLY].sort(), [
    'backend',
    'collapse_window',
    'data_path',
    'eps_metric',
    'eval_every_epoch',
    'eval_test_max',
    'eval_train_max',
    'log_every',
    'max_steps',
    'on_nan',
    'output_dir',
    'profile',
    'quiet',
    'resume',
    'save_every',
    'threads',
  ]);
});

test('train --help describes every flag with its default', () => {
  const r = spawnSync(process.execPath, [cli, 'train', '--help'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  for (const k of FLAG_NAMES) {
    const line = r.stdout.split('\n').find((l) => l.startsWith(`  --${k} `));
    assert.ok(line, `--${k} missing from train --help`);
    assert.ok(line!.includes(FLAGS[k].help), `--${k}: help text missing`);
    assert.match(line!, /\(default .+\)$/);
  }
  assert.match(r.stdout, '--arch vit_cpu|vit_tiny|vit_small|resnet_cpu|resnet18|resnet50|pca');
});

test('every command answers --help with its usage and runs nothing', () => {
  for (const cmd of ['info', 'demo', 'train', 'analyze', 'eval', 'embed', 'export', 'report', 'experiments', 'bench']) {
    const r = spawnSync(process.execPath, [cli, cmd, '--help'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, `${cmd} --help: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`usage: protodino ${cmd}`), `${cmd} --help printed: ${r.stdout.slice(0, 200)}`);
  }
});

test.run();
