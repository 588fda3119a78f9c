// protodino analyze from the command line: exact counts on a checkpoint with known duplicate
// groups, and the same reading of a PyTorch DINO checkpoint (.pth) as a naive host count.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { loadPrototypes } from '../../src/cli/analyze.js';
import { rng } from '../helpers/check.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/fixtures/pth/', import.meta.url));

function runJson(args: string[]): any {
  const r = spawnSync(process.execPath, [cli, 'analyze', ...args, '--json', '--backend', 'wasm'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Naive greedy count on L2-normalised rows (reference). */
function naiveGreedy(data: Float32Array, K: number, D: number, eps: number): number {
  const w = new Float64Array(K * D);
  for (let i = 0; i < K; i++) {
    let n = 0;
    for (let j = 0; j < D; j++) n += data[i * D + j] ** 2;
    n = Math.sqrt(n) || 1;
    for (let j = 0; j < D; j++) w[i * D + j] = data[i * D + j] / n;
  }
  const kept: number[] = [];
  for (let i = 0; i < K; i++) {
    const far = kept.every((k) => {
      let d = 0;
      for (let j = 0; j < D; j++) d += (w[i * D + j] - w[k * D + j]) ** 2;
      return Math.sqrt(d) >= eps;
    });
    if (far) kept.push(i);
  }
  return kept.length;
}

test('analyze counts known duplicate groups exactly (both rules, several eps)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-analyze-'));
  const sizes = [8, 5, 4, 2, 1];
  const D = 16,
    r = rng(3);
  const centres = sizes.map(() => Array.from({ length: D }, () => r() - 0.5));
  const rows: number[] = [];
  // Interleave the groups; members are scaled copies plus a perturbation far below eps.
  const order = sizes.flatMap((s, g) => Array.from({ length: s }, () => g)).sort(() => r() - 0.5);
  for (const g of order) {
    const scale = 0.5 + 2 * r();
    for (let j = 0; j < D; j++) rows.push(scale * (centres[g][j] + 1e-5 * (r() - 0.5)));
  }
  const K = order.length;
  const file = join(dir, 'ck.safetensors');
  writeSafetensors(file, {
    'teacher.head.last_layer.weight_v': { dtype: 'F32', shape: [K, D], data: Float32Array.from(rows) },
  });
  const out = runJson([file, '--eps', '0.025,0.1']);
  assert.is(out.prototypes, K);
  for (const e of out.perEps) {
    assert.is(e.greedy, 5, `greedy at eps ${e.eps}`);
    assert.is(e.components, 5, `components at eps ${e.eps}`);
    assert.equal(e.greedyGroupSizes, sizes);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('analyze reads a PyTorch DINO checkpoint (.pth) and matches a naive count', () => {
  const file = join(fixtures, 'dino-checkpoint.pth');
  const p = loadPrototypes(file);
  assert.match(p.source, /teacher/);
  const [K, D] = p.shape;
  const out = runJson([file, '--eps', '0.025,0.5']);
  assert.is(out.prototypes, K);
  assert.is(out.perEps[0].greedy, naiveGreedy(p.data, K, D, 0.025));
  assert.is(out.perEps[1].greedy, naiveGreedy(p.data, K, D, 0.5));
});

test('--eps_metric cosine: ε is 1 − cos, said in the output', () => {
  const dir = mkdtempSync(join(tmpdir(), 'protodino-analyze-'));
  try {
    // Two unit vectors with cos 0.96: Euclidean distance √(2·0.04) ≈ 0.283, 1 − cos = 0.04.
    const c = 0.96,
      s = Math.sqrt(1 - c * c);
    const file = join(dir, 'ck.safetensors');
    writeSafetensors(file, {
      'teacher.head.last_layer.weight_v': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 0, c, s]) },
    });
    const euc = runJson([file, '--eps', '0.05,0.3']);
    const cos = runJson([file, '--eps', '0.05,0.3', '--eps_metric', 'cosine']);
    assert.is(euc.epsMetric, 'euclidean');
    assert.is(cos.epsMetric, 'cosine');
    assert.equal(
      euc.perEps.map((e: { greedy: number }) => e.greedy),
      [2, 1],
    );
    assert.equal(
      cos.perEps.map((e: { greedy: number }) => e.greedy),
      [1, 1],
    );
    const text = spawnSync(process.execPath, [cli, 'analyze', file, '--eps_metric', 'cosine', '--backend', 'wasm'], {
      encoding: 'utf8',
    });
    assert.match(text.stdout, /eps metric: cosine \(eps = 1 - cos/);
    const plain = spawnSync(process.execPath, [cli, 'analyze', file, '--backend', 'wasm'], { encoding: 'utf8' });
    assert.match(plain.stdout, /eps metric: euclidean/);
    const bad = spawnSync(process.execPath, [cli, 'analyze', file, '--eps_metric', 'angle'], { encoding: 'utf8' });
    assert.match(bad.stderr, /--eps_metric must be euclidean or cosine, got 'angle'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analyze refuses bad flags and files with a clear message', () => {
  const r = spawnSync(process.execPath, [cli, 'analyze', '/nonexistent.safetensors'], { encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /nonexistent/);
  const r2 = spawnSync(process.execPath, [cli, 'analyze', join(fixtures, 'dino-checkpoint.pth'), '--eps', 'x'], {
    encoding: 'utf8',
  });
  assert.match(r2.stderr, /--eps takes numbers/);
});

test('analyze and report --help say what ε measures: a distance between unit prototypes', () => {
  for (const cmd of ['analyze', 'report']) {
    const r = spawnSync(process.execPath, [cli, cmd, '--help'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /ε²\/2/, `${cmd} --help`);
  }
  const a = spawnSync(process.execPath, [cli, 'analyze', '--help'], { encoding: 'utf8' });
  assert.match(a.stdout, /Euclidean distance between unit prototypes/);
});

test.run();
