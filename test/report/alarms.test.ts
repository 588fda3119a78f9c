// The report marks collapse alarms: a badge in the results table for each kind a run raised (red
// while it stands, grey once cleared), a row per alarm event, a dashed line and a label at the
// event's step on the plots over steps, and nothing for a run without any.
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

const normGrowth = {
  event: 'alarm',
  kind: 'norm_growth',
  step: 5,
  epoch: 2,
  tensor: 'student.head.last_layer.weight_v',
  message: 'the norm of student.head.last_layer.weight_v grew 12× over its initial value',
};

const collapsed = runDir('collapsed', [
  { event: 'start', config: { out_dim: 64, lr: 0 } },
  ...steps(6, 4.159),
  uniform,
  usage,
  normGrowth,
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
      ['norm_growth', 5, false],
      ['usage', 6, true],
    ],
  );
  assert.equal(activeAlarms(r), ['uniform', 'norm_growth']);
  assert.equal(loadRun(healthy).alarms, []);
});

let html = '';

test.before(async () => {
  const be = await WasmBackend.create({ threads: 1, build: 'simd' });
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
});

test('HTML: a badge per alarmed run, a row per alarm event, none for the healthy run', () => {
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
  assert.match(row('collapsed'), /<span class="alarm" [^>]*>ALARM: parameter norm growth \(step 5\)<\/span>/);
  assert.is((section.match(/<tr/g) ?? []).length, 5, 'header and four events');
  assert.match(section, /<td class="l">parameter norm growth<\/td>/);
  assert.match(
    section,
    /<td class="l">collapsed<\/td><td>6<\/td><td>2<\/td><td class="l">cleared<\/td><td class="l">usage collapse<\/td>/,
  );
  assert.not.match(section, />healthy</);
});

test('the loss plot marks each alarm event at its step: a dashed rule and a label', () => {
  const svg = /<section id="loss">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
  const rules = [...svg.matchAll(/<line aria-label="step: (\d+)"[^>]*stroke="(#[0-9a-f]+)"[^>]*stroke-dasharray/g)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  // Raised alarms red, the cleared one grey.
  assert.equal(rules.sort(), ['3 #c62828', '4 #c62828', '5 #c62828', '6 #9e9e9e']);
  const labels = [...svg.matchAll(/<text aria-label="step: (\d+); label: [^"]*"[^>]*>([^<]*)<\/text>/g)].map(
    (m) => `${m[1]} ${m[2]}`,
  );
  assert.equal(labels.sort(), [
    '3 uniform collapse (collapsed)',
    '4 usage collapse (collapsed)',
    '5 parameter norm growth (collapsed)',
    '6 usage collapse cleared (collapsed)',
  ]);
  // Each rule stands at its step on the plot's own step axis: 4 is one step right of 3, and so on.
  const x = [...svg.matchAll(/<line aria-label="step: (\d+)"[^>]*transform="translate\(([\d.]+),0\)"/g)]
    .map((m) => [Number(m[1]), Number(m[2])])
    .sort((a, b) => a[0] - b[0]);
  const dx = x[1][1] - x[0][1];
  assert.ok(dx > 0);
  for (let i = 1; i < x.length; i++) assert.ok(Math.abs(x[i][1] - x[i - 1][1] - dx) < 0.5, `rule ${x[i][0]} in place`);
  assert.match(html, /Dashed vertical lines: alarm events at their step/);
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
