// Picks the wasm kernels' blocking and thread-split parameters (tuning.ts) for the host: on first use
// of `--tune auto` a short measurement (about a second) of a few candidates per parameter on shapes
// from a vit_cpu / resnet_cpu training step, then the choice is cached per CPU model, thread count,
// wasm build and binary, so later runs only read a small file.
//
// The search is coordinate descent from the defaults, one stage per parameter. In each stage every
// candidate runs the stage's shapes in interleaved rounds (so a burst of other load on a shared
// machine hits all candidates alike), each shape's time is the best of its rounds, and a candidate's
// score is its mean time relative to the stage's incumbent. A candidate replaces the incumbent only
// when it is faster by more than MARGIN plus the measured noise (the incumbent's own repeat), and
// again in a head-to-head rerun: below that a 2-core machine's noise picks at random, and the
// defaults were tuned on the README's machine. A measurement with a stage noisier than MARGIN is
// used but not cached, so the next run on a quieter machine measures again.
import { matmulParams, type ConvParams, type MatmulParams, type Storage } from '../backend.js';
import { convGemmKernels } from './convgemm.js';
import { matmulKernels } from './matmul.js';
import type { WasmRuntime } from './runtime.js';
import type { WasmStorage } from './storage.js';
import {
  cacheDir,
  cachePath,
  checkTuning,
  cpuModel,
  DEFAULT_TUNING,
  describeTuning,
  parseTuneSpec,
  readCache,
  writeCache,
  type CacheFile,
  type Tuning,
  type TuningKey,
  type TuningSource,
} from './tuning.js';

/** A candidate must be this much faster than the incumbent to replace it. */
const MARGIN = 0.03;
/**
 * All stages together took 0.3–0.6 s on the 2-core host when it was not shared; a loaded machine
 * starts no stage past this, and those keep their defaults.
 */
const BUDGET_MS = 2500;

/**
 * The least time of one sample: smaller work runs that many back to back. Timed one call at a
 * time, the fork-grain stage's 10–25 µs products (two threads) varied 5–20% between one candidate
 * and the same candidate's repeat on the 2-vCPU Intel Xeon host, idle, even best of 15 rounds
 * (a sleeping worker's wake-up across vCPUs), so every 2-thread measurement there was reported as
 * "too busy" and never cached; a training step runs such products back to back.
 */
const SAMPLE_MS = 0.25;

type Work = { kind: 'matmul'; p: MatmulParams } | { kind: 'conv'; p: ConvParams };

const mm = (batch: number, m: number, n: number, k: number, transA = false, transB = false): Work => ({
  kind: 'matmul',
  p: matmulParams({ batch, m, n, k, transA, transB, strideA: m * k, strideB: k * n }),
});

const conv = (batch: number, channels: number, size: number, outChannels: number, stride: number): Work => {
  const out = Math.floor((size + 2 - 3) / stride) + 1;
  return {
    kind: 'conv',
    p: {
      batch,
      channels,
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
      outChannels,
    },
  };
};

/**
 * A third of a vit_cpu step's token products (global crops: 2 × 64 images × 50 tokens; width 64, 4
 * heads of 16, MLP 256) in the three transpose classes, its attention products, and vit_tiny's wider
 * qkv product; resnet_cpu's convolutions at a quarter of its batch; for the fork grain, products a
 * step makes many of that are near it.
 */
const LARGE: Work[] = [
  mm(1, 2048, 256, 64, false, true),
  mm(1, 2048, 64, 256, false, false),
  mm(1, 256, 64, 2048, true, false),
  mm(1, 1024, 576, 192, false, true),
];
const BATCHED: Work[] = [mm(128, 50, 50, 16, false, true), mm(128, 50, 16, 50)];
const SMALL: Work[] = [mm(1, 64, 64, 64), mm(1, 32, 256, 64, false, true), mm(1, 128, 64, 32), mm(8, 50, 50, 16)];
const CONVS: Work[] = [conv(16, 16, 28, 16, 1), conv(16, 16, 28, 32, 2), conv(16, 64, 7, 64, 1)];

interface Stage {
  name: string;
  /** Whether the stage means anything at this thread count. */
  threads: (t: number) => boolean;
  candidates: (t: Tuning) => Tuning[];
  work: Work[];
}

const withMatmul = (t: Tuning, m: Partial<Tuning['matmul']>): Tuning => ({ ...t, matmul: { ...t.matmul, ...m } });
const withConv = (t: Tuning, c: Partial<Tuning['conv']>): Tuning => ({ ...t, conv: { ...t.conv, ...c } });

const STAGES: Stage[] = [
  {
    name: 'matmul.mc',
    threads: () => true,
    candidates: (t) => [64, 96, 128, 192, 256].map((mc) => withMatmul(t, { mc })),
    work: LARGE,
  },
  {
    name: 'matmul.kc',
    threads: () => true,
    candidates: (t) => [128, 192, 256, 384, 512].map((kc) => withMatmul(t, { kc })),
    work: LARGE,
  },
  {
    name: 'matmul.chunksPerThread',
    threads: (n) => n > 1,
    candidates: (t) => [2, 4, 8].map((chunksPerThread) => withMatmul(t, { chunksPerThread })),
    work: [...LARGE, ...BATCHED],
  },
  {
    name: 'matmul.claimFlops',
    threads: (n) => n > 1,
    candidates: (t) => [1 << 13, 1 << 15, 1 << 17].map((claimFlops) => withMatmul(t, { claimFlops })),
    work: BATCHED,
  },
  {
    name: 'matmul.forkFlops',
    threads: (n) => n > 1,
    candidates: (t) => [1 << 15, 1 << 17, 1 << 19].map((forkFlops) => withMatmul(t, { forkFlops })),
    work: SMALL,
  },
  {
    name: 'conv.chunksPerThread',
    threads: (n) => n > 1,
    candidates: (t) => [4, 8, 16, 32].map((chunksPerThread) => withConv(t, { chunksPerThread })),
    work: CONVS,
  },
];

export interface StageResult {
  name: string;
  /** Each candidate's value of the stage's parameter and its mean time relative to the incumbent. */
  candidates: { value: number; relative: number }[];
  /** How far the incumbent's repeat differed from it; a winner must beat the incumbent by MARGIN + noise. */
  noise: number;
  /** The winner's relative time in the head-to-head rerun, when some candidate beat the incumbent. */
  confirm?: number;
  chosen: number;
}

export interface Measurement {
  tuning: Tuning;
  ms: number;
  stages: StageResult[];
  /** Stages left at their defaults because the measurement ran past its time budget. */
  skipped?: string[];
  /** Some stage was too noisy to decide, or was skipped (a busy machine): not worth caching. */
  noisy: boolean;
}

function stageValue(name: string, t: Tuning): number {
  const [fam, key] = name.split('.') as [keyof Tuning, string];
  return (t[fam] as unknown as Record<string, number>)[key];
}

/** Operands for one piece of work, filled with small values (the values do not change the time). */
function prepare(rt: WasmRuntime, w: Work): { run: () => void; free: () => void } {
  const held: WasmStorage[] = [];
  const buf = (n: number): Storage => {
    const s: WasmStorage = {
      length: n,
      dtype: 'f32',
      ptr: rt.allocBytes(Math.max(4, n * 4), 'tuning operands'),
      freed: false,
    };
    const v = rt.f32(s.ptr, n);
    for (let i = 0; i < n; i++) v[i] = ((i * 7919) % 97) / 97 - 0.5;
    held.push(s);
    return s;
  };
  const free = () => held.forEach((s) => rt.freeBytes(s.ptr, Math.max(4, s.length * 4)));
  if (w.kind === 'matmul') {
    const { batch, m, n, k } = w.p;
    const a = buf(batch * m * k),
      b = buf(batch * k * n),
      c = buf(batch * m * n);
    const kernels = matmulKernels(rt);
    return { run: () => kernels.matmul(a, b, c, w.p), free };
  }
  const p = w.p;
  const x = buf(p.batch * p.channels * p.height * p.width),
    wt = buf(p.outChannels * p.channels * 9),
    y = buf(p.batch * p.outChannels * p.outH * p.outW);
  const kernels = convGemmKernels(rt);
  return { run: () => kernels.conv2d(x, wt, y, p), free };
}

export interface MeasureOptions {
  /** Interleaved rounds per stage (best of them is kept). */
  rounds?: number;
  /** Only these stages (by name), e.g. for a test. */
  only?: string[];
  /** Stages not started by then keep their defaults and the result is not cached (a busy machine). */
  budgetMs?: number;
}

/** Measures the stages that apply at rt.threads, starting from the defaults; leaves rt.tuning as it found it. */
export function measureTuning(rt: WasmRuntime, opts: MeasureOptions = {}): Measurement {
  const rounds = opts.rounds ?? 5;
  const budget = opts.budgetMs ?? BUDGET_MS;
  const saved = rt.tuning;
  const skipped: string[] = [];
  const t0 = performance.now();
  let best: Tuning = { matmul: { ...DEFAULT_TUNING.matmul }, conv: { ...DEFAULT_TUNING.conv } };
  const stages: StageResult[] = [];
  const prepared = new Map<Work, ReturnType<typeof prepare>>();
  /**
   * Each candidate's mean time over `work` relative to cands[0] (the incumbent), in interleaved
   * rounds, each shape's time the best of its rounds. The incumbent also runs last in every round:
   * how far that repeat is from 1 is the measurement's noise.
   */
  const compare = (cands: Tuning[], work: Work[]): { rel: number[]; noise: number } => {
    for (const w of work) if (!prepared.has(w)) prepared.set(w, prepare(rt, w));
    // one untimed pass: the first calls grow memory and warm up the JIT; the second times each
    // piece of work to pick how many back-to-back calls one sample takes (SAMPLE_MS at least)
    rt.tuning = cands[0];
    for (const w of work) prepared.get(w)!.run();
    const reps = work.map((w) => {
      const s = performance.now();
      prepared.get(w)!.run();
      return Math.max(1, Math.min(64, Math.ceil(SAMPLE_MS / Math.max(1e-3, performance.now() - s))));
    });
    const order = [...cands, cands[0]];
    const times = order.map(() => work.map(() => Infinity));
    for (let r = 0; r < rounds; r++) {
      order.forEach((c, slot) => {
        rt.tuning = c;
        work.forEach((w, i) => {
          const run = prepared.get(w)!.run;
          const s = performance.now();
          for (let j = 0; j < reps[i]; j++) run();
          times[slot][i] = Math.min(times[slot][i], (performance.now() - s) / reps[i]);
        });
      });
    }
    const rel = times.map((ts) => ts.reduce((sum, t, i) => sum + t / times[0][i], 0) / ts.length);
    return { rel: rel.slice(0, cands.length), noise: Math.abs(rel[cands.length] - 1) };
  };
  try {
    for (const stage of STAGES) {
      if (!stage.threads(rt.threads) || (opts.only && !opts.only.includes(stage.name))) continue;
      if (performance.now() - t0 > budget) {
        skipped.push(stage.name);
        continue;
      }
      const value = (t: Tuning) => stageValue(stage.name, t);
      // the incumbent first
      const cands = stage
        .candidates(best)
        .sort((x, y) => Number(value(y) === value(best)) - Number(value(x) === value(best)));
      const { rel, noise } = compare(cands, stage.work);
      // A winner must beat the incumbent by MARGIN beyond the noise, and again in a head-to-head
      // rerun: one lucky round on a shared machine must not change a host's cached choice.
      let pick = 0;
      rel.forEach((v, c) => {
        if (v < rel[pick] && v < 1 - MARGIN - noise) pick = c;
      });
      let confirm: number | undefined;
      if (pick !== 0) {
        const again = compare([cands[0], cands[pick]], stage.work);
        confirm = again.rel[1];
        if (!(confirm < 1 - MARGIN - again.noise)) pick = 0;
      }
      best = cands[pick];
      stages.push({
        name: stage.name,
        candidates: cands
          .map((c, i) => ({ value: value(c), relative: Number(rel[i].toFixed(4)) }))
          .sort((x, y) => x.value - y.value),
        noise: Number(noise.toFixed(4)),
        ...(confirm === undefined ? {} : { confirm: Number(confirm.toFixed(4)) }),
        chosen: value(best),
      });
    }
  } finally {
    rt.tuning = saved;
    for (const p of prepared.values()) p.free();
  }
  return {
    tuning: checkTuning(best),
    ms: Math.round(performance.now() - t0),
    stages,
    ...(skipped.length ? { skipped } : {}),
    noisy: skipped.length > 0 || stages.some((s) => s.noise > MARGIN),
  };
}

export function tuningKey(rt: WasmRuntime): TuningKey {
  return { cpu: cpuModel(), threads: rt.threads, build: rt.build, wasm: rt.wasmHash };
}

export interface ResolveOptions {
  /** Where cache files live (default: $XDG_CACHE_HOME/protodino or ~/.cache/protodino). */
  dir?: string;
  /** How a cache miss is measured (tests pass a stand-in). */
  measure?: (rt: WasmRuntime) => Measurement;
  /** Where warnings go (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * Sets rt.tuning and rt.tuningSource from `spec` (`--tune` / PROTODINO_TUNE; see parseTuneSpec):
 * off → the defaults; an override → its values; auto → the cache file for this host, or a
 * measurement written to it. A corrupt or foreign cache file is reported and measured over; a cache
 * that cannot be written is reported and the measurement used for this process only.
 */
export function resolveTuning(rt: WasmRuntime, spec: string, opts: ResolveOptions = {}): TuningSource {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`protodino: warning: ${m}\n`));
  const parsed = parseTuneSpec(spec);
  if (parsed.mode === 'off') {
    rt.tuning = DEFAULT_TUNING;
    rt.tuningSource = { from: 'default', detail: 'tuning off' };
  } else if (parsed.mode === 'override') {
    rt.tuning = parsed.tuning;
    rt.tuningSource = { from: 'override', detail: parsed.detail };
  } else {
    const key = tuningKey(rt);
    const path = cachePath(key, opts.dir ?? cacheDir());
    const read = readCache(path, key);
    if (read.status === 'hit') {
      rt.tuning = read.tuning;
      rt.tuningSource = { from: 'cache', detail: path };
      return rt.tuningSource;
    }
    if (read.status !== 'missing')
      warn(`the tuning cache ${path} ${read.reason}; ignoring it and measuring this host again (about a second)`);
    const m = (opts.measure ?? measureTuning)(rt);
    rt.tuning = m.tuning;
    const measured: CacheFile['measured'] = { at: new Date().toISOString(), ms: m.ms, stages: m.stages };
    if (m.noisy) {
      // other load made some stage undecidable: those kept their defaults; measure again next time
      const which = m.stages.filter((s) => s.noise > MARGIN).map((s) => s.name);
      rt.tuningSource = {
        from: 'measured',
        detail: `${m.ms} ms, not cached: the machine was too busy to decide ${which.join(', ')}`,
      };
      return rt.tuningSource;
    }
    try {
      writeCache(path, key, m.tuning, measured);
      rt.tuningSource = { from: 'measured', detail: `${m.ms} ms, cached in ${path}` };
    } catch (e) {
      warn(
        `cannot write the tuning cache ${path} (${(e as Error).message}); the measurement is used for this process only`,
      );
      rt.tuningSource = { from: 'measured', detail: `${m.ms} ms, not cached` };
    }
  }
  return rt.tuningSource;
}

/** `mc 128, ... (cache: /home/u/.cache/protodino/tuning-relaxed-2t-….json)` */
export function tuningLine(rt: WasmRuntime): string {
  return `${describeTuning(rt.tuning)} (${rt.tuningSource.from}: ${rt.tuningSource.detail})`;
}
