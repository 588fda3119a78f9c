// KoLeo-proto at a large head: K = 65536 prototypes of D = 64 (vit_cpu's bottleneck), on wasm with
// every core. Two tables: the prototypes' nearest-neighbour search alone (the one-sided kernel
// every search used before, the symmetric one the exact KoLeo-proto path now takes, the refresh
// of the candidate cache that also keeps 16 candidates, and the search among those 16), and the
// vit_cpu DINO step at batch 64 without KoLeo-proto, with it exact, and with the candidate cache
// (a cached step, a refresh step, and their mix at one refresh every N steps).
// Run: node dist/bench/index.js koleo-large-k [--quick]
//
// koleo-self-webgpu (on request): the exact search alone on WebGPU (any adapter, so llvmpipe here),
// the one-sided kernel against the symmetric one (src/backend/webgpu/neighbours.ts, both forced),
// at D = 64 and K = 1024, 4096, 16384 (and 65536 on a hardware adapter: the software one takes
// minutes there); one warm-up call of each, then calls alternating, every one waited for.
// Run: node dist/bench/index.js koleo-self-webgpu [--quick]
import type { Backend, Storage } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { forceSymmetricSelfSearch } from '../src/backend/webgpu/neighbours.js';
import { KoleoProtoCache } from '../src/ssl/koleo-cache.js';
import { DEFAULTS, validate } from '../src/train/config.js';
import { dinoStep } from '../src/train/step.js';
import { benchState } from './dino-step.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';

const K = 65536;
const D = 64;
const M = 16;
const BATCH = 64;
/** Refresh intervals the mixed cached step is reported at. */
const EVERY = [10, 100];

function filled(be: Backend, n: number, seed: number): Storage {
  const s = be.alloc(n, 'f32');
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 2 - 1;
  }
  be.upload(s, d);
  return s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(be: Backend, reps: number, fn: () => void): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    await be.sync();
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

interface Row {
  name: string;
  seconds: number[];
}

async function searchRows(be: Backend, reps: number): Promise<Row[]> {
  const x = filled(be, K * D, 7);
  const val = be.alloc(K, 'f32'),
    idx = be.alloc(K, 'i32'),
    idx2 = be.alloc(K, 'i32'),
    cand = be.alloc(K * M, 'i32');
  try {
    const rows: Row[] = [];
    rows.push({
      name: 'one-sided search (before)',
      seconds: await timed(be, reps, () => be.nearestNeighbor(x, x, val, idx, K, K, D, true)),
    });
    rows.push({
      name: 'symmetric exact search',
      seconds: await timed(be, reps, () => be.nearestNeighborSelf(x, val, idx2, null, K, D, 1, true)),
    });
    const a = await be.download(idx),
      b = await be.download(idx2);
    for (let i = 0; i < K; i++)
      if (a[i] !== b[i]) throw new Error(`koleo-large-k: the symmetric search disagrees at row ${i}`);
    rows.push({
      name: `symmetric exact + ${M} candidates (cache refresh)`,
      seconds: await timed(be, reps, () => be.nearestNeighborSelf(x, val, idx2, cand, K, D, M, true)),
    });
    rows.push({
      name: `among ${M} cached candidates`,
      seconds: await timed(be, Math.max(reps, 5), () => be.nearestAmongCandidates(x, cand, val, idx2, K, D, M)),
    });
    return rows;
  } finally {
    for (const s of [x, val, idx, idx2, cand]) be.free(s);
  }
}

async function stepRows(be: Backend, reps: number): Promise<{ rows: Row[]; mixed: [number, number][] }> {
  const rows: Row[] = [];
  for (const koleo of [0, 0.1]) {
    const cfg = validate({
      ...DEFAULTS,
      arch: 'vit_cpu',
      batch_size: BATCH,
      out_dim: K,
      koleo_proto: koleo,
      freeze_last_layer: 0,
    });
    const bs = benchState(be, cfg);
    try {
      const step = async () => {
        const t = dinoStep(bs.state, bs.globals, bs.locals, bs.sch);
        await be.sync();
        t.dispose();
      };
      await step(); // warm-up
      const s: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        await step();
        s.push((performance.now() - t0) / 1000);
      }
      rows.push({ name: koleo ? 'step, KoLeo-proto exact' : 'step without KoLeo-proto', seconds: s });
    } finally {
      bs.dispose();
    }
  }
  // The cache: step 0 refreshes, the next steps search the candidates, step `every` refreshes again.
  const every = Math.max(...EVERY);
  const cfg = validate({
    ...DEFAULTS,
    arch: 'vit_cpu',
    batch_size: BATCH,
    out_dim: K,
    koleo_proto: 0.1,
    freeze_last_layer: 0,
    koleo_proto_exact_every: every,
    koleo_proto_candidates: M,
  });
  const bs = benchState(be, cfg);
  const cache = new KoleoProtoCache(every, M);
  const refresh: number[] = [],
    cached: number[] = [];
  try {
    // A warm-up step without the cache, so the refresh is not a fresh state's first step.
    const t = dinoStep(bs.state, bs.globals, bs.locals, bs.sch);
    await be.sync();
    t.dispose();
    bs.state.koleoCache = cache;
    let n = 0;
    const step = async (into: number[]) => {
      const t0 = performance.now();
      const t = dinoStep(bs.state, bs.globals, bs.locals, { ...bs.sch, step: n++ });
      await be.sync();
      t.dispose();
      into.push((performance.now() - t0) / 1000);
    };
    await step(refresh);
    await step([]); // warm-up of the cached path
    for (let r = 0; r < reps; r++) await step(cached);
  } finally {
    cache.dispose();
    bs.dispose();
  }
  rows.push({ name: `step, KoLeo-proto cache refresh (exact + ${M} candidates)`, seconds: refresh });
  rows.push({ name: `step, KoLeo-proto among ${M} cached candidates`, seconds: cached });
  const mixed = EVERY.map((e): [number, number] => [e, median(cached) + (median(refresh) - median(cached)) / e]);
  return { rows, mixed };
}

export async function koleoLargeKSuite(): Promise<SuiteReport> {
  const reps = quickMode() ? 1 : 3;
  const be = await WasmBackend.create();
  try {
    const search = await searchRows(be, reps);
    const steps = await stepRows(be, reps);
    const before = median(search[0].seconds),
      base = median(steps.rows[0].seconds);
    const fmt = (r: Row) => [r.name, median(r.seconds).toFixed(3), r.seconds.map((s) => s.toFixed(2)).join(' ')];
    const table = [
      `K = ${K}, D = ${D}, ${be.description}; seconds (median, then every sample)`,
      '',
      markdownTable(
        ['search', 'median s', 'samples', 'speed-up vs before'],
        search.map((r) => [...fmt(r), (before / median(r.seconds)).toFixed(2)]),
      ),
      '',
      markdownTable(
        [`vit_cpu step, batch ${BATCH}`, 'median s', 'samples', '× the step without KoLeo-proto'],
        [
          ...steps.rows.map((r) => [...fmt(r), (median(r.seconds) / base).toFixed(2)]),
          ...steps.mixed.map(([e, s]) => [
            `step, KoLeo-proto cached, a refresh every ${e} steps (mix)`,
            s.toFixed(3),
            '',
            (s / base).toFixed(2),
          ]),
        ],
      ),
    ].join('\n');
    return { summaries: [], table, details: { K, D, M, batch: BATCH, backend: be.description, search, steps } };
  } finally {
    be.destroy();
  }
}

export async function koleoSelfWebgpuSuite(): Promise<SuiteReport> {
  const reps = quickMode() ? 1 : 3;
  const be = await WebGPUBackend.create({ adapter: 'any' });
  const sizes = be.software ? [1024, 4096, 16384] : [1024, 4096, 16384, K];
  const rows: { k: number; oneSided: number[]; symmetric: number[] }[] = [];
  try {
    for (const k of sizes) {
      const x = filled(be, k * D, 7);
      const val = be.alloc(k, 'f32'),
        idx = be.alloc(k, 'i32'),
        idx2 = be.alloc(k, 'i32');
      try {
        const run = async (symmetric: boolean) => {
          forceSymmetricSelfSearch(symmetric);
          return (
            await timed(be, 1, () => be.nearestNeighborSelf(x, val, symmetric ? idx2 : idx, null, k, D, 1, true))
          )[0];
        };
        await run(false);
        await run(true);
        const a = await be.download(idx),
          b = await be.download(idx2);
        for (let i = 0; i < k; i++)
          if (a[i] !== b[i]) throw new Error(`koleo-self-webgpu: the symmetric search disagrees at K = ${k}, row ${i}`);
        const row = { k, oneSided: [] as number[], symmetric: [] as number[] };
        for (let r = 0; r < reps; r++) {
          row.oneSided.push(await run(false));
          row.symmetric.push(await run(true));
        }
        rows.push(row);
      } finally {
        forceSymmetricSelfSearch(null);
        for (const s of [x, val, idx, idx2]) be.free(s);
      }
    }
    const table = [
      `exact self search, D = ${D}, ${be.description}; seconds per call (median, then every sample)`,
      '',
      markdownTable(
        ['K', 'one-sided', 'samples', 'symmetric', 'samples', 'speed-up'],
        rows.map((r) => [
          String(r.k),
          median(r.oneSided).toFixed(3),
          r.oneSided.map((s) => s.toFixed(3)).join(' '),
          median(r.symmetric).toFixed(3),
          r.symmetric.map((s) => s.toFixed(3)).join(' '),
          (median(r.oneSided) / median(r.symmetric)).toFixed(2),
        ]),
      ),
    ].join('\n');
    return { summaries: [], table, details: { D, backend: be.description, rows } };
  } finally {
    be.destroy();
  }
}
