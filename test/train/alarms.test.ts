// The collapse alarms' decisions on made-up loss and diagnostics sequences: when each fires, that it
// fires once per episode, when it clears, and how a resumed run recovers its state.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CollapseAlarms,
  freshAlarmState,
  parseAlarmState,
  resumedAlarms,
  usageThreshold,
  type AlarmRecord,
} from '../../src/train/alarms.js';

const test = suite('alarms');
const LN256 = Math.log(256);

const kinds = (rs: AlarmRecord[]) => rs.map((r) => `${r.event}:${r.kind}@${r.step}`);

function feed(a: CollapseAlarms, losses: number[], from = 1): AlarmRecord[] {
  return losses.flatMap((l, i) => a.step(from + i, 1, l));
}

test('uniform: fires once after `window` steps in a row within 1% of ln K, clears when the loss leaves', () => {
  const a = new CollapseAlarms(256, 5);
  assert.equal(feed(a, [LN256, LN256 * 1.009, LN256 * 0.991, LN256]), [], 'four steps are not yet five');
  const fired = feed(a, [LN256], 5);
  assert.equal(kinds(fired), ['alarm:uniform@5']);
  assert.match(
    fired[0].message,
    /uniform collapse - loss 5\.545 within 1% of ln 256 = 5\.545 for 5 steps \(steps 1-5\)/,
  );
  assert.is(fired[0].ln_k, LN256);
  assert.equal(feed(a, [LN256, LN256, LN256, LN256, LN256, LN256], 6), [], 'once per episode, not every window');
  assert.ok(a.isActive('uniform'));
  assert.equal(kinds(feed(a, [LN256 * 0.98], 12)), ['alarm_cleared:uniform@12']);
  assert.ok(!a.isActive('uniform'));
  // A new episode needs a full window again.
  assert.equal(kinds(feed(a, [LN256, LN256, LN256, LN256, LN256], 13)), ['alarm:uniform@17']);
});

test('uniform: a step outside the band or a non-finite loss restarts the count; window 0 turns it off', () => {
  const a = new CollapseAlarms(256, 3);
  assert.equal(feed(a, [LN256, LN256, LN256 * 1.02, LN256, LN256, NaN, LN256, LN256]), []);
  assert.is(a.state().uniform_streak, 2);
  // ln K exactly, not a multiple of it: the loss averages over crop pairs (2 pairs here → not 2 ln K).
  assert.equal(feed(new CollapseAlarms(256, 3), [2 * LN256, 2 * LN256, 2 * LN256]), []);
  assert.equal(feed(new CollapseAlarms(256, 0), Array(50).fill(LN256)), []);
});

test('usage: below max(2, 1% of K) on enough images; judged only with enough images; clears', () => {
  assert.is(usageThreshold(64), 2);
  assert.is(usageThreshold(1024), 10.24);
  const a = new CollapseAlarms(1024);
  const d = (used: number, rows = 500) => ({ usage_used: used, eval_test_rows: rows, prototypes: 1024 });
  assert.equal(a.epoch(100, 1, d(11)), []);
  const fired = a.epoch(200, 2, d(10));
  assert.equal(kinds(fired), ['alarm:usage@200']);
  assert.match(
    fired[0].message,
    /usage collapse - the teacher's argmax uses 10 of 1024 prototypes on 500 evaluation images \(fewer than max\(2, 1% of K\) = 10\.24\)/,
  );
  assert.equal(a.epoch(300, 3, d(3)), [], 'still collapsed: no second alarm');
  assert.equal(kinds(a.epoch(400, 4, d(50))), ['alarm_cleared:usage@400']);
  // 100 images cannot show 10.24 prototypes' worth of usage with margin: not judged.
  assert.equal(new CollapseAlarms(1024).epoch(100, 1, d(1, 100)), []);
  assert.equal(kinds(new CollapseAlarms(1024).epoch(100, 1, d(1, 103))), ['alarm:usage@100']);
});

test('partial: unique (ε 0.025) below half the highest count so far', () => {
  const a = new CollapseAlarms(1024);
  const d = (u: number) => ({ unique_prototypes: { '0.025': u, '0.1': u }, prototypes: 1024 });
  assert.equal(a.epoch(100, 1, d(900)), []);
  assert.equal(a.epoch(200, 2, d(1000)), [], 'a new highest');
  assert.equal(a.epoch(300, 3, d(500)), [], 'exactly half is not below half');
  const fired = a.epoch(400, 4, d(499));
  assert.equal(kinds(fired), ['alarm:partial@400']);
  assert.match(
    fired[0].message,
    /partial prototype collapse - 499 unique prototypes \(ε 0\.025\) of 1024, below half the run's highest, 1000 at step 200/,
  );
  assert.equal(a.epoch(500, 5, d(10)), []);
  assert.equal(kinds(a.epoch(600, 6, d(700))), ['alarm_cleared:partial@600']);
  // A run that starts collapsed has nothing to fall from: partial collapse is relative to the run.
  assert.equal(new CollapseAlarms(1024).epoch(100, 1, d(10)), []);
});

test('epoch records without diagnostics raise nothing', () => {
  const a = new CollapseAlarms(64);
  assert.equal(a.epoch(10, 1, {}), []);
  assert.equal(a.epoch(10, 1, { usage_used: 'n/a', unique_prototypes: null }), []);
});

test('resume: epoch state rebuilt from the log up to the checkpoint step, the streak from the checkpoint', () => {
  const d = (step: number, epoch: number, u: number, used = 20) => ({
    event: 'epoch',
    step,
    epoch,
    unique_prototypes: { '0.025': u },
    usage_used: used,
    eval_test_rows: 500,
    prototypes: 1024,
  });
  const records = [
    { event: 'start' },
    d(100, 1, 1000),
    d(200, 2, 900),
    // An abandoned segment after the checkpoint (a fallback to .prev): left out.
    d(300, 3, 50, 1),
    { event: 'resume', step: 200 },
    { event: 'step', step: 201, loss: 1 },
  ];
  const saved = { ...freshAlarmState(), uniform_streak: 7, active: ['uniform' as const] };
  const a = resumedAlarms(1024, 10, saved, records, 200);
  const s = a.state();
  assert.is(s.peak_unique, 1000);
  assert.is(s.peak_unique_step, 100);
  assert.is(s.uniform_streak, 7);
  assert.equal(s.active, ['uniform']);
  // The recovered peak makes the next epoch's fall an alarm.
  assert.equal(kinds(a.epoch(300, 3, d(300, 3, 400))), ['alarm:partial@300']);
  // The streak continues: 3 more steps complete a window of 10 — but uniform is already active.
  assert.equal(feed(a, [Math.log(1024), Math.log(1024), Math.log(1024)], 201), []);
  // An alarm the log shows active is not raised again.
  const b = resumedAlarms(1024, 10, undefined, [d(100, 1, 1000, 2)], 100);
  assert.ok(b.isActive('usage'));
  assert.equal(b.epoch(200, 2, d(200, 2, 1000, 2)), []);
});

test('parseAlarmState: old or malformed metadata gives undefined', () => {
  assert.is(parseAlarmState(undefined), undefined);
  assert.is(parseAlarmState({ uniform_streak: -1, active: [], peak_unique: 0, peak_unique_step: 0 }), undefined);
  assert.equal(
    parseAlarmState({ uniform_streak: 3, active: ['usage', 'bogus'], peak_unique: 9, peak_unique_step: 4 }),
    { uniform_streak: 3, active: ['usage'], peak_unique: 9, peak_unique_step: 4 },
  );
});

test.run();
