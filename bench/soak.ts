// Soak: `node dist/bench/index.js soak` trains 2000 steps of the default CPU configuration
// (src/train/config.ts DEFAULTS: vit_cpu, batch 64, 2 global + 6 local crops, K = 1024) through
// train() itself — loader workers, the guarded step, checkpoint writes, the log — and samples
// memory at every epoch end: process RSS after a full GC, the backend's live and pooled bytes, and
// the live tensor count. The only change to the defaults is the dataset size: the first
// 64 × PROTODINO_SOAK_EVERY (50) Fashion-MNIST images, so that an epoch (one sample, one checkpoint)
// is 50 steps; --epochs covers the step count, so the schedules span the run.
// Verdict: after the warm-up (the first two epochs, or the first tenth of the run if longer; the
// last layer is frozen for epoch 1 and its AdamW moments appear in epoch 2) the live tensors and the
// backend's bytes must not change at all, and RSS may grow at most 5% over the second half.
// Suite `soak` runs on wasm, `soak-webgpu` on WebGPU; on a software adapter (llvmpipe, some
// 20 s a step) the latter runs 30 steps sampled every 5 instead. PROTODINO_SOAK_STEPS and
// PROTODINO_SOAK_EVERY override the step count and the sampling interval (--quick: 100 and 10).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBackend } from '../src/backend/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import type { Backend } from '../src/backend/backend.js';
import { liveTensors } from '../src/tensor/tensor.js';
import { train } from '../src/train/trainer.js';
import { DEFAULTS, validate } from '../src/train/config.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const RSS_GROWTH_LIMIT = 0.05;

export interface SoakSample {
  step: number;
  seconds: number;
  rss: number;
  heapUsed: number;
  /** Memory of ArrayBuffers and other objects outside the V8 heap (batches, read-backs, file buffers). */
  external: number;
  liveTensors: number;
  liveBuffers: number;
  liveBytes: number;
  pooledBytes: number;
}

export interface SoakVerdict {
  pass: boolean;
  warmupSteps: number;
  tensorsFlat: boolean;
  buffersFlat: boolean;
  rssAfterWarmup: number;
  rssMid: number;
  rssEnd: number;
  /** Highest RSS over the second half minus RSS at the middle sample, in bytes and as a fraction. */
  rssGrowthSecondHalf: number;
  rssGrowthFraction: number;
  rssGrowthLimit: number;
  /** Least-squares slope of RSS over the samples after the warm-up, MiB per 1000 steps. */
  rssSlopeMiBPer1000Steps: number;
  /** The process's peak RSS over the whole run (getrusage maxrss, not after a GC). */
  peakRss: number;
  reasons: string[];
}

function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

function sample(step: number, t0: number, be: Backend): SoakSample {
  gc();
  const m = process.memoryUsage();
  return {
    step,
    seconds: (performance.now() - t0) / 1000,
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    liveTensors: liveTensors(),
    ...be.memory(),
  };
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1);

/** The flatness verdict on samples taken at steps ≥ warmupSteps. */
export function verdict(samples: SoakSample[], warmupSteps: number, peakRss: number): SoakVerdict {
  const after = samples.filter((s) => s.step >= warmupSteps);
  const reasons: string[] = [];
  if (after.length < 3) reasons.push(`only ${after.length} samples after the ${warmupSteps}-step warm-up; need 3`);
  const first = after[0] ?? samples[samples.length - 1];
  const tensorsFlat = after.every((s) => s.liveTensors === first.liveTensors);
  if (!tensorsFlat) reasons.push(`live tensors moved: ${after.map((s) => `${s.step}:${s.liveTensors}`).join(' ')}`);
  const buffersFlat = after.every(
    (s) =>
      s.liveBuffers === first.liveBuffers && s.liveBytes === first.liveBytes && s.pooledBytes === first.pooledBytes,
  );
  if (!buffersFlat)
    reasons.push(`backend bytes moved: ${after.map((s) => `${s.step}:${s.liveBytes}+${s.pooledBytes}`).join(' ')}`);
  const mid = after[Math.floor(after.length / 2)] ?? first;
  const secondHalf = after.slice(Math.floor(after.length / 2));
  const rssGrowthSecondHalf = Math.max(...secondHalf.map((s) => s.rss)) - mid.rss;
  const rssGrowthFraction = rssGrowthSecondHalf / mid.rss;
  if (rssGrowthFraction > RSS_GROWTH_LIMIT) {
    reasons.push(
      `RSS grew ${MiB(rssGrowthSecondHalf)} MiB (${(100 * rssGrowthFraction).toFixed(1)}%) over the second half, limit ${100 * RSS_GROWTH_LIMIT}%`,
    );
  }
  const n = after.length;
  const mx = after.reduce((a, s) => a + s.step, 0) / n,
    my = after.reduce((a, s) => a + s.rss, 0) / n;
  const sxy = after.reduce((a, s) => a + (s.step - mx) * (s.rss - my), 0),
    sxx = after.reduce((a, s) => a + (s.step - mx) ** 2, 0);
  const slope = sxx > 0 ? sxy / sxx : 0;
  return {
    pass: reasons.length === 0,
    warmupSteps,
    tensorsFlat,
    buffersFlat,
    rssAfterWarmup: first.rss,
    rssMid: mid.rss,
    rssEnd: samples[samples.length - 1].rss,
    rssGrowthSecondHalf,
    rssGrowthFraction,
    rssGrowthLimit: RSS_GROWTH_LIMIT,
    rssSlopeMiBPer1000Steps: (slope * 1000) / 2 ** 20,
    peakRss,
    reasons,
  };
}

export const soakSuite = (): Promise<SuiteReport> => soak('wasm');
export const soakWebgpuSuite = (): Promise<SuiteReport> => soak('webgpu');

async function soak(kind: 'wasm' | 'webgpu'): Promise<SuiteReport> {
  const be = await createBackend({ kind });
  const software = be instanceof WebGPUBackend && be.software;
  const steps = intEnv('PROTODINO_SOAK_STEPS', quickMode() ? 100 : software ? 30 : 2000);
  const every = intEnv('PROTODINO_SOAK_EVERY', quickMode() ? 10 : software ? 5 : 50);
  const dir = mkdtempSync(join(tmpdir(), 'protodino-soak-'));
  const cfg = validate({
    ...DEFAULTS,
    max_steps: steps,
    epochs: Math.ceil(steps / every),
    subset: every * DEFAULTS.batch_size,
    log_every: every,
    output_dir: dir,
    quiet: true,
    backend: kind,
  });
  console.log(
    `soak: ${steps} steps of ${cfg.arch}, batch ${cfg.batch_size}, 2 global + ${cfg.local_crops_number} local crops, on ${be.description}; a sample every ${every} steps`,
  );
  const t0 = performance.now();
  const samples: SoakSample[] = [];
  let losses: number[] = [];
  try {
    samples.push(sample(0, t0, be));
    const r = await train(cfg, {
      backend: be,
      onEpoch: async ({ step }) => {
        const s = sample(step, t0, be);
        samples.push(s);
        console.log(
          `  step ${step}: RSS ${MiB(s.rss)} MiB, heap ${MiB(s.heapUsed)} MiB, external ${MiB(s.external)} MiB, ${s.liveTensors} tensors, ` +
            `${s.liveBuffers} buffers, live ${MiB(s.liveBytes)} MiB, pooled ${MiB(s.pooledBytes)} MiB, ${s.seconds.toFixed(0)} s`,
        );
      },
    });
    losses = r.history.map((h) => h.loss);
  } finally {
    be.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  const warmupSteps = Math.max(2 * every, Math.ceil(steps / 10));
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const v = verdict(samples, warmupSteps, peakRss);
  const after = samples.filter((s) => s.step >= warmupSteps);
  const first = after[0] ?? samples[0],
    last = samples[samples.length - 1];
  const table =
    markdownTable(
      ['', `step ${first.step}`, `step ${last.step}`],
      [
        ['RSS (after GC)', `${MiB(first.rss)} MiB`, `${MiB(last.rss)} MiB`],
        ['V8 heap used', `${MiB(first.heapUsed)} MiB`, `${MiB(last.heapUsed)} MiB`],
        ['external (ArrayBuffers etc.)', `${MiB(first.external)} MiB`, `${MiB(last.external)} MiB`],
        ['live tensors', first.liveTensors, last.liveTensors],
        ['backend live bytes', first.liveBytes, last.liveBytes],
        ['backend pooled bytes', first.pooledBytes, last.pooledBytes],
      ],
    ) +
    `\n\n${steps} steps in ${seconds.toFixed(0)} s (${(seconds / steps).toFixed(2)} s/step) on ${be.description}; ` +
    `loss ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}; RSS over the second half +${MiB(v.rssGrowthSecondHalf)} MiB ` +
    `(${(100 * v.rssGrowthFraction).toFixed(2)}%, limit ${100 * RSS_GROWTH_LIMIT}%), slope ${v.rssSlopeMiBPer1000Steps.toFixed(2)} MiB per 1000 steps, ` +
    `peak RSS ${MiB(peakRss)} MiB.\n\n**${v.pass ? 'PASS' : 'FAIL'}**${v.pass ? ': memory flat after the warm-up' : `: ${v.reasons.join('; ')}`}`;
  return {
    summaries: [],
    table,
    details: {
      backend: be.description,
      steps,
      sampleEvery: every,
      seconds,
      secondsPerStep: seconds / steps,
      config: {
        arch: cfg.arch,
        batch_size: cfg.batch_size,
        local_crops_number: cfg.local_crops_number,
        out_dim: cfg.out_dim,
        subset: cfg.subset,
        epochs: cfg.epochs,
      },
      losses: { first: losses[0], last: losses.at(-1) },
      verdict: v,
      samples,
    },
  };
}
