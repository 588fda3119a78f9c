// The wasm kernels' host tuning (src/backend/wasm/tuning.ts, tuner.ts): no tunable value changes a
// single output bit, the cache round-trips and refuses corrupt or foreign files with a warning, and
// the --tune / PROTODINO_TUNE syntax.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matmulParams, type ConvParams, type MatmulParams, type Storage } from '../../src/backend/backend.js';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { measureTuning, resolveTuning, tuningKey, type Measurement } from '../../src/backend/wasm/tuner.js';
import {
  cacheDir,
  cachePath,
  checkTuning,
  cpuModel,
  DEFAULT_TUNING,
  parseTuneSpec,
  readCache,
  tuningDiff,
  writeCache,
  type Tuning,
} from '../../src/backend/wasm/tuning.js';
import { takeTuneFlag } from '../../src/cli/args.js';

function data(n: number, seed: number): Float32Array {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 2 - 1;
  }
  return d;
}

/** Configurations at the edges of every limit and in between; all must give the defaults' bits. The
 *  k block (kc) included: a sum carried through memory at a block boundary is the same f32 chain. */
const CONFIGS: Tuning[] = [
  'matmul.mc=4,matmul.kc=16,matmul.chunksPerThread=1,matmul.claimFlops=1,matmul.forkFlops=1,matmul.packGrain=1',
  'matmul.mc=256,matmul.kc=512,matmul.chunksPerThread=256,matmul.claimFlops=1073741824,matmul.packGrain=1073741824',
  'matmul.mc=64,matmul.kc=144,matmul.chunksPerThread=8,matmul.claimFlops=131072,matmul.forkFlops=1',
  'matmul.mc=192,matmul.kc=48,matmul.forkFlops=1073741824',
  'matmul.kc=128',
  'conv.chunksPerThread=1,conv.forkFlops=1',
  'conv.chunksPerThread=256,conv.forkFlops=1',
  'conv.chunksPerThread=4,conv.forkFlops=1073741824',
].map((s) => (parseTuneSpec(s) as { tuning: Tuning }).tuning);

interface Case {
  name: string;
  run(be: WasmBackend, out: Storage): void;
  outLength: number;
}

function matmulCase(
  name: string,
  o: Partial<MatmulParams> & Pick<MatmulParams, 'batch' | 'm' | 'n' | 'k'>,
  extra: { bias?: boolean; rowSums?: boolean } = {},
): (be: WasmBackend) => Case {
  return (be) => {
    const p = matmulParams({ strideA: o.m * o.k, strideB: o.k * o.n, ...o });
    const up = (n: number, seed: number) => {
      const s = be.alloc(n, 'f32');
      be.upload(s, data(n, seed));
      return s;
    };
    const a = up(p.batch * p.m * p.k, 1),
      b = up((p.strideB === 0 ? 1 : p.batch) * p.k * p.n, 2);
    const bias = extra.bias ? up(p.n, 3) : null;
    const sums = extra.rowSums ? be.alloc(p.m, 'f32') : null;
    const start = data(p.batch * p.m * p.n, 4);
    return {
      name,
      outLength: p.batch * p.m * p.n,
      run(be2, out) {
        if (p.accumulate) be2.upload(out, start);
        be2.matmul(a, b, out, { ...p, bias, rowSumsA: sums });
        // the row sums ride along with the product: fold them into the checked bits through out's tail
        if (sums) {
          const s = be2.readSync(sums) as Float32Array;
          const o2 = be2.readSync(out) as Float32Array;
          o2.set(s.subarray(0, Math.min(s.length, o2.length)));
          be2.upload(out, o2);
        }
      },
    };
  };
}

function convCase(name: string, which: 'forward' | 'input' | 'weight', p: ConvParams): (be: WasmBackend) => Case {
  return (be) => {
    const up = (n: number, seed: number) => {
      const s = be.alloc(n, 'f32');
      be.upload(s, data(n, seed));
      return s;
    };
    const xLen = p.batch * p.channels * p.height * p.width,
      wLen = p.outChannels * p.channels * p.kernelH * p.kernelW,
      yLen = p.batch * p.outChannels * p.outH * p.outW;
    const x = up(xLen, 5),
      w = up(wLen, 6),
      dy = up(yLen, 7);
    const len = which === 'forward' ? yLen : which === 'input' ? xLen : wLen;
    return {
      name,
      outLength: len,
      run(be2, out) {
        if (which === 'forward') be2.conv2d(x, w, out, p);
        else if (which === 'input') be2.conv2dGradInput(dy, w, out, p);
        else be2.conv2dGradWeight(x, dy, out, p);
      },
    };
  };
}

const conv3 = (batch: number, c: number, size: number, o: number, stride: number): ConvParams => {
  const out = Math.floor((size + 2 - 3) / stride) + 1;
  return {
    batch,
    channels: c,
    height: size,
    width: size,
    kernelH: 3,
    kernelW: 3,
    strideH: stride,
    strideW: stride,
    padH: 1,
    padW: 1,
    outH: out,
    outW: out,
    outChannels: o,
  };
};

// Odd sizes throughout; k = 517 crosses two k-block boundaries at the default kc = 256 and up to 32
// at kc = 16; m = 203 is not a multiple of any mc, so every configuration cuts the rows differently.
const CASES = [
  matmulCase('203x37x517', { batch: 1, m: 203, n: 37, k: 517 }),
  matmulCase(
    'transA, transB, bias, gelu',
    { batch: 1, m: 131, n: 45, k: 300, transA: true, transB: true, activation: 'gelu' },
    { bias: true },
  ),
  matmulCase('accumulate, row sums', { batch: 1, m: 97, n: 19, k: 261, accumulate: true }, { rowSums: true }),
  matmulCase('batched, shared B', { batch: 7, m: 50, n: 50, k: 17, transB: true, strideB: 0 }),
  matmulCase('batched', { batch: 5, m: 65, n: 13, k: 65 }),
  // attention's shape class: a 1-row edge, a narrow column edge, each entry's B packed in its chunk
  matmulCase('batched, edge row and columns', { batch: 6, m: 65, n: 66, k: 70, transB: true }),
  matmulCase(
    'transA, bias, 2 edge rows, 1 edge column',
    { batch: 1, m: 66, n: 65, k: 300, transA: true },
    { bias: true },
  ),
  convCase('conv forward', 'forward', conv3(3, 5, 13, 7, 1)),
  convCase('conv forward, stride 2', 'forward', conv3(2, 6, 11, 9, 2)),
  convCase('conv input grad, stride 2', 'input', conv3(2, 6, 11, 9, 2)),
  convCase('conv weight grad', 'weight', conv3(3, 5, 13, 7, 1)),
];

for (const threads of [1, 2]) {
  test(`${threads} thread${threads > 1 ? 's' : ''}: no tuned value changes a single output bit (matmul, convolutions)`, async () => {
    const be = await WasmBackend.create({ threads, tune: 'off' });
    try {
      for (const make of CASES) {
        const c = make(be);
        const out = be.alloc(c.outLength, 'f32');
        be.rt.tuning = DEFAULT_TUNING;
        c.run(be, out);
        const want = new Uint32Array((be.readSync(out) as Float32Array).buffer);
        for (const t of CONFIGS) {
          be.upload(out, new Float32Array(c.outLength).fill(Number.NaN));
          be.rt.tuning = t;
          c.run(be, out);
          const got = new Uint32Array((be.readSync(out) as Float32Array).buffer);
          const i = got.findIndex((v, j) => v !== want[j]);
          assert.is(i, -1, `${c.name} with ${tuningDiff(t)}: element ${i} differs`);
        }
        be.free(out);
      }
    } finally {
      be.destroy();
    }
  });
}

test('--tune syntax: off, auto, family.param=value lists, files (partial or a cache file), and clear refusals', () => {
  assert.equal(parseTuneSpec('off'), { mode: 'off' });
  assert.equal(parseTuneSpec(' auto '), { mode: 'auto' });
  const inline = parseTuneSpec('matmul.mc=192, conv.chunksPerThread=8');
  assert.is(inline.mode, 'override');
  const t = (inline as { tuning: Tuning }).tuning;
  assert.is(t.matmul.mc, 192);
  assert.is(t.conv.chunksPerThread, 8);
  assert.is(t.matmul.claimFlops, DEFAULT_TUNING.matmul.claimFlops, 'fields not given keep their defaults');
  assert.is(tuningDiff(t), 'matmul.mc=192,conv.chunksPerThread=8');
  assert.is(tuningDiff(DEFAULT_TUNING), 'the defaults');

  assert.throws(
    () => parseTuneSpec('matmul.mc=130'),
    /matmul\.mc must be an integer in 4\.\.256, a multiple of 4, got 130/,
  );
  assert.throws(() => parseTuneSpec('matmul.mc=512'), /4\.\.256/);
  assert.throws(() => parseTuneSpec('matmul.nr=16'), /unknown parameter 'matmul\.nr' \(matmul has mc, kc, /);
  assert.throws(() => parseTuneSpec('matmul.kc=520'), /matmul\.kc must be an integer in 16\.\.512, a multiple of 16/);
  assert.throws(() => parseTuneSpec('attention.mc=8'), /unknown kernel family 'attention'/);
  assert.throws(() => parseTuneSpec('matmul.mc=big'), /got "big"/);
  assert.throws(() => parseTuneSpec('matmul.mc=64,oops'), /'oops' is not family\.param=value/);
  assert.throws(() => parseTuneSpec(''), /expected off, auto/);
  assert.throws(() => parseTuneSpec('/nonexistent/tuning.json'), /cannot be read as a file/);

  const dir = mkdtempSync(join(tmpdir(), 'protodino-tune-'));
  try {
    const partial = join(dir, 'partial.json');
    writeFileSync(partial, JSON.stringify({ matmul: { mc: 64, forkFlops: 1024 } }));
    const p = parseTuneSpec(partial) as { mode: string; tuning: Tuning; detail: string };
    assert.is(p.mode, 'override');
    assert.is(p.detail, partial);
    assert.equal(p.tuning, checkTuning({ matmul: { mc: 64, forkFlops: 1024 } }));
    // a cache file from another host can be forced as it is
    const key = { cpu: 'Other CPU', threads: 2, build: 'simd', wasm: '0123456789abcdef' };
    const cached = cachePath(key, dir);
    writeCache(cached, key, p.tuning, { at: 'then', ms: 1, stages: [] });
    assert.equal((parseTuneSpec(cached) as { tuning: Tuning }).tuning, p.tuning);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"matmul": ');
    assert.throws(() => parseTuneSpec(bad), /is not JSON/);
    writeFileSync(bad, '{"matmul": {"mc": 0}}');
    assert.throws(() => parseTuneSpec(bad), /matmul\.mc must be an integer/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI flag: --tune wins over PROTODINO_TUNE, which wins over the command default; bad values fail early', () => {
  const saved = process.env.PROTODINO_TUNE;
  try {
    delete process.env.PROTODINO_TUNE;
    assert.equal(takeTuneFlag(['--steps', '3'], 'auto'), ['--steps', '3']);
    assert.is(process.env.PROTODINO_TUNE, 'auto');
    process.env.PROTODINO_TUNE = 'matmul.mc=64';
    assert.equal(takeTuneFlag(['a'], 'auto'), ['a']);
    assert.is(process.env.PROTODINO_TUNE, 'matmul.mc=64');
    assert.equal(takeTuneFlag(['a', '--tune', 'off', 'b'], 'auto'), ['a', 'b']);
    assert.is(process.env.PROTODINO_TUNE, 'off');
    assert.equal(takeTuneFlag(['--tune=matmul.mc=96'], 'off'), []);
    assert.is(process.env.PROTODINO_TUNE, 'matmul.mc=96');
    assert.throws(() => takeTuneFlag(['--tune'], 'off'), /--tune needs a value/);
    assert.throws(() => takeTuneFlag(['--tune', 'matmul.mc=3'], 'off'), /multiple of 4/);
  } finally {
    if (saved === undefined) delete process.env.PROTODINO_TUNE;
    else process.env.PROTODINO_TUNE = saved;
  }
});

test('the cache: keyed by CPU, threads, build and binary; round-trips; XDG_CACHE_HOME', () => {
  const key = { cpu: 'AMD EPYC 9B45', threads: 2, build: 'relaxed', wasm: 'aaaaaaaaaaaaaaaa' };
  const names = new Set(
    [
      key,
      { ...key, cpu: 'Intel Xeon' },
      { ...key, threads: 1 },
      { ...key, build: 'simd' },
      { ...key, wasm: 'b'.repeat(16) },
    ].map((k) => cachePath(k, '/c')),
  );
  assert.is(names.size, 5, 'every part of the key names its own file');
  // a VM that names every generation alike is told apart by /proc/cpuinfo's family and model
  const info =
    'processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\ncache size\t: 1024 KB\n';
  assert.match(cpuModel(info), / \(AuthenticAMD, family 26, model 2, stepping 1, 1024 KB cache\)$/);
  // without /proc/cpuinfo only the OS's name is left (itself may hold parentheses: "Intel(R) Xeon(R)")
  assert.not.match(cpuModel(''), /(family|cache)\)$/);
  assert.is.not(cpuModel(info), cpuModel(info.replace('cpu family\t: 26', 'cpu family\t: 25')));
  assert.match(cachePath(key, '/c'), /^\/c\/tuning-relaxed-2t-[0-9a-f]{12}\.json$/);
  assert.is(cacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/protodino');
  assert.match(cacheDir({}), /\/\.cache\/protodino$/);
  assert.match(
    cacheDir({ XDG_CACHE_HOME: 'relative' }),
    /\/\.cache\/protodino$/,
    'a relative XDG_CACHE_HOME is ignored (XDG spec)',
  );

  const dir = mkdtempSync(join(tmpdir(), 'protodino-tune-'));
  try {
    const path = cachePath(key, join(dir, 'deeper'));
    assert.equal(readCache(path, key), { status: 'missing' });
    const t = checkTuning({ matmul: { mc: 96 }, conv: { chunksPerThread: 8 } });
    writeCache(path, key, t, { at: 'now', ms: 5, stages: [] });
    assert.equal(readCache(path, key), { status: 'hit', tuning: t });
    const foreign = readCache(path, { ...key, cpu: 'Intel Xeon' });
    assert.is(foreign.status, 'foreign');
    assert.match(
      (foreign as { reason: string }).reason,
      /measured for AMD EPYC 9B45, 2 threads, relaxed build a+, not Intel Xeon/,
    );
    const json = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...json, version: 99 }));
    assert.match((readCache(path, key) as { reason: string }).reason, /version 99/);
    writeFileSync(path, JSON.stringify({ ...json, tuning: { matmul: { mc: 1000 } } }));
    assert.equal(readCache(path, key).status, 'corrupt');
    writeFileSync(path, 'not json at all');
    assert.match((readCache(path, key) as { reason: string }).reason, /is not JSON/);
    writeFileSync(path, '[1, 2]');
    assert.is(readCache(path, key).status, 'foreign');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('auto: a corrupt or foreign cache warns and is measured over; the next run reads the cache; noisy results are not cached', async () => {
  const be = await WasmBackend.create({ threads: 1, tune: 'off' });
  const dir = mkdtempSync(join(tmpdir(), 'protodino-tune-'));
  try {
    const warnings: string[] = [];
    let measured = 0;
    const picked = checkTuning({ matmul: { mc: 64 } });
    const fake = (noisy: boolean) => (): Measurement => {
      measured++;
      return { tuning: picked, ms: 1, stages: [], noisy };
    };
    const opts = { dir, warn: (m: string) => warnings.push(m), measure: fake(false) };
    const path = cachePath(tuningKey(be.rt), dir);

    writeFileSync(path, '{ truncated');
    let src = resolveTuning(be.rt, 'auto', opts);
    assert.is(src.from, 'measured');
    assert.is(measured, 1);
    assert.is(warnings.length, 1);
    assert.match(
      warnings[0],
      /the tuning cache .*tuning-.*\.json is not JSON .*; ignoring it and measuring this host again/,
    );
    assert.equal(be.rt.tuning, picked);

    src = resolveTuning(be.rt, 'auto', opts);
    assert.equal(src, { from: 'cache', detail: path });
    assert.is(measured, 1, 'the second resolve reads the cache');

    const json = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...json, key: { ...json.key, cpu: 'Some Other CPU' } }));
    src = resolveTuning(be.rt, 'auto', opts);
    assert.is(src.from, 'measured');
    assert.match(warnings[1], /was measured for Some Other CPU/);
    assert.is(JSON.parse(readFileSync(path, 'utf8')).key.cpu, tuningKey(be.rt).cpu, 'rewritten for this host');

    rmSync(path);
    src = resolveTuning(be.rt, 'auto', { ...opts, measure: fake(true) });
    assert.match(src.detail, /not cached: the machine was too busy/);
    assert.equal(readCache(path, tuningKey(be.rt)), { status: 'missing' });

    // off and overrides never touch the cache
    assert.equal(resolveTuning(be.rt, 'off', opts), { from: 'default', detail: 'tuning off' });
    assert.is(be.rt.tuning, DEFAULT_TUNING);
    assert.equal(resolveTuning(be.rt, 'matmul.mc=32', opts), { from: 'override', detail: 'matmul.mc=32' });
    assert.is(be.rt.tuning.matmul.mc, 32);
    assert.is(measured, 3);
    assert.is(warnings.length, 2);
  } finally {
    be.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real (short) measurement returns valid values and leaves the runtime as it was', async () => {
  const be = await WasmBackend.create({ threads: 1, tune: 'matmul.mc=32' });
  try {
    const before = be.rt.tuning;
    const m = measureTuning(be.rt, { rounds: 1, only: ['matmul.mc'] });
    assert.is(be.rt.tuning, before);
    assert.equal(checkTuning(m.tuning), m.tuning);
    assert.is(m.stages.length, 1);
    assert.equal(
      m.stages[0].candidates.map((c) => c.value),
      [64, 96, 128, 192, 256],
    );
    assert.ok(m.stages[0].candidates.every((c) => c.relative > 0 && Number.isFinite(c.relative)));
    // past its time budget a measurement starts no more stages, keeps their defaults, and is not worth caching
    const late = measureTuning(be.rt, { budgetMs: -1 });
    assert.equal(late.stages, []);
    assert.equal(late.skipped, ['matmul.mc', 'matmul.kc']);
    assert.is(late.noisy, true);
    assert.equal(late.tuning, checkTuning({}));
  } finally {
    be.destroy();
  }
});

test.run();
