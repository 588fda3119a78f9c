// Benny suite for the matmul kernel: square products (n = 128…1024) and the products of a ViT-Tiny
// training step (64 images × 65 tokens, width 192, MLP 768, 3 heads of 64), on wasm (simd and
// relaxed builds, 1 and 2 threads), WebGPU (its kernel chosen by shape, and the previous tile64
// kernel as the baseline; labelled software on llvmpipe, which says nothing about GPU speed) and
// the peer, tfjs-backend-wasm (XNNPACK) on one thread, all in the same run. Reports GFLOP/s from
// each case's median time (best of several passes), the ratio to tfjs, and the fraction of one
// core's measured multiply-add peak (assembly/peak.ts).
import b from 'benny';
import type { Summary } from 'benny/lib/internal/common-types.js';
import { matmulParams, type Backend, type Storage } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { tuningLine } from '../src/backend/wasm/tuner.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { forceMatmulVariant, type MatmulVariant } from '../src/backend/webgpu/matmul.js';
import { caseOptions, markdownTable, quickMode, type SuiteReport } from './harness.js';
import { createTfjsPeer, type Peer } from './tfjs-peer.js';

export interface Shape {
  name: string;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
}

const TOKENS = 64 * 65,
  DIM = 192,
  QKV = 3 * DIM,
  MLP = 4 * DIM,
  HEADS = 64 * 3,
  HEAD_DIM = 64,
  SEQ = 65;

export const SHAPES: Shape[] = [
  ...[128, 256, 512, 1024].map((n) => ({ name: `${n}x${n}x${n}`, batch: 1, m: n, n, k: n })),
  { name: `vit-tiny qkv x·Wᵀ ${TOKENS}x${QKV}x${DIM}`, batch: 1, m: TOKENS, n: QKV, k: DIM, transB: true },
  { name: `vit-tiny fc1 x·Wᵀ ${TOKENS}x${MLP}x${DIM}`, batch: 1, m: TOKENS, n: MLP, k: DIM, transB: true },
  { name: `vit-tiny fc2 x·Wᵀ ${TOKENS}x${DIM}x${MLP}`, batch: 1, m: TOKENS, n: DIM, k: MLP, transB: true },
  { name: `vit-tiny fc2 dX = dY·W ${TOKENS}x${MLP}x${DIM}`, batch: 1, m: TOKENS, n: MLP, k: DIM },
  { name: `vit-tiny fc1 dW = dYᵀ·X ${MLP}x${DIM}x${TOKENS}`, batch: 1, m: MLP, n: DIM, k: TOKENS, transA: true },
  {
    name: `vit-tiny attn Q·Kᵀ ${HEADS}x(${SEQ}x${SEQ}x${HEAD_DIM})`,
    batch: HEADS,
    m: SEQ,
    n: SEQ,
    k: HEAD_DIM,
    transB: true,
  },
  { name: `vit-tiny attn P·V ${HEADS}x(${SEQ}x${HEAD_DIM}x${SEQ})`, batch: HEADS, m: SEQ, n: HEAD_DIM, k: SEQ },
];

const flops = (s: Shape) => 2 * s.batch * s.m * s.n * s.k;

/** Something that can time one shape: the function benny calls and a cleanup, or null to skip it. */
interface Engine {
  label: string;
  /** Our wasm backends, for the peak probe. */
  backend?: WasmBackend;
  prepare(s: Shape): { run: () => unknown; dispose(): void } | null;
  destroy(): void;
}

function random(n: number, seed: number): Float32Array {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 2 - 1;
  }
  return d;
}

/** `variant`: a WebGPU kernel to force instead of the backend's choice by shape. */
function ours(be: Backend, label: string, async: boolean, variant?: MatmulVariant): Engine {
  return {
    label,
    backend: be instanceof WasmBackend ? be : undefined,
    prepare(s) {
      const up = (n: number, seed: number): Storage => {
        const t = be.alloc(n, 'f32');
        be.upload(t, random(n, seed));
        return t;
      };
      const a = up(s.batch * s.m * s.k, 1),
        bm = up(s.batch * s.k * s.n, 2),
        c = be.alloc(s.batch * s.m * s.n, 'f32');
      const p = matmulParams({
        batch: s.batch,
        m: s.m,
        n: s.n,
        k: s.k,
        transA: s.transA ?? false,
        transB: s.transB ?? false,
        strideA: s.m * s.k,
        strideB: s.k * s.n,
      });
      const matmul = variant
        ? () => {
            forceMatmulVariant(variant);
            try {
              be.matmul(a, bm, c, p);
            } finally {
              forceMatmulVariant(null);
            }
          }
        : () => be.matmul(a, bm, c, p);
      const run = async
        ? async () => {
            matmul();
            await be.sync();
          }
        : matmul;
      return { run, dispose: () => [a, bm, c].forEach((t) => be.free(t)) };
    },
    destroy: () => be.destroy(),
  };
}

/**
 * The peer in its fastest layout (no transpose flags: tfjs-wasm handles those far more slowly), the
 * fair comparison since a training step can store its operands either way; and, for the shapes
 * that use them, the peer with the same transpose flags.
 */
function peerEngines(peer: Peer): Engine[] {
  const engine = (label: string, sameFlags: boolean): Engine => ({
    label,
    prepare(s) {
      if (sameFlags && !s.transA && !s.transB) return null;
      return peer.operands(s.batch, s.m, s.n, s.k, sameFlags && !!s.transA, sameFlags && !!s.transB, random);
    },
    destroy: () => {},
  });
  return [
    engine(peer.label, false),
    { ...engine(`${peer.label}, same transposes`, true), destroy: () => peer.destroy() },
  ];
}

async function engines(): Promise<Engine[]> {
  const list: Engine[] = [];
  try {
    list.push(...peerEngines(await createTfjsPeer()));
  } catch (e) {
    console.log(`matmul: tfjs-backend-wasm peer unavailable (${(e as Error).message})`);
  }
  for (const build of ['simd', 'relaxed'] as const) {
    for (const threads of [1, 2]) {
      try {
        const be = await WasmBackend.create({ build, threads });
        list.push(ours(be, `wasm ${build} ${threads}t`, false));
      } catch (e) {
        console.log(`matmul: wasm ${build} ${threads}t unavailable (${(e as Error).message})`);
      }
    }
  }
  try {
    const gpu = await WebGPUBackend.create({ adapter: 'any' });
    const label = gpu.software ? 'webgpu (software)' : 'webgpu';
    list.push(ours(gpu, label, true));
    // The previous kernel, the baseline the choice by shape was measured against (src/backend/webgpu/matmul.ts).
    list.push({ ...ours(gpu, `${label} tile64`, true, 'tile64'), destroy: () => {} });
  } catch (e) {
    console.log(`matmul: WebGPU unavailable (${(e as Error).message})`);
  }
  return list;
}

/**
 * One core's multiply-add peak in GFLOP/s for each wasm build (assembly/peak.ts: register-only
 * chains, best of several runs), measured in the same run as the kernels it is compared with.
 */
function simdPeaks(list: Engine[]): Record<string, number> {
  const peaks: Record<string, number> = {};
  for (const e of list) {
    const rt = e.backend?.rt;
    if (!rt || rt.threads !== 1) continue;
    const probe = rt.exports.peakMadd as (iters: number) => number;
    const iters = quickMode() ? 2e6 : 2e7;
    probe(iters / 10);
    let best = 0;
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      probe(iters);
      best = Math.max(best, (iters * 96) / ((performance.now() - t0) / 1000) / 1e9);
    }
    peaks[rt.build] = best;
  }
  return peaks;
}

/** Passes over all shapes: a shared machine's bursts of other load then spoil some passes, not all. */
const PASSES = quickMode() ? 1 : 2;

export async function matmulSuite(): Promise<SuiteReport> {
  const list = await engines();
  // each wasm engine's blocking and thread split (--tune; src/backend/wasm/tuning.ts) and where it came from
  const tunings = Object.fromEntries(
    list.flatMap((e) => (e.backend ? [[e.label, { ...e.backend.rt.tuning, source: e.backend.rt.tuningSource }]] : [])),
  );
  const tuningLines = list.flatMap((e) => (e.backend ? [`- ${e.label}: ${tuningLine(e.backend.rt)}`] : []));
  for (const l of tuningLines) console.log(`matmul tuning ${l.slice(2)}`);
  const peaks = simdPeaks(list);
  const summaries: Summary[] = [];
  const median: Record<string, Record<string, number>> = {};
  const best: Record<string, Record<string, number>> = {};
  const keepMax = (into: Record<string, Record<string, number>>, shape: string, label: string, v: number) => {
    const row = (into[shape] ??= {});
    row[label] = Math.max(row[label] ?? 0, v);
  };
  try {
    for (let pass = 0; pass < PASSES; pass++) {
      // One benny suite per shape, so the engines compared on it run close together in time.
      for (const s of SHAPES) {
        const prepared = list.flatMap((e) => {
          const p = e.prepare(s);
          return p ? [{ label: e.label, ...p }] : [];
        });
        try {
          const summary = await b.suite(
            `matmul ${s.name}${PASSES > 1 ? ` (pass ${pass + 1}/${PASSES})` : ''}`,
            ...prepared.map(({ label, run }) => b.add(label, run)),
            b.configure({ cases: caseOptions() }),
            b.cycle(),
            b.complete(),
          );
          summaries.push(summary);
          for (const r of summary.results) {
            keepMax(median, s.name, r.name, flops(s) / r.details.median / 1e9);
            keepMax(best, s.name, r.name, flops(s) / r.details.min / 1e9);
          }
        } finally {
          for (const p of prepared) p.dispose();
        }
      }
    }
  } finally {
    for (const e of list) e.destroy();
  }
  const labels = list.map((e) => e.label);
  const passes = PASSES > 1 ? `, best of ${PASSES} passes` : '';
  const peakLine =
    Object.keys(peaks).length === 0
      ? []
      : [
          `One core's multiply-add peak (assembly/peak.ts, no memory traffic): ${Object.entries(peaks)
            .map(([k, v]) => `${k} build ${v.toFixed(1)} GFLOP/s`)
            .join(', ')}. ` +
            "No 1-thread kernel can exceed it; the ÷ peak column is the best 1-thread wasm case over the best build's peak.",
          '',
        ];
  const table = [
    'Wasm blocking and thread split (`--tune`):',
    '',
    ...tuningLines,
    '',
    ...peakLine,
    `GFLOP/s from the median time of each case${passes}:`,
    '',
    gflopsTable(labels, median, peaks),
    '',
    'GFLOP/s from the fastest sample (less sensitive to other load on a shared machine):',
    '',
    gflopsTable(labels, best, peaks),
  ].join('\n');
  return {
    summaries,
    table,
    details: { passes: PASSES, tuning: tunings, simdPeakGflops: peaks, gflopsMedian: median, gflopsBest: best },
  };
}

function gflopsTable(
  labels: string[],
  gflops: Record<string, Record<string, number>>,
  peaks: Record<string, number>,
): string {
  const peak = Math.max(0, ...Object.values(peaks));
  const peer = labels.find((l) => l.startsWith('tfjs'));
  const bestOf = (r: Record<string, number>, t: string) =>
    Math.max(...labels.filter((l) => l.startsWith('wasm') && l.endsWith(t)).map((l) => r[l] ?? 0));
  const fmt = (v: number | undefined, digits = 1, unit = '') =>
    v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(digits)}${unit}`;
  const header = ['shape', ...labels];
  if (peer) header.push('best wasm 1t ÷ tfjs', 'best wasm 2t ÷ tfjs');
  header.push('wasm 2t ÷ 1t');
  if (peak > 0) header.push('best wasm 1t ÷ peak');
  const rows = Object.entries(gflops).map(([shape, r]) => {
    const row: (string | number)[] = [shape, ...labels.map((l) => fmt(r[l]))];
    if (peer) row.push(fmt(bestOf(r, ' 1t') / r[peer], 2, 'x'), fmt(bestOf(r, ' 2t') / r[peer], 2, 'x'));
    row.push(fmt(bestOf(r, ' 2t') / bestOf(r, ' 1t'), 2, 'x'));
    if (peak > 0) row.push(fmt((100 * bestOf(r, ' 1t')) / peak, 0, '%'));
    return row;
  });
  return markdownTable(header, rows);
}
