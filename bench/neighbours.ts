// Benny suite for the neighbours and layout kernel families at KoLeo-proto / DINO sizes: nearest
// neighbour by inner product among K = 4096 prototypes of D = 256 (self excluded) and of 256
// queries over K = 65536, top-k over 65536 scores, a row gather and a ViT token transpose. Runs on
// wasm (all cores, best build) and, where there is one, a hardware WebGPU adapter (the software
// one is for correctness only, so it is not timed). Prints GFLOP/s for the nearest-neighbour cases.
import b from 'benny';
import type { Summary } from 'benny/lib/internal/common-types.js';
import type { Backend, Storage } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';

const PROTOS: [number, number] = [4096, 256]; // K × D, all against all
const QUERIES: [number, number, number] = [256, 65536, 256]; // m × K × D
const TOPK: [number, number, number] = [256, 65536, 20]; // rows × cols × k
const TOKENS: [number, number, number] = [64, 197, 384]; // batch × tokens × width

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

async function runOn(be: Backend, label: string): Promise<Summary> {
  const [k, d] = PROTOS;
  const [qm, qk, qd] = QUERIES;
  const [tr, tc, tk] = TOPK;
  const [bt, nt, wt] = TOKENS;
  const protos = filled(be, k * d, 1),
    val = be.alloc(Math.max(k, qm), 'f32'),
    idx = be.alloc(Math.max(k, qm), 'i32');
  const queries = filled(be, qm * qd, 2),
    bank = filled(be, qk * qd, 3);
  const scores = filled(be, tr * tc, 4),
    topV = be.alloc(tr * tk, 'f32'),
    topI = be.alloc(tr * tk, 'i32');
  const rows = be.alloc(qk, 'i32');
  be.upload(
    rows,
    Int32Array.from({ length: qk }, (_, i) => (i * 7919) % qk),
  );
  const gathered = be.alloc(qk * qd, 'f32');
  const tokens = filled(be, bt * nt * wt, 5),
    tokensT = be.alloc(bt * nt * wt, 'f32');
  await be.sync();
  const timed = (fn: () => void) => async () => {
    fn();
    await be.sync();
  };
  const flops: Record<string, number> = {
    [`nearestNeighbor self ${k}x${k}x${d}`]: 2 * k * k * d,
    [`nearestNeighbor ${qm} queries x ${qk}x${qd}`]: 2 * qm * qk * qd,
  };
  try {
    const summary = await b.suite(
      `neighbours/layout kernels [${label}]`,
      b.add(
        `nearestNeighbor self ${k}x${k}x${d}`,
        timed(() => be.nearestNeighbor(protos, protos, val, idx, k, k, d, true)),
      ),
      b.add(
        `nearestNeighbor ${qm} queries x ${qk}x${qd}`,
        timed(() => be.nearestNeighbor(queries, bank, val, idx, qm, qk, qd, false)),
      ),
      b.add(
        `topk ${tr}x${tc} k ${tk}`,
        timed(() => be.topk(scores, topV, topI, tr, tc, tk)),
      ),
      b.add(
        `gatherRows ${qk}x${qd}`,
        timed(() => be.gatherRows(bank, rows, gathered, qk, qd)),
      ),
      b.add(
        `transpose tokens ${bt}x${nt}x${wt}`,
        timed(() => be.copyStrided(tokens, tokensT, [bt, wt, nt], 0, [nt * wt, 1, wt], 0, [nt * wt, nt, 1])),
      ),
      b.configure({ cases: { minTime: 0.5, maxTime: 3 } }),
      b.cycle(),
      b.complete(),
    );
    for (const r of summary.results) {
      if (flops[r.name]) console.log(`  ${r.name}: ${((flops[r.name] * r.ops) / 1e9).toFixed(1)} GFLOP/s`);
    }
    return summary;
  } finally {
    for (const s of [protos, val, idx, queries, bank, scores, topV, topI, rows, gathered, tokens, tokensT]) be.free(s);
  }
}

/** Runs the suite on every available backend; one benny summary per backend. */
export async function neighboursSuite(): Promise<Summary[]> {
  const results: Summary[] = [];
  const wasm = await WasmBackend.create();
  try {
    results.push(await runOn(wasm, wasm.description));
  } finally {
    wasm.destroy();
  }
  let gpu: Backend | null = null;
  try {
    gpu = await WebGPUBackend.create({ adapter: 'hardware' });
  } catch (e) {
    console.log(`neighbours: WebGPU not timed (${(e as Error).message})`);
  }
  if (gpu) {
    try {
      results.push(await runOn(gpu, gpu.description));
    } finally {
      gpu.destroy();
    }
  }
  return results;
}
