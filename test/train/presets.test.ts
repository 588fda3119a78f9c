// Named presets: --preset starts from the recipe whatever the flag order, other flags override it,
// every preset validates, unknown or doubled presets fail naming the flag, and --help lists them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, parseTrainArgs, presetConfig, validate } from '../../src/train/config.js';
import { PRESETS } from '../../src/train/presets.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('every preset is a valid config and records its name', () => {
  for (const name of Object.keys(PRESETS)) {
    const cfg = validate(presetConfig(name));
    assert.is(cfg.preset, name);
    for (const [k, v] of Object.entries(PRESETS[name].config))
      assert.equal(cfg[k as keyof typeof cfg], v, `${name}.${k}`);
  }
});

test('--preset applies before the other flags, in any order', () => {
  const a = parseTrainArgs(['--preset', 'demo-full', '--out_dim', '512']);
  const b = parseTrainArgs(['--out_dim', '512', '--preset=demo-full']);
  assert.equal(a, b);
  assert.is(a.out_dim, 512);
  assert.is(a.teacher_temp, PRESETS['demo-full'].config.teacher_temp);
  assert.is(a.use_bn_in_head, true);
  assert.is(a.preset, 'demo-full');
  // a flag the preset does not set keeps the default
  assert.is(a.weight_decay, DEFAULTS.weight_decay);
  assert.is(parseTrainArgs([]).preset, '');
});

test('unknown, missing and doubled presets are errors naming --preset', () => {
  assert.throws(
    () => parseTrainArgs(['--preset', 'nope']),
    /--preset: unknown preset 'nope'; known presets: demo-frozen/,
  );
  assert.throws(() => parseTrainArgs(['--preset']), /--preset: needs a name/);
  assert.throws(() => parseTrainArgs(['--preset', '--lr', '1']), /--preset: needs a name/);
  assert.throws(() => parseTrainArgs(['--preset', 'demo-full', '--preset', 'demo-frozen']), /--preset: given twice/);
  assert.throws(() => validate({ ...DEFAULTS, preset: 'gone' }), /--preset: unknown preset 'gone'/);
});

test('train --help lists every preset with its flags', () => {
  const r = spawnSync(process.execPath, [cli, 'train', '--help'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  for (const [name, p] of Object.entries(PRESETS)) {
    assert.ok(r.stdout.includes(`${name}: ${p.summary}`), name);
  }
  assert.match(r.stdout, /--preset NAME starts from the recipe/);
});

test.run();
