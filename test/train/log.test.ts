import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlLogger, readJsonl, toJsonLine } from '../../src/train/log.js';

const test = suite('jsonl log');
const dir = mkdtempSync(join(tmpdir(), 'protodino-log-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('non-finite numbers, bigints and typed arrays have a JSON spelling', () => {
  assert.is(
    toJsonLine({ a: NaN, b: Infinity, c: -Infinity, d: 1.5, e: [NaN, 2] }),
    '{"a":"NaN","b":"Infinity","c":"-Infinity","d":1.5,"e":["NaN",2]}',
  );
  assert.is(
    toJsonLine({ big: 12n, huge: 2n ** 60n, f: Float32Array.of(0.5, NaN) }),
    '{"big":12,"huge":"1152921504606846976","f":[0.5,"NaN"]}',
  );
});

test('round trip, with a truncated last line left out', () => {
  const path = join(dir, 'a.jsonl');
  const log = new JsonlLogger(path);
  const records = [
    { epoch: 0, step: 1, loss: 10.83, lr: 1.25e-4 },
    { epoch: 0, step: 2, loss: NaN, nested: { g: Infinity, h: [-Infinity, 1] } },
    { epoch: 1, note: 'ünïcode ✓', ok: true, nothing: null },
  ];
  for (const r of records) log.write(r);
  log.close();
  assert.throws(() => log.write({}), /closed/);
  assert.is(readFileSync(path, 'utf8').split('\n').length, 4, 'one line per record and a final newline');

  let got = readJsonl(path);
  assert.equal(got, { records, truncated: false });
  assert.equal(readJsonl(path, { reviveNonFinite: false }).records[1], {
    epoch: 0,
    step: 2,
    loss: 'NaN',
    nested: { g: 'Infinity', h: ['-Infinity', 1] },
  });

  appendFileSync(path, '{"epoch": 1, "step": 3, "lo');
  got = readJsonl(path);
  assert.equal(got, { records, truncated: true });

  // Reopening cuts the unfinished line, so new lines start clean and nothing is glued together.
  const again = new JsonlLogger(path);
  again.write({ epoch: 2 });
  again.close();
  assert.equal(readJsonl(path), { records: [...records, { epoch: 2 }], truncated: false });
});

test('timestamps: every record gets the wall-clock time in Unix seconds', () => {
  const path = join(dir, 't.jsonl');
  const before = Date.now() / 1000;
  const log = new JsonlLogger(path, { timestamps: true });
  log.write({ step: 1 });
  log.close();
  const [r] = readJsonl(path).records as { step: number; time: number }[];
  assert.is(r.step, 1);
  assert.ok(r.time >= Math.floor(before) && r.time <= Date.now() / 1000 + 1, String(r.time));
});

test('a complete last line without its newline counts; a bad middle line throws with its number', () => {
  const path = join(dir, 'b.jsonl');
  writeFileSync(path, '{"a":1}\n{"b":2}');
  assert.equal(readJsonl(path), { records: [{ a: 1 }, { b: 2 }], truncated: false });
  writeFileSync(path, '{"a":1}\n{"b":\n{"c":3}\n');
  assert.throws(() => readJsonl(path), /b\.jsonl:2: not a JSON line/);
  writeFileSync(path, '{"unfinished": "only line');
  new JsonlLogger(path).close();
  assert.is(readFileSync(path, 'utf8'), '', 'a file holding only an unfinished line is emptied');
});

test('lines logged before a SIGKILL are all on disk', () => {
  const path = join(dir, 'killed.jsonl');
  const mod = new URL('../../src/train/log.js', import.meta.url).href;
  const script = `import { JsonlLogger } from ${JSON.stringify(mod)};
    const log = new JsonlLogger(${JSON.stringify(path)});
    for (let i = 0; i < 200; i++) log.write({ step: i, loss: 1 / (i + 1) });
    process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.is(r.signal, 'SIGKILL', r.stderr);
  const { records, truncated } = readJsonl<{ step: number }>(path);
  assert.is(truncated, false);
  assert.equal(
    records.map((x) => x.step),
    Array.from({ length: 200 }, (_, i) => i),
  );
});

test.run();
