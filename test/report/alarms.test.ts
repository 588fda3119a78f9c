// The report marks collapse alarms: a badge in the results table for each kind a run raised (red
// while it stands, grey once cleared), a row per alarm event, and nothing for a run without any.
// Log-only run directories keep this fast: the alarms come from log.jsonl alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { activeAlarms, generateReport, loadRun } from '../../src/report/index.js';

const root = mkdtempSync(join(tmpdir(), 'protodino-report-alarms-'));

function runDir(name: string, records: object[]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'log.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return dir;
}

const steps = (n: number, loss: number) =>
  Array.from({ length: n }, (_, i) => ({ event: 'step', step: i + 1, epoch: 0, loss }));
const uniform = {
  event: 'alarm',
  kind: 'uniform',
  step: 3,
  epoch: 1,
  message: 'uniform collapse - loss 4.159 within 1% of ln 64 = 4.159 for 3 steps',
};
const usage = {
  event: 'alarm',
  kind: 'usage',
  step: 4,
  epoch: 1,
  message: "usage collapse - the teacher's argmax uses 1 of 64 prototypes",
};

const collapsed = runDir('collapsed', [
  { event: 'start', config: { out_dim: 64, lr: 0 } },
  ...steps(6, 4.159),
  uniform,
  usage,
  // A resumed run that re-ran step 3 logged the same alarm again: shown once.
  { event: 'resume', step: 2 },
  uniform,
  {
    event: 'alarm_cleared',
    kind: 'usage',
    step: 6,
    epoch: 2,
    message: "usage collapse cleared - the teacher's argmax uses 9 of 64 prototypes",
  },
]);
const healthy = runDir('healthy', [{ event: 'start', config: { out_dim: 64, lr: 0.05 } }, ...steps(6, 2.5)]);

test.after(() => rmSync(root, { recursive: true, force: true }));

test('loadRun: alarm events, duplicates from a resume dropped, the kinds still standing at the end', () => {
  const r = loadRun(collapsed);
  assert.equal(
    r.alarms.map((a) => [a.kind, a.step, a.cleared]),
    [
      ['uniform', 3, false],
      ['usage', 4, false],
      ['usage', 6, true],
    ],
  );
  assert.equal(activeAlarms(r), ['uniform']);
  assert.equal(loadRun(healthy).alarms, []);
});

test('HTML: a badge per alarmed run, a row per alarm event, none for the healthy run', async () => {
  const be = await WasmBackend.create({ threads: 1, build: 'simd' });
  let html: string;
  try {
    const r = await generateReport([collapsed, healthy], {
      out: join(root, 'out', 'report.html'),
      backend: be,
      noGallery: true,
    });
    html = readFileSync(r.html, 'utf8');
  } finally {
    be.destroy();
  }
  const table = /<table id="results-table">[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  const rows = table.split('<tr').slice(2); // after the header row
  const row = (name: string) => rows.find((t) => t.includes(`>${name}`)) ?? '';
  assert.match(row('collapsed'), /^ class="alarmed"/);
  assert.match(
    row('collapsed'),
    /<span class="alarm" title="uniform collapse - loss 4\.159[^"]*">ALARM: uniform collapse \(step 3\)<\/span>/,
  );
  assert.match(row('collapsed'), /<span class="alarm cleared" [^>]*>ALARM: usage collapse \(step 4\), cleared<\/span>/);
  assert.not.match(row('healthy'), /alarm/);
  const section = /<section id="alarms">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
  assert.is((section.match(/<tr/g) ?? []).length, 4, 'header and three events');
  assert.match(
    section,
    /<td class="l">collapsed<\/td><td>6<\/td><td>2<\/td><td class="l">cleared<\/td><td class="l">usage collapse<\/td>/,
  );
  assert.not.match(section, />healthy</);
});

test('HTML: no alarm anywhere says so', async () => {
  const be = await WasmBackend.create({ threads: 1, build: 'simd' });
  try {
    const r = await generateReport([healthy], { out: join(root, 'out2', 'report.html'), backend: be, noGallery: true });
    const html = readFileSync(r.html, 'utf8');
    assert.match(
      html,
      /<section id="alarms"><h2>Collapse alarms<\/h2>\s*<p class="note">No collapse alarm in these logs/,
    );
    assert.not.match(html, /class="alarm/);
  } finally {
    be.destroy();
  }
});

test.run();
