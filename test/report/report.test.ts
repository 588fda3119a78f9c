// protodino report end to end: two tiny PCA prototype runs with the train command's own per-epoch
// diagnostics (so the log holds every key a real run writes), one report over both, its HTML
// structure, no raw key on the page, and the page as headless Chromium renders it: SVG plots with
// real paths in the DOM, a screenshot that is not blank, nothing overflowing sideways at 1280 px.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { train } from '../../src/train/trainer.js';
import { DEFAULTS, type TrainConfig } from '../../src/train/config.js';
import { epochDiagnostics } from '../../src/train/diagnostics.js';
import { generateReport, parseEpochRecord, type ReportResult } from '../../src/report/index.js';
import { chromiumBinary, chromiumFlags, measureLayout, overflowProblems } from '../helpers/chromium.js';

const root = mkdtempSync(join(tmpdir(), 'protodino-report-'));
const tiny: Partial<TrainConfig> = {
  arch: 'pca',
  prototypes_only: true,
  subset: 512,
  batch_size: 64,
  out_dim: 64,
  max_steps: 16,
  epochs: 2,
  freeze_last_layer: 0,
  quiet: true,
  log_every: 2,
  local_crops_number: 2,
  eval_train_max: 512,
  eval_test_max: 256,
};

let result: ReportResult;
let html = '';

test.before(async () => {
  const be = await WasmBackend.create({ threads: 2, build: 'simd' });
  try {
    for (const [name, c] of [
      ['base', { lr: 0.0005 }],
      ['highlr', { lr: 0.05, koleo_proto: 0.1 }],
    ] as const) {
      const cfg: TrainConfig = { ...DEFAULTS, ...tiny, ...c, output_dir: join(root, name) };
      // The hook the train command installs (eval_every_epoch), quiet.
      await train(cfg, { backend: be, onEpoch: epochDiagnostics(cfg, () => {}) });
    }
    result = await generateReport([join(root, 'base'), join(root, 'highlr')], {
      out: join(root, 'out', 'report.html'),
      backend: be,
      galleryImages: 500,
    });
  } finally {
    be.destroy();
  }
  html = readFileSync(result.html, 'utf8');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test('epoch records: unique counts, k-NN and other numbers are picked up by key', () => {
  const e = parseEpochRecord({
    event: 'epoch',
    epoch: 2,
    step: 16,
    loss: 1.5,
    'unique_0.025': 40,
    unique_prototypes: { '0.1': 12 },
    knn_top1: 0.7,
    usage_entropy: 3.2,
    note: 'x',
  });
  assert.equal(e.unique, { '0.025': 40, '0.1': 12 });
  assert.is(e.knnTop1, 0.7);
  assert.equal(e.extra, { usage_entropy: 3.2 });
  const bare = parseEpochRecord({ event: 'epoch', epoch: 1, step: 8 });
  assert.equal(bare.unique, {});
  assert.is(bare.knnTop1, undefined);
});

test('the report reads both runs and measures their checkpoints', () => {
  assert.is(result.runs.length, 2);
  for (const [i, r] of result.runs.entries()) {
    assert.is(r.steps.at(-1)?.step, 16, `${r.name} steps`);
    assert.is(r.epochs.length, 2, `${r.name} epoch records`);
    assert.ok(
      r.epochs.every((e) => e.knnTop1 !== undefined && e.unique['0.025'] > 0),
      `${r.name} diagnostics`,
    );
    const a = result.analyses[i];
    assert.is(a.unique?.prototypes, 64);
    // The checkpoint is the last epoch's state, so the report's count equals the logged one.
    assert.is(a.unique!.perEps[0].unique, r.epochs.at(-1)!.unique['0.025'], `${r.name} unique at 0.025`);
    assert.is(a.gallery?.images, 500);
    // The ε sweep in both conventions; at equal ε, 1 − cos is the looser rule, so it counts no more.
    const sweep = a.unique!.sweep;
    assert.equal(
      sweep.map((p) => `${p.metric} ${p.eps}`),
      ['euclidean', 'cosine'].flatMap((m) => [0.025, 0.05, 0.1, 0.25, 0.5].map((e) => `${m} ${e}`)),
    );
    for (let j = 0; j < 5; j++)
      assert.ok(sweep[5 + j].unique <= sweep[j].unique, `cosine ≤ Euclidean at ${sweep[j].eps}`);
    assert.is(sweep[0].unique, a.unique!.perEps[0].unique, 'the sweep at 0.025 is the table count');
  }
});

test('prototype spread: both runs measured from their checkpoints, one row of two panels each', () => {
  for (const [i, r] of result.runs.entries()) {
    const s = result.analyses[i].spread!;
    assert.is(s.prototypes, 64, r.name);
    assert.is(s.angles.pairs, (64 * 63) / 2);
    assert.is(
      s.angles.counts.reduce((a, b) => a + b, 0),
      s.angles.pairs,
    );
    assert.is(s.projection.x.length, 64);
    assert.ok(s.projection.explained[0] >= s.projection.explained[1] && s.projection.explained[0] <= 1);
  }
  const sec = /<section id="spread">([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
  for (const r of result.runs) assert.ok(sec.includes(`>${r.name}</text>`), `a row titled ${r.name}`);
  assert.is((sec.match(/pairs within 10°<\/text>/g) ?? []).length, 2, 'an angle histogram per run');
  assert.is((sec.match(/>principal axis 1 \(\d+\.\d% of variance\)<\/text>/g) ?? []).length, 2);
  assert.match(sec, '>prototypes per cell</text>');
  assert.match(sec, 'K(K − 1)/2 pairs');
});

test('HTML: one self-contained page with every section, plot and gallery image', () => {
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  for (const t of [
    'Results',
    'Training loss',
    'Unique prototypes over training',
    'k-NN over training',
    'Nearest-neighbour similarity',
    'Unique prototypes against ε',
    'Prototype spread',
    'Prototype gallery',
  ]) {
    assert.ok(html.includes(`<h2>${t}</h2>`), `section '${t}'`);
  }
  for (const id of ['loss', 'unique', 'sweep', 'knn', 'nn', 'spread']) {
    const sec = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(html)?.[1] ?? '';
    assert.is((sec.match(/<svg[\s>]/g) ?? []).length, 1, `one plot in section ${id}`);
    assert.ok(existsSync(result.html.replace(/\.html$/, `.${id}.svg`)), `${id}.svg written`);
  }
  assert.is(result.svgs.length, 6);
  assert.match(html, /<p class="note" id="eps-metric">ε metric: Euclidean/);
  const table = /<table id="results-table">[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  assert.ok(table.includes('base') && table.includes('highlr'), 'both runs in the table');
  const settings = /<table id="settings-table">[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  assert.match(settings, /<span title="--koleo_proto">KoLeo-proto weight <b>0\.1<\/b><\/span>/);
  assert.match(settings, /<span title="--lr">learning rate <b>0\.05<\/b><\/span>/);
  const gallery = /<section id="gallery">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
  const imgs = gallery.match(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/g) ?? [];
  assert.ok(imgs.length >= 16, `gallery images: ${imgs.length}`);
  // No external reference: no src/href/url() leaving the file.
  assert.not.match(html, /\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
  assert.not.match(html, /url\(\s*["']?(?:https?:)?\/\//i);
  assert.not.match(html, /<script/i);
  assert.not.match(html, /<link[\s>]/i);
});

/** The text a reader sees: tags (and so attributes, tooltips included), style and entities gone. */
function visibleText(page: string): string {
  return page
    .replace(/<style>[\s\S]*?<\/style>/g, ' ')
    .replace(/<title>[\s\S]*?<\/title>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&[a-z#0-9]+;/gi, ' ');
}

test('no raw key reaches the page: every column, axis and setting has a human label', () => {
  // The log of a real run holds the keys a reader must not see (eval_test_rows, usage_entropy_fraction…).
  const logged = Object.keys(result.runs[0].epochs.at(-1)!.extra);
  for (const k of ['eval_test_rows', 'eval_train_rows', 'usage_entropy_fraction', 'eval_seconds', 'knn_k'])
    assert.ok(logged.includes(k), `the log has ${k}`);
  const text = visibleText(html);
  const snake = [...new Set(text.match(/\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b/g) ?? [])];
  assert.equal(snake, [], `snake_case on the page: ${snake.join(', ')}`);
  for (const label of ['test images', 'k-NN bank images', 'usage entropy (% of max)', 'k-NN top-1 (%)'])
    assert.ok(text.includes(label), `label '${label}'`);
  // The plots' axis titles and legends too (their SVG text is part of the page's text).
  for (const id of ['loss', 'knn', 'unique', 'sweep', 'nn', 'spread']) {
    const svg = readFileSync(result.html.replace(/\.html$/, `.${id}.svg`), 'utf8');
    const t = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).join(' ');
    assert.not.match(t, /\b[a-z]+_[a-z0-9_]+\b/, `${id}.svg`);
  }
});

test('percentages: one decimal, the k-NN of the table as the log has it', () => {
  const table = /<table id="results-table">[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
  for (const r of result.runs) {
    const knn = (100 * r.epochs.at(-1)!.knnTop1!).toFixed(1);
    const row = table.split('<tr').find((t) => t.includes(`>${r.name}`)) ?? '';
    assert.ok(row.endsWith(`<td>${knn}</td></tr>`) || row.includes(`<td>${knn}</td></tr>`), `${r.name}: ${knn}`);
  }
  assert.not.match(visibleText(html), /[−-]0\.0\b/);
});

test('headless Chromium at 1280 px: no element overflows sideways, every table fits its container', () => {
  const l = measureLayout(result.html, 1280);
  assert.is(l.innerWidth, 1280, 'laid out at 1280 px');
  assert.equal(overflowProblems(l), []);
});

test('headless Chromium renders the plots and a non-blank page', () => {
  const bin = chromiumBinary();
  const profile = mkdtempSync(join(tmpdir(), 'protodino-chromium-'));
  const shot = join(root, 'shot.png');
  const flags = chromiumFlags(profile, 1200, 2000);
  const url = `file://${result.html}`;
  try {
    const dom = spawnSync(bin, [...flags, '--dump-dom', url], {
      encoding: 'utf8',
      timeout: 30000,
      maxBuffer: 64 << 20,
    });
    assert.is(dom.status, 0, `chromium --dump-dom failed: ${dom.stderr?.slice(-500)}`);
    for (const id of ['loss', 'unique', 'sweep', 'knn', 'nn', 'spread']) {
      const sec = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(dom.stdout)?.[1] ?? '';
      const paths = [...sec.matchAll(/<path[^>]*\sd="([^"]+)"/g)]
        .map((m) => m[1])
        .filter((d) => /\d/.test(d) && d.length > 8);
      assert.ok(paths.length >= 2, `section ${id}: ${paths.length} drawn paths in the rendered DOM`);
    }
    assert.ok((dom.stdout.match(/<img src="data:image\/png/g) ?? []).length >= 16, 'gallery images in the DOM');
    const run = spawnSync(bin, [...flags, `--screenshot=${shot}`, url], { encoding: 'utf8', timeout: 30000 });
    assert.is(run.status, 0, `chromium --screenshot failed: ${run.stderr?.slice(-500)}`);
    const png = PNG.sync.read(readFileSync(shot));
    assert.is(png.width, 1200);
    let ink = 0;
    for (let p = 0; p < png.width * png.height; p++) {
      const o = p * 4;
      if (png.data[o] < 235 || png.data[o + 1] < 235 || png.data[o + 2] < 235) ink++;
    }
    const frac = ink / (png.width * png.height);
    assert.ok(frac > 0.02, `only ${(100 * frac).toFixed(2)}% of the screenshot is not white`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});

test.run();
