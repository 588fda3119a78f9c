// The default job's plan: full size where it fits, shortened by one factor (never below the floors)
// where the machine is slow, and one ETA line for the whole job.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectedSeconds, JobClock, planDemo, type DemoRates, type DemoShape } from '../../src/cli/demo-plan.js';

const shape: DemoShape = {
  frozenRuns: 4,
  fullRuns: 2,
  evalImages: 12000,
  extraEvals: 2,
  frozenSteps: { max: 2000, min: 500 },
  fullSteps: { max: 500, min: 200 },
};
const fast: DemoRates = { frozenStepS: 0.01, fullStepS: 0.2, embedImageS: 0.0005, runOverheadS: 2 };

test('a fast machine runs the full-size job', () => {
  const p = planDemo(shape, fast, 320);
  assert.equal([p.frozenSteps, p.fullSteps, p.scale], [2000, 500, 1]);
  // 4·(20 + 2) + 2·(100 + 2 + 6) + 2·6
  assert.ok(Math.abs(p.expectedS - (88 + 216 + 12)) < 1e-9, String(p.expectedS));
  assert.ok(Math.abs(p.expectedS - expectedSeconds(shape, fast, 2000, 500)) < 1e-9);
});

test('a machine 3× slower gets the largest job that fits the budget, same factor for both kinds', () => {
  const slow: DemoRates = { frozenStepS: 0.03, fullStepS: 0.6, embedImageS: 0.0015, runOverheadS: 6 };
  const p = planDemo(shape, slow, 600);
  assert.ok(p.expectedS <= 600, String(p.expectedS));
  assert.ok(p.scale < 1 && p.scale > 0.2, String(p.scale));
  assert.is(p.frozenSteps, Math.max(500, Math.round(2000 * p.scale)));
  assert.is(p.fullSteps, Math.max(200, Math.round(500 * p.scale)));
  // one more percent would not fit
  const more = expectedSeconds(
    shape,
    slow,
    Math.max(500, Math.round(2000 * (p.scale + 0.01))),
    Math.max(200, Math.round(500 * (p.scale + 0.01))),
  );
  assert.ok(more > 600, String(more));
});

test('a very slow machine runs the floors and says it will take longer than the budget', () => {
  const crawl: DemoRates = { frozenStepS: 1, fullStepS: 10, embedImageS: 0.01, runOverheadS: 30 };
  const p = planDemo(shape, crawl, 300);
  assert.equal([p.frozenSteps, p.fullSteps], [500, 200]);
  assert.ok(p.expectedS > 300);
});

test('bad rates and budgets are refused by name', () => {
  assert.throws(() => planDemo(shape, { ...fast, fullStepS: NaN }, 300), /rate fullStepS must be a finite number/);
  assert.throws(() => planDemo(shape, fast, 0), /budget must be positive/);
});

test('the job clock: ETA from the plan at first, then from the measured pace', () => {
  let now = 0;
  const lines: string[] = [];
  const clock = new JobClock(
    100,
    (l) => lines.push(l),
    () => now,
    0,
  );
  clock.start(50);
  now = 2000;
  clock.progress(0.02, 'run 1/2'); // 1 s of 100 done after 2 s: too early for the pace
  assert.match(lines.at(-1)!, /run 1\/2: 1% of the job, elapsed 2s, ETA 1m38s/);
  now = 50_000;
  clock.progress(1, 'run 1/2'); // half the job in 50 s
  clock.finish();
  clock.start(50);
  now = 100_000;
  clock.progress(0.5, 'run 2/2'); // 75 s of work in 100 s: pace 4/3, 25 s left → 33 s
  assert.match(lines.at(-1)!, /run 2\/2: 75% of the job, elapsed 1m40s, ETA 33s/);
  const quiet = new JobClock(
    100,
    (l) => lines.push(l),
    () => now,
    15,
  );
  const n = lines.length;
  quiet.progress(0.1, 'a');
  quiet.progress(0.2, 'b'); // within 15 s of the last line: not printed
  assert.is(lines.length, n + 1);
});

test.run();
