// The report laid out by headless Chromium at 1280 px: a report over a grid of runs the size of the
// experiments' (12 runs, long names, every diagnostic of the trainer's epoch records plus unknown
// ones, settings that differ, alarms with long messages) must not overflow sideways; and the
// measurement must catch a table that does. Log-only run directories keep it fast.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { generateReport } from '../../src/report/index.js';
import { measureLayout, overflowProblems } from '../helpers/chromium.js';

const root = mkdtempSync(join(tmpdir(), 'protodino-report-layout-'));
let page = '';

function runDir(name: string, records: object[]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'log.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return dir;
}

test.before(async () => {
  const dirs: string[] = [];
  let i = 0;
  for (const setting of ['frozen', 'full'])
    for (const method of ['dino', 'sinkhorn'])
      for (const seed of [0, 1, 2]) {
        const kp = i % 2 === 0 ? 0.1 : 0;
        const name = `${setting}-longtail-${method}${kp ? '-kp' : ''}-s${seed}`;
        const config = {
          out_dim: 1024,
          koleo_proto: kp,
          centering: method === 'dino' ? 'centering' : 'sinkhorn',
          freeze_backbone: setting === 'frozen',
          seed,
          lr: 0.0005 * (1 + seed),
          global_crops_scale: [0.4, 1],
          output_dir: `runs/experiments/${name}`,
        };
        const records: object[] = [{ event: 'start', config }];
        for (let s = 1; s <= 40; s++) records.push({ event: 'step', step: s * 50, epoch: 0, loss: 6.93 - s * 0.01 });
        for (let e = 1; e <= 4; e++)
          records.push({
            event: 'epoch',
            epoch: e,
            step: e * 500,
            loss: 6.5,
            unique_prototypes: { '0.025': 1024 - 200 * e, '0.1': 900 - 200 * e },
            eps_metric: 'euclidean',
            prototypes: 1024,
            usage_used: 300 + e,
            usage_entropy: 5.71234,
            usage_entropy_fraction: 0.8234,
            knn_top1: 0.836,
            knn_k: 20,
            eval_train_rows: 5000,
            eval_test_rows: 1000,
            eval_seconds: 12.345,
            // Diagnostics the labels table does not know: they still need room.
            head_weight_norm_ratio: 1.0234,
            teacher_student_agreement_fraction: 0.5123,
            projector_output_entropy_bits: 9.87654,
          });
        if (i % 4 === 1)
          records.push({
            event: 'alarm',
            kind: 'partial',
            step: 1500,
            epoch: 3,
            message:
              'partial collapse - unique prototypes at eps 0.025 fell to 224, below half of the highest count so far (1024 at step 500); the head is merging its prototypes into a few groups',
          });
        dirs.push(runDir(name, records));
        i++;
      }
  const be = await WasmBackend.create({ threads: 1, build: 'simd' });
  try {
    page = (await generateReport(dirs, { out: join(root, 'out', 'report.html'), backend: be, noGallery: true })).html;
  } finally {
    be.destroy();
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test('a 12-run grid report fits 1280 px without horizontal overflow', () => {
  const l = measureLayout(page, 1280);
  assert.is(l.innerWidth, 1280, 'laid out at 1280 px');
  assert.equal(overflowProblems(l), []);
  // The unknown diagnostics and the known ones do not fit one table: the details are split.
  const html = readFileSync(page, 'utf8');
  assert.ok(html.includes('<table id="details-table-2">'), 'details split over two tables');
  assert.match(html, /<th>test images<\/th>/);
  assert.match(html, /<th>projector output entropy bits<\/th>/);
});

test('the measurement catches a table wider than the page', () => {
  const wide = `<table id="too-wide"><tr>${Array.from({ length: 30 }, (_, i) => `<td style="white-space:nowrap">column ${i} wide value</td>`).join('')}</tr></table>`;
  const l = measureLayout(page, 1280, (h) => h.replace('<section id="alarms">', `${wide}<section id="alarms">`));
  const problems = overflowProblems(l);
  assert.ok(
    problems.some((p) => p.startsWith('the page scrolls sideways')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('wide table: table#too-wide')),
    problems.join('\n'),
  );
});

test('the measurement catches a wide table in a scrolling box (the page itself does not scroll)', () => {
  const wide = `<div style="overflow-x:auto"><table id="boxed"><tr><td style="white-space:nowrap">${'x'.repeat(600)}</td></tr></table></div>`;
  const l = measureLayout(page, 1280, (h) => h.replace('<section id="alarms">', `${wide}<section id="alarms">`));
  assert.is(l.scrollWidth, l.clientWidth, 'the box scrolls, not the page');
  assert.ok(
    overflowProblems(l).some((p) => p.startsWith('wide table: table#boxed')),
    overflowProblems(l).join('\n'),
  );
});

test.run();
