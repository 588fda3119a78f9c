import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, Progress } from '../../src/train/progress.js';

const test = suite('progress');

function fake(isTTY: boolean, columns = 200) {
  const writes: string[] = [];
  let t = 0;
  return {
    writes,
    set: (ms: number) => void (t = ms),
    stream: { write: (s: string) => writes.push(s), isTTY, columns },
    now: () => t,
  };
}

test('formatDuration', () => {
  assert.is(formatDuration(0), '0s');
  assert.is(formatDuration(7.4), '7s');
  assert.is(formatDuration(65), '1m05s');
  assert.is(formatDuration(3725), '1h02m05s');
  assert.is(formatDuration(NaN), '--');
  assert.is(formatDuration(Infinity), '--');
});

test('not a terminal: one plain line at the start, then at most one per interval', () => {
  const f = fake(false);
  const p = new Progress({ stream: f.stream, now: f.now, intervalS: 10 });
  const at = (ms: number, step: number, loss = 10.5): void => {
    f.set(ms);
    p.update({ epoch: 0, epochs: 3, step, total: 100, images: step * 64, loss });
  };
  at(0, 0);
  at(1000, 1);
  at(9999, 9);
  at(10000, 10, 9.25);
  at(15000, 15);
  f.set(16000);
  p.done({ epoch: 0, epochs: 3, step: 16, total: 100, images: 16 * 64, loss: NaN });
  assert.equal(f.writes, [
    'epoch 1/3  step 0/100 (0.0%)  -- img/s  loss 10.5  ETA --\n',
    'epoch 1/3  step 10/100 (10.0%)  64.0 img/s  loss 9.25  ETA 1m30s\n',
    'epoch 1/3  step 16/100 (16.0%)  64.0 img/s  loss NaN  ETA 1m24s\n',
  ]);
  assert.ok(
    f.writes.every((w) => !w.includes('\r') && !w.includes('\x1b')),
    'no terminal control codes in logs',
  );
});

test('a new epoch restarts the rate and the ETA', () => {
  const f = fake(false);
  const p = new Progress({ stream: f.stream, now: f.now, intervalS: 10 });
  p.update({ epoch: 0, step: 0, total: 10, images: 0 });
  f.set(50_000);
  p.done({ epoch: 0, step: 10, total: 10, images: 1000 });
  f.set(60_000);
  p.update({ epoch: 1, step: 1, total: 10, images: 100 });
  f.set(70_000);
  p.update({ epoch: 1, step: 5, total: 10, images: 500, extra: { lr: 0.000125, wd: 0.04 } });
  assert.equal(f.writes, [
    'epoch 1  step 0/10 (0.0%)  -- img/s  ETA --\n',
    'epoch 1  step 10/10 (100.0%)  20.0 img/s  ETA 0s\n',
    'epoch 2  step 1/10 (10.0%)  -- img/s  ETA --\n',
    'epoch 2  step 5/10 (50.0%)  40.0 img/s  lr 1.250e-4  wd 0.04  ETA 13s\n',
  ]);
});

test('terminal: redrawn in place, throttled, ended with a newline', () => {
  const f = fake(true, 100);
  const p = new Progress({ stream: f.stream, now: f.now, ttyIntervalMs: 100 });
  for (let ms = 0; ms <= 1000; ms += 10) {
    f.set(ms);
    p.update({ epoch: 4, epochs: 100, step: ms / 10, total: 100, images: ms, loss: 1.2345678 });
  }
  p.done({ epoch: 4, epochs: 100, step: 100, total: 100, images: 1000, loss: 1.2 });
  const draws = f.writes.filter((w) => w.startsWith('\r'));
  assert.is(draws.length, 12, 'first draw, one per 100 ms, and the final one');
  assert.ok(
    draws.every((w) => w.endsWith('\x1b[K')),
    'clears the rest of the line',
  );
  assert.is(f.writes.length, 13);
  assert.is(f.writes[12], '\n');
  assert.is(draws[0], '\r[....................]  epoch 5/100  step 0/100 (0.0%)  -- img/s  loss 1.2346  ETA --\x1b[K');
  assert.is(
    draws[5],
    '\r[##########..........]  epoch 5/100  step 50/100 (50.0%)  1000.0 img/s  loss 1.2346  ETA 1s\x1b[K',
  );
  assert.is(
    draws[11],
    '\r[####################]  epoch 5/100  step 100/100 (100.0%)  1000.0 img/s  loss 1.2  ETA 0s\x1b[K',
  );
});

test('terminal: a narrow one gets the line clipped to its width', () => {
  const f = fake(true, 30);
  const p = new Progress({ stream: f.stream, now: f.now });
  p.update({ epoch: 0, step: 3, total: 10, loss: 2 });
  assert.equal(f.writes, ['\r[######..............]  epoch\x1b[K']);
});

test('message: a warning on a line of its own, ending a terminal line being redrawn first', () => {
  const f = fake(true, 200);
  const p = new Progress({ stream: f.stream, now: f.now });
  p.update({ epoch: 0, step: 3, total: 10, loss: 2, extra: { ALARM: 'uniform collapse' } });
  p.message('protodino: alarm: uniform collapse');
  p.message('protodino: second');
  assert.equal(f.writes.slice(1), ['\n', 'protodino: alarm: uniform collapse\n', 'protodino: second\n']);
  assert.match(f.writes[0], /loss 2  ALARM uniform collapse  ETA/);
  const plain = fake(false);
  const q = new Progress({ stream: plain.stream, now: plain.now });
  q.update({ step: 1, total: 10 });
  q.message('protodino: alarm: x');
  assert.is(plain.writes.length, 2, 'a plain line needs no extra newline');
  assert.is(plain.writes[1], 'protodino: alarm: x\n');
});

test.run();
