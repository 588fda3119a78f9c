// niceTicks: 1/2/5 × 10^n steps, 3 to 7 ticks enclosing the data, a flat series padded so it still
// gets several ticks, labels with just the decimals the step needs; and the SVG Vega draws from them
// shows exactly those labels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTick, niceTicks, type TickOptions, type Ticks } from '../../src/report/ticks.js';
import { lineChart, niceAxis, renderSpec } from '../../src/report/chart.js';

const labels = (t: Ticks) => t.values.map((v) => formatTick(v, t.decimals));

/** What every tick set must satisfy, whatever the data. */
function checkTicks(lo: number, hi: number, opts: TickOptions = {}): Ticks {
  const t = niceTicks(lo, hi, opts);
  const what = `[${lo}, ${hi}] → ${t.values.join(', ')}`;
  assert.ok(t.values.length >= 3 && t.values.length <= 7, `3–7 ticks: ${what}`);
  const m = t.step / 10 ** Math.floor(Math.log10(t.step) + 1e-9);
  assert.ok(
    [1, 2, 5].some((x) => Math.abs(m - x) < 1e-9),
    `step ${t.step} is 1, 2 or 5 × 10^n: ${what}`,
  );
  assert.ok(t.domain[0] <= Math.min(lo, hi) && t.domain[1] >= Math.max(lo, hi), `domain encloses data: ${what}`);
  assert.equal(t.domain, [t.values[0], t.values.at(-1)]);
  for (let i = 1; i < t.values.length; i++)
    assert.ok(Math.abs(t.values[i] - t.values[i - 1] - t.step) < t.step * 1e-6, `even spacing: ${what}`);
  const l = labels(t);
  assert.is(new Set(l).size, l.length, `distinct labels: ${l.join(' ')}`);
  assert.not.ok(
    l.some((s) => /^−0(\.0*)?$/.test(s)),
    `no "−0": ${l.join(' ')}`,
  );
  if (opts.integer) assert.ok(Number.isInteger(t.step), `whole steps: ${what}`);
  if (opts.zero) assert.ok(t.domain[0] <= 0 && t.domain[1] >= 0, `zero included: ${what}`);
  return t;
}

test('a flat series gets several ticks around its value, not one "0.836000"', () => {
  const t = checkTicks(0.836, 0.836);
  assert.equal(labels(t), ['0.82', '0.83', '0.84', '0.85']);
  assert.equal(labels(checkTicks(83.6, 83.6)), ['82', '83', '84', '85']);
  assert.equal(labels(checkTicks(0, 0)), ['−1.0', '−0.5', '0.0', '0.5', '1.0']);
  assert.equal(labels(checkTicks(64, 64, { integer: true })), ['62', '64', '66']);
  assert.equal(labels(checkTicks(5, 5, { integer: true, zero: true })), ['0', '2', '4', '6']);
  checkTicks(-0.002, -0.002);
  checkTicks(1e9, 1e9);
});

test('tiny ranges get just the decimals that tell ticks apart', () => {
  assert.equal(labels(checkTicks(0.83601, 0.83604)), ['0.83601', '0.83602', '0.83603', '0.83604']);
  assert.equal(labels(checkTicks(4.1589, 4.1601)), ['4.1585', '4.1590', '4.1595', '4.1600', '4.1605']);
  assert.equal(labels(checkTicks(2.303, 4.159)), ['2', '3', '4', '5']);
});

test('negative ranges and ranges across zero: "−" signs, a plain 0', () => {
  assert.equal(labels(checkTicks(-3.2, -0.1)), ['−4', '−3', '−2', '−1', '0']);
  assert.equal(labels(checkTicks(-0.7, 0.3)), ['−1.0', '−0.5', '0.0', '0.5']);
  // Symmetric about 0, every step longer than the range also gives three ticks: none is taken.
  assert.equal(labels(checkTicks(-0.45, 0.45)), ['−0.5', '0.0', '0.5']);
  assert.equal(labels(checkTicks(-0.5, 0.5)), ['−1', '0', '1']);
  assert.equal(labels(checkTicks(-3e-7, 3e-7)), ['−0.0000004', '−0.0000002', '0.0000000', '0.0000002', '0.0000004']);
  // -0.1 + 0.1 in floats is not exactly 0: the tick must still be a plain 0.
  const t = checkTicks(-0.3, 0.25);
  assert.ok(t.values.includes(0) && !t.values.some((v) => Object.is(v, -0)));
});

test('large values: whole steps, thousands grouped', () => {
  assert.equal(labels(checkTicks(0, 9370, { integer: true })), ['0', '2,000', '4,000', '6,000', '8,000', '10,000']);
  assert.equal(labels(checkTicks(1.2e6, 3.4e7)), ['0', '10,000,000', '20,000,000', '30,000,000', '40,000,000']);
  // Counts never get fractional ticks, however narrow the range.
  assert.equal(labels(checkTicks(3, 4, { integer: true })), ['3', '4', '5']);
});

test('non-finite bounds are ignored; reversed bounds are ordered', () => {
  assert.equal(niceTicks(NaN, Infinity).values, niceTicks(0, 1).values);
  assert.equal(niceTicks(2, NaN).values, niceTicks(2, 2).values);
  assert.equal(niceTicks(10, 0).values, niceTicks(0, 10).values);
});

test('seeded random ranges all satisfy the rules', () => {
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) as number;
  for (let i = 0; i < 2000; i++) {
    const scale = 10 ** Math.floor(rand() * 16 - 8);
    const a = (rand() - 0.5) * 2 * scale,
      b = a + rand() ** 3 * scale;
    checkTicks(a, b, { integer: i % 3 === 0, zero: i % 5 === 0 });
  }
});

test('formatTick: decimals, grouping and sign', () => {
  assert.is(formatTick(1234567.891, 2), '1,234,567.89');
  assert.is(formatTick(-1500, 0), '−1,500');
  assert.is(formatTick(-0.00001, 2), '0.00');
  assert.is(formatTick(0.5, 1), '0.5');
});

test('the SVG of a flat curve shows the nice ticks, formatted as formatTick formats them', async () => {
  const values = [1, 2, 3, 4].map((step) => ({ step, knn: 83.6 }));
  const y = niceAxis([83.6], 'k-NN top-1 (%)');
  const svg = await renderSpec(
    lineChart({
      values,
      x: { field: 'step', ...niceAxis([0, 4], 'step', { integer: true }) },
      y: { field: 'knn', ...y },
      encoding: {},
    }),
  );
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  for (const l of ['82', '83', '84', '85']) assert.ok(texts.includes(l), `tick ${l} in ${texts.join(' | ')}`);
  assert.not.ok(
    texts.some((t) => /83\.6000|0\.836000/.test(t)),
    'no over-long label',
  );
});

test.run();
