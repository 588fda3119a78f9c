// Suite `tune`: what the host tuning (src/backend/wasm/tuner.ts) picks on this machine and what it
// buys. For one thread and for every core (the default build): the host is measured afresh several
// times (the cache is neither read nor written) to show how stable the choice is, then today's
// defaults and the choice are timed against each other on one backend, alternating call by call, on
// the matmul table's shapes and on a vit_cpu and a resnet_cpu DINO step (batch 64). With
// `--tune family.param=value,...` (or a file) those values are compared instead of the measured ones.
import { availableParallelism } from 'node:os';
import { matmulParams, type Storage } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { measureTuning, type Measurement } from '../src/backend/wasm/tuner.js';
import { DEFAULT_TUNING, parseTuneSpec, tuningDiff, type Tuning } from '../src/backend/wasm/tuning.js';
import { dinoStep } from '../src/train/step.js';
import { benchConfig, benchState } from './dino-step.js';
import { markdownTable, quickMode, type SuiteReport } from './harness.js';
import { SHAPES, type Shape } from './matmul.js';
import { resnetBenchConfig } from './resnet-step.js';

const MEASUREMENTS = quickMode() ? 2 : 3;
/** Alternating calls per matmul shape and configuration (the fastest is kept). */
const CALLS = quickMode() ? 4 : 12;
/** Alternating steps per configuration (the median is kept), after one warm-up step each. */
const STEPS = quickMode() ? 2 : 5;

function fill(n: number, seed: number): Float32Array {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    d[i] = (a / 4294967296) * 2 - 1;
  }
  return d;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Fastest of CALLS alternating calls under each tuning: [defaults ms, tuned ms]. */
function timeMatmul(be: WasmBackend, s: Shape, tuned: Tuning): [number, number] {
  const up = (n: number, seed: number): Storage => {
    const t = be.alloc(n, 'f32');
    be.upload(t, fill(n, seed));
    return t;
  };
  const a = up(s.batch * s.m * s.k, 1),
    b = up(s.batch * s.k * s.n, 2),
    c = be.alloc(s.batch * s.m * s.n, 'f32');
  const p = matmulParams({ ...s, transA: !!s.transA, transB: !!s.transB, strideA: s.m * s.k, strideB: s.k * s.n });
  const best = [Infinity, Infinity];
  try {
    for (let i = 0; i < 2 * (CALLS + 1); i++) {
      be.rt.tuning = i % 2 === 0 ? DEFAULT_TUNING : tuned;
      const t0 = performance.now();
      be.matmul(a, b, c, p);
      if (i >= 2) best[i % 2] = Math.min(best[i % 2], performance.now() - t0);
    }
  } finally {
    for (const t of [a, b, c]) be.free(t);
    be.rt.tuning = DEFAULT_TUNING;
  }
  return [best[0], best[1]];
}

/** Median of STEPS alternating DINO steps under each tuning: [defaults s, tuned s]. */
async function timeStep(be: WasmBackend, arch: 'vit_cpu' | 'resnet_cpu', tuned: Tuning): Promise<[number, number]> {
  const cfg = arch === 'vit_cpu' ? benchConfig(arch, 64) : resnetBenchConfig(arch, 64);
  const bs = benchState(be, cfg);
  const seconds: number[][] = [[], []];
  try {
    for (let i = 0; i < 2 * (STEPS + 1); i++) {
      be.rt.tuning = i % 2 === 0 ? DEFAULT_TUNING : tuned;
      const t0 = performance.now();
      const loss = dinoStep(bs.state, bs.globals, bs.locals, { ...bs.sch, step: i });
      await be.sync();
      loss.dispose();
      if (i >= 2) seconds[i % 2].push((performance.now() - t0) / 1000);
    }
  } finally {
    bs.dispose();
    be.rt.tuning = DEFAULT_TUNING;
  }
  return [median(seconds[0]), median(seconds[1])];
}

export async function tuneSuite(): Promise<SuiteReport> {
  const spec = parseTuneSpec(process.env.PROTODINO_TUNE ?? 'auto');
  const cores = availableParallelism();
  const lines: string[] = [];
  const details: unknown[] = [];
  for (const threads of cores > 1 ? [1, cores] : [1]) {
    const be = await WasmBackend.create({ threads, tune: 'off' });
    try {
      const label = `wasm ${be.rt.build} ${threads}t`;
      const measurements: Measurement[] = [];
      for (let r = 0; r < MEASUREMENTS; r++) measurements.push(measureTuning(be.rt));
      const picks = measurements.map((m) => tuningDiff(m.tuning));
      const counts = new Map<string, number>();
      for (const p of picks) counts.set(p, (counts.get(p) ?? 0) + 1);
      lines.push(
        `### ${label}`,
        '',
        `${MEASUREMENTS} fresh measurements (${measurements.map((m) => m.ms).join(', ')} ms) picked: ` +
          [...counts].map(([p, n]) => `${p} (${n}×)`).join('; ') +
          `. Noisy stages (kept the incumbent): ${measurements.map((m) => m.stages.filter((s) => s.noise > 0.03).length).join(', ')}.`,
        '',
        "Each stage of the last measurement, candidates' time relative to the incumbent:",
        '',
        markdownTable(
          ['stage', 'candidates (value: relative time)', 'noise', 'head-to-head rerun', 'chosen'],
          measurements
            .at(-1)!
            .stages.map((s) => [
              s.name,
              s.candidates.map((c) => `${c.value}: ${c.relative.toFixed(3)}`).join(', '),
              s.noise.toFixed(3),
              s.confirm === undefined ? '–' : s.confirm.toFixed(3),
              s.chosen,
            ]),
        ),
        '',
      );
      // the values to compare: an override, else the most frequent non-default pick
      let tuned: Tuning | null = spec.mode === 'override' ? spec.tuning : null;
      if (!tuned) {
        const nonDefault = measurements.filter((m) => tuningDiff(m.tuning) !== 'the defaults');
        nonDefault.sort((x, y) => (counts.get(tuningDiff(y.tuning)) ?? 0) - (counts.get(tuningDiff(x.tuning)) ?? 0));
        tuned = nonDefault[0]?.tuning ?? null;
      }
      const entry: Record<string, unknown> = { label, picks, measurements };
      details.push(entry);
      if (!tuned) {
        lines.push('Every measurement picked the defaults: nothing to compare.', '');
        continue;
      }
      const rows: (string | number)[][] = [];
      const timed: Record<string, [number, number]> = {};
      for (const s of SHAPES) {
        const t = timeMatmul(be, s, tuned);
        timed[s.name] = t;
        rows.push([s.name, t[0].toFixed(3), t[1].toFixed(3), `${(t[0] / t[1]).toFixed(3)}x`]);
      }
      for (const arch of ['vit_cpu', 'resnet_cpu'] as const) {
        const t = await timeStep(be, arch, tuned);
        timed[`${arch} step`] = t;
        rows.push([
          `${arch} DINO step, batch 64 (median s)`,
          t[0].toFixed(3),
          t[1].toFixed(3),
          `${(t[0] / t[1]).toFixed(3)}x`,
        ]);
        console.log(`tune ${label} ${arch}: ${t[0].toFixed(3)} → ${t[1].toFixed(3)} s`);
      }
      entry.compared = { tuned, timed };
      lines.push(
        `Defaults against ${tuningDiff(tuned)}, alternating on one backend (matmul: fastest of ${CALLS} calls, ms; steps: median of ${STEPS}):`,
        '',
        markdownTable(['case', 'defaults', 'tuned', 'speed-up'], rows),
        '',
      );
    } finally {
      be.destroy();
    }
  }
  return { summaries: [], table: lines.join('\n'), details };
}
