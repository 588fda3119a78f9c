import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readSafetensors } from '../../src/io/safetensors.js';
import { cosineScheduler, linspace, teacherTempSchedule } from '../../src/util/schedules.js';
import { packagePath } from '../../src/util/paths.js';

const test = suite('schedules');

function exact(actual: Float64Array, expected: ArrayLike<number>, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.unreachable(`${what}[${i}]: ${actual[i]} !== ${expected[i]}`);
  }
}

function near(actual: number, expected: number, what: string, tol = 1e-15): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

/** dino's cosine_scheduler written out as plainly as possible, for comparison. */
function formula(
  base: number,
  final: number,
  epochs: number,
  niters: number,
  warmupEpochs: number,
  start: number,
): number[] {
  const out: number[] = [];
  const w = warmupEpochs * niters;
  for (let i = 0; i < w; i++) out.push(w === 1 ? start : i === w - 1 ? base : start + i * ((base - start) / (w - 1)));
  const len = epochs * niters - w;
  for (let i = 0; i < len; i++) out.push(final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * i) / len)));
  return out;
}

test('cosineScheduler equals the formula exactly (DINO lr, wd, momentum, odd sizes)', () => {
  const cases: [number, number, number, number, number, number][] = [
    [(0.0005 * 64) / 256, 1e-6, 100, 17, 10, 0], // lr with warm-up
    [0.04, 0.4, 7, 13, 0, 0], // weight decay rises
    [0.996, 1, 5, 3, 0, 0], // teacher momentum
    [0.1, 0.01, 5, 3, 2, 0.05],
    [1, 0, 1, 1, 0, 0],
    [1, 0, 2, 3, 2, 0.5], // all warm-up
    [1, 0, 3, 1, 1, 0.25], // a one-iteration warm-up is its start value
  ];
  for (const c of cases) exact(cosineScheduler(...c), formula(...c), `cosineScheduler(${c})`);
});

test('cosineScheduler spot values by hand', () => {
  // len 4: 0.5·(1 + cos(k·π/4)) for k = 0..3
  const s = cosineScheduler(1, 0, 1, 4);
  assert.is(s[0], 1);
  near(s[1], 0.8535533905932737, 's[1] = (2 + √2)/4');
  assert.is(s[2], 0.5); // 1 + cos(π/2) = 1 + 6.1e-17 rounds to 1
  near(s[3], 0.14644660940672624, 's[3] = (2 − √2)/4');

  // 1 epoch of warm-up in 4 steps from 0 to 0.3, then 4 cosine steps down to 0.1.
  const w = cosineScheduler(0.3, 0.1, 2, 4, 1, 0);
  near(w[0], 0, 'w[0]');
  near(w[1], 0.1, 'w[1]');
  near(w[2], 0.2, 'w[2]');
  assert.is(w[3], 0.3); // the last warm-up value is exactly the base (numpy.linspace endpoint)
  assert.is(w[4], 0.3);
  near(w[5], 0.1 + 0.1 * (1 + Math.SQRT1_2), 'w[5]');
  near(w[6], 0.2, 'w[6]');
  near(w[7], 0.1 + 0.1 * (1 - Math.SQRT1_2), 'w[7]');

  assert.is(cosineScheduler(1, 0, 0, 5).length, 0);
  assert.is(cosineScheduler(1, 0, 3, 0, 2).length, 0);
});

test('cosineScheduler rejects what numpy would', () => {
  assert.throws(() => cosineScheduler(1, 0, 2, 3, 3), /warmupEpochs \(3\) exceeds epochs \(2\)/);
  assert.throws(() => cosineScheduler(1, 0, 2.5, 3), /epochs must be a non-negative integer/);
  assert.throws(() => cosineScheduler(1, 0, 2, -1), /nitersPerEp must be a non-negative integer/);
});

test('linspace follows numpy, endpoints included', () => {
  exact(linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1], 'linspace(0,1,5)');
  // Values printed by numpy 1.24's linspace.
  exact(linspace(0.04, 0.07, 4), [0.04, 0.05, 0.060000000000000005, 0.07], 'linspace(0.04,0.07,4)');
  exact(linspace(0.04, 0.07, 3), [0.04, 0.05500000000000001, 0.07], 'linspace(0.04,0.07,3)');
  exact(linspace(2, 3, 1), [2], 'linspace num=1');
  exact(linspace(2, 3, 0), [], 'linspace num=0');
  exact(linspace(0.5, 0.5, 3), [0.5, 0.5, 0.5], 'constant');
  // The step underflows to 0, so numpy scales i/div by delta instead (gh-5437): 0.75 ulp rounds up.
  exact(linspace(0, 5e-324, 5), [0, 0, 0, 5e-324, 5e-324], 'denormal range');
});

test('teacherTempSchedule: linear warm-up per epoch, then constant', () => {
  const s = teacherTempSchedule(0.04, 0.07, 30, 100);
  assert.is(s.length, 100);
  assert.is(s[0], 0.04);
  for (let e = 1; e < 29; e++) assert.is(s[e], e * ((0.07 - 0.04) / 29) + 0.04, `epoch ${e}`);
  for (let e = 29; e < 100; e++) assert.is(s[e], 0.07, `epoch ${e}`);
  near(s[15], 0.04 + (0.03 * 15) / 29, 'hand value at epoch 15');
  exact(teacherTempSchedule(0.04, 0.07, 0, 3), [0.07, 0.07, 0.07], 'no warm-up');
  exact(teacherTempSchedule(0.04, 0.07, 1, 2), [0.04, 0.07], 'one warm-up epoch is the warm-up temperature');
  exact(teacherTempSchedule(0.04, 0.07, 3, 3), [0.04, 0.05500000000000001, 0.07], 'warm-up the whole run');
  assert.throws(() => teacherTempSchedule(0.04, 0.07, 4, 3), /exceeds nepochs/);
});

test("against numpy running dino's own code (fixture made by scripts/make-safetensors-fixtures.py)", () => {
  const f = readSafetensors(packagePath('test', 'fixtures', 'safetensors', 'numpy-schedules.safetensors'), {
    verify: true,
  });
  assert.ok(f.tensors.size >= 9);
  for (const [name, t] of f.tensors) {
    const { kind, args } = JSON.parse(f.metadata[name]) as { kind: string; args: number[] };
    const expected = t.data as Float64Array;
    if (kind === 'temp') {
      const [a, b, w, n] = args;
      exact(teacherTempSchedule(a, b, w, n), expected, name); // linspace only: bit-identical
      continue;
    }
    const [base, final, epochs, niters, warmup, start] = args;
    const ours = cosineScheduler(base, final, epochs, niters, warmup, start);
    assert.is(ours.length, expected.length, name);
    const w = warmup * niters;
    exact(ours.subarray(0, w), expected.subarray(0, w), `${name} warm-up`);
    // After the warm-up, V8's cos and numpy's may differ by an ulp; the value moves by at most
    // |0.5·(base − final)| times that ulp (and a rounding of its own).
    const amp = Math.abs(0.5 * (base - final));
    for (let i = w; i < ours.length; i++) {
      const diff = Math.abs(ours[i] - expected[i]);
      assert.ok(
        diff <= 4 * amp * 2 ** -52 + Math.abs(expected[i]) * 2 ** -52,
        `${name}[${i}]: ${ours[i]} vs numpy ${expected[i]}`,
      );
    }
  }
});

test.run();
