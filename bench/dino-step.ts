// End-to-end suite: one DINO training step (student forward and backward on 2 global + 6 local
// crops, DINO loss with centering, KoLeo-proto, clipping, AdamW, teacher forward, EMA, center
// update: src/train/step.ts dinoStep) at the default CPU preset (vit_cpu) and at vit_tiny, batch 64
// (halved while a step does not fit in wasm32's 4 GiB: vit_tiny needs about 70 MiB per image),
// on wasm with 1 thread and with every core, on WebGPU (on a software adapter only a few tiny
// batches: llvmpipe speed says nothing about GPUs), and the PyTorch peer (bench/peers/dino_step.py,
// the same model and step in PyTorch eager on CPU with the same thread counts) where
// /usr/bin/python3 has torch. Reports images/s from the median step time; with --profile also the
// per-kernel-family time profile of each configuration (src/backend/profile.ts).
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Backend } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { WebGPUBackend } from '../src/backend/webgpu/index.js';
import { ProfiledBackend, profileTable, type ProfileReport } from '../src/backend/profile.js';
import { zeros } from '../src/tensor/create.js';
import { keep } from '../src/tensor/tensor.js';
import { AdamW, decayGroups } from '../src/tensor/ops/optim.js';
import { DEFAULTS, validate, type TrainConfig } from '../src/train/config.js';
import { buildNetwork } from '../src/train/network.js';
import { dinoStep, emForHeads, type DinoState, type StepSchedule } from '../src/train/step.js';
import { packagePath } from '../src/util/paths.js';
import { markdownTable, profileMode, quickMode, type SuiteReport } from './harness.js';

const PYTHON = '/usr/bin/python3';
const ARCHS = ['vit_cpu', 'vit_tiny'] as const;
type Arch = (typeof ARCHS)[number];
const BATCH = 64;
const CHANNELS = 1; // Fashion-MNIST, the default dataset
const KOLEO_PROTO = 0.1; // as in the demo: the step includes the KoLeo-proto term and its gradient

/** How many steps a case runs: warm-up steps, then timed ones until both minimums are met. */
interface Sampling {
  warmup: number;
  minSteps: number;
  maxSteps: number;
  minSeconds: number;
}

const SAMPLING: Sampling = quickMode()
  ? { warmup: 1, minSteps: 2, maxSteps: 2, minSeconds: 0 }
  : { warmup: 1, minSteps: 3, maxSteps: 10, minSeconds: 8 };
/** A software adapter runs a few small steps: it is checked to work, its speed is not the point. */
const SOFTWARE_SAMPLING: Sampling = { warmup: 1, minSteps: quickMode() ? 1 : 2, maxSteps: 2, minSeconds: 0 };
/** Profiled steps after the timed ones; the first of them is left out of the averages. */
const PROFILE_STEPS = quickMode() ? 2 : 3;
/** Passes over the CPU engines: a shared machine's bursts of other load then spoil some passes, not all. */
const PASSES = quickMode() ? 1 : 2;

/** The benchmarked configuration: the trainer's defaults (2 global 28² + 6 local 12² crops, K = 1024). */
export function benchConfig(arch: Arch | 'vit_small', batch: number): TrainConfig {
  return validate({ ...DEFAULTS, arch, batch_size: batch, koleo_proto: KOLEO_PROTO, freeze_last_layer: 0 });
}

function schedule(cfg: TrainConfig): StepSchedule {
  return {
    epoch: 0,
    lr: (cfg.lr * cfg.batch_size) / 256,
    weightDecay: cfg.weight_decay,
    momentum: cfg.momentum_teacher,
    teacherTemp: cfg.teacher_temp,
  };
}

function gaussian(n: number, seed: number): Float32Array {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  const u = () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return (a + 1) / 4294967297;
  };
  for (let i = 0; i < n; i++) d[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return d;
}

export interface StepTiming {
  seconds: number[];
  medianSeconds: number;
  imagesPerSecond: number;
  loss: number;
  parameters: number;
  profile?: ProfileReport;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Times dinoStep on `be` (a ProfiledBackend adds profiled steps after the timed ones). Inputs are
 * fixed random crops made once, so the time is the step's and not the loader's; each step waits
 * for the device and includes uploading the crops.
 */
/**
 * A step's state at `cfg` on `be` (student, teacher, AdamW, center) with fixed random crops and
 * the schedule of step 0; dispose() frees it.
 */
export function benchState(
  be: Backend,
  cfg: TrainConfig,
): {
  state: DinoState;
  globals: Float32Array;
  locals: Float32Array;
  sch: StepSchedule;
  parameters: number;
  dispose(): void;
} {
  const B = cfg.batch_size;
  const student = buildNetwork(cfg, be, CHANNELS, cfg.seed);
  const teacher = buildNetwork(cfg, be, CHANNELS, cfg.seed, 0);
  for (const p of teacher.parameters()) p.requiresGrad = false;
  const [decay, plain] = decayGroups(student.namedParameters().filter(([, p]) => p.requiresGrad));
  const optimizer = new AdamW([
    { params: decay, lr: 0, weightDecay: 0 },
    { params: plain, lr: 0, weightDecay: 0 },
  ]);
  const center = keep(zeros([1, cfg.out_dim], be));
  const em = emForHeads(cfg, student, teacher);
  const state: DinoState = {
    cfg,
    student,
    teacher,
    optimizer,
    center,
    channels: CHANNELS,
    localSize: cfg.local_crops_size,
    em,
  };
  const G = cfg.global_crops_size,
    S = cfg.local_crops_size;
  const globals = gaussian(2 * B * CHANNELS * G * G, 1);
  const locals = gaussian(cfg.local_crops_number * B * CHANNELS * S * S, 2);
  return {
    state,
    globals,
    locals,
    sch: schedule(cfg),
    parameters: student.parameterCount(),
    dispose() {
      em?.dispose();
      center.dispose();
      optimizer.dispose();
      teacher.dispose();
      student.dispose();
    },
  };
}

export async function timeDinoStep(
  be: Backend,
  cfg: TrainConfig,
  sampling: Sampling,
  profileSteps = 0,
): Promise<StepTiming> {
  const B = cfg.batch_size;
  const bs = benchState(be, cfg);
  const { state, globals, locals, sch } = bs;
  const seconds: number[] = [];
  let loss = NaN;
  let step = 0; // counted for --prototypes em, whose annealing follows the step
  const one = async (last: boolean) => {
    const t = dinoStep(state, globals, locals, { ...sch, step: step++ });
    try {
      await be.sync();
      if (last) loss = await t.item();
    } finally {
      t.dispose();
    }
  };
  try {
    for (let i = 0; i < sampling.warmup; i++) await one(false);
    const start = performance.now();
    while (
      seconds.length < sampling.maxSteps &&
      (seconds.length < sampling.minSteps || performance.now() - start < sampling.minSeconds * 1000)
    ) {
      const t0 = performance.now();
      await one(false);
      seconds.push((performance.now() - t0) / 1000);
    }
    await one(true); // the loss read-back, outside the timed steps
    let profile: ProfileReport | undefined;
    if (profileSteps > 0 && be instanceof ProfiledBackend) {
      be.reset();
      for (let i = 0; i < profileSteps; i++) {
        be.beginStep();
        const t = dinoStep(state, globals, locals, { ...sch, step: step++ });
        await be.endStep();
        t.dispose();
      }
      profile = be.report();
    }
    const med = median(seconds);
    return { seconds, medianSeconds: med, imagesPerSecond: B / med, loss, parameters: bs.parameters, profile };
  } finally {
    bs.dispose();
  }
}

// ---- the PyTorch peer ------------------------------------------------------------------------

export interface PeerResult {
  images_per_s: number;
  median_seconds: number;
  step_seconds: number[];
  parameters: number;
  threads: number;
  loss: number;
  torch: string;
  blas: { path: string; [k: string]: unknown };
  /** Peak RSS less the RSS after importing torch. */
  peak_bytes: number;
  /** What the Linear layers ran on (bench/peers/dino_step.py --linear). */
  linear_route?: string;
}

export function peerAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { timeout: 120_000, stdio: 'ignore' });
  return r.status === 0;
}

/**
 * How the peer's thread pools wait between parallel regions. With several threads PyTorch's OpenMP
 * pool and OpenBLAS' own pthread pool both spin by default and take cores from each other; on this
 * shared machine that cost the peer 5–16×, and OMP_WAIT_POLICY=PASSIVE removes it. The suite
 * runs both and keeps the faster, so the peer is compared at its best.
 */
export const PEER_WAIT_POLICIES = ['default', 'PASSIVE'] as const;
export type PeerWaitPolicy = (typeof PEER_WAIT_POLICIES)[number];

/**
 * The kernels of the peer's Linear layers: the BLAS (F.linear), or oneDNN through 1×1 convolutions,
 * the route a PyTorch built with MKL/oneDNN takes on some hosts (about 0.9× ours at vit_cpu on an
 * AVX-512 Xeon, issue 15). Which wins depends on the host, so the suite runs both and keeps the faster.
 */
export const PEER_LINEAR_ROUTES = ['blas', 'onednn'] as const;
export type PeerLinearRoute = (typeof PEER_LINEAR_ROUTES)[number];

/** Runs bench/peers/dino_step.py with `threads` threads (OpenMP, OpenBLAS and MKL pools alike). */
export function runPeer(
  cfg: TrainConfig,
  threads: number,
  sampling: Sampling,
  wait: PeerWaitPolicy = 'default',
  linear: PeerLinearRoute = 'blas',
): PeerResult {
  const script = packagePath('bench', 'peers', 'dino_step.py');
  const t = String(threads);
  const args = [
    script,
    '--arch',
    cfg.arch,
    '--batch',
    String(cfg.batch_size),
    '--threads',
    t,
    '--patch',
    String(cfg.patch_size),
    '--global_size',
    String(cfg.global_crops_size),
    '--local_size',
    String(cfg.local_crops_size),
    '--local_crops',
    String(cfg.local_crops_number),
    '--channels',
    String(CHANNELS),
    '--out_dim',
    String(cfg.out_dim),
    '--hidden_dim',
    String(cfg.hidden_dim),
    '--bottleneck_dim',
    String(cfg.bottleneck_dim),
    '--koleo_proto',
    String(cfg.koleo_proto),
    '--clip_grad',
    String(cfg.clip_grad),
    '--lr',
    String(schedule(cfg).lr),
    '--weight_decay',
    String(cfg.weight_decay),
    '--momentum',
    String(cfg.momentum_teacher),
    '--teacher_temp',
    String(cfg.teacher_temp),
    '--student_temp',
    String(cfg.student_temp),
    '--center_momentum',
    String(cfg.center_momentum),
    '--warmup',
    String(sampling.warmup),
    '--min_steps',
    String(sampling.minSteps),
    '--max_steps',
    String(sampling.maxSteps),
    '--min_seconds',
    String(sampling.minSeconds),
    '--linear',
    linear,
  ];
  return spawnPeer<PeerResult>(script, args, threads, wait);
}

/**
 * Runs a PyTorch peer script (args[0]) with `threads` threads in every pool it may use (OpenMP,
 * OpenBLAS, MKL) and the given OpenMP wait policy; returns the JSON of its last stdout line.
 */
export function spawnPeer<T>(script: string, args: string[], threads: number, wait: PeerWaitPolicy): T {
  const t = String(threads);
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t };
  if (wait === 'default') delete env.OMP_WAIT_POLICY;
  else env.OMP_WAIT_POLICY = wait;
  const r = spawnSync(PYTHON, args, { env, encoding: 'utf8', timeout: 900_000, maxBuffer: 1 << 24 });
  if (r.error) throw new Error(`${script}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `${script} exited with ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`,
    );
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${script}: expected one JSON line on stdout, got '${line.slice(0, 200)}'`);
  }
}

// ---- the suite -------------------------------------------------------------------------------

interface Row {
  arch: Arch;
  batch: number;
  engine: string;
  threads?: number;
  /** The peer's OMP_WAIT_POLICY. */
  variant?: PeerWaitPolicy;
  /** The peer's route for its Linear layers. */
  linear?: PeerLinearRoute;
  /** wasm: the linear memory at the end (it only grows: the high-water mark); peer: peak RSS over its imports. */
  peakBytes?: number;
  medianSeconds: number;
  imagesPerSecond: number;
  seconds: number[];
  loss: number;
  parameters: number;
  pass: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const fmt = (v: number | undefined, digits = 1, unit = '') =>
  v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(digits)}${unit}`;

function wasmEngines(cores: number): { label: string; threads: number }[] {
  const list = [{ label: 'wasm 1t', threads: 1 }];
  if (cores > 1) list.push({ label: `wasm ${cores}t`, threads: cores });
  return list;
}

export async function dinoStepSuite(): Promise<SuiteReport> {
  const cores = availableParallelism();
  const profiling = profileMode();
  const rows: Row[] = [];
  const profiles: { arch: Arch; batch: number; engine: string; report: ProfileReport }[] = [];
  const notes: string[] = [];
  const peer = peerAvailable();
  if (!peer) notes.push(`PyTorch peer skipped: \`${PYTHON} -c 'import torch'\` fails`);
  let peerBlas: PeerResult['blas'] | null = null;
  let torchVersion = '';
  const wasm = wasmEngines(cores);
  const peerThreads = cores > 1 ? [1, cores] : [1];

  // The batch each arch ran at: BATCH, halved while the wasm step does not fit in wasm32's 4 GiB.
  const batchOf: Record<Arch, number> = { vit_cpu: BATCH, vit_tiny: BATCH };
  for (const arch of ARCHS) {
    for (let pass = 0; pass < PASSES; pass++) {
      for (const e of wasm) {
        for (;;) {
          const batch = batchOf[arch];
          const raw = await WasmBackend.create({ threads: e.threads });
          const be = profiling && pass === PASSES - 1 ? new ProfiledBackend(raw) : raw;
          try {
            const { profile, ...t } = await timeDinoStep(
              be,
              benchConfig(arch, batch),
              SAMPLING,
              be instanceof ProfiledBackend ? PROFILE_STEPS : 0,
            );
            rows.push({
              arch,
              batch,
              engine: e.label,
              threads: e.threads,
              ...t,
              peakBytes: raw.rt.memory.buffer.byteLength,
              pass,
            });
            console.log(
              `dino-step ${arch} b${batch} ${e.label}: ${fmt(t.imagesPerSecond)} img/s (${t.seconds.map((s) => s.toFixed(2)).join(', ')} s)`,
            );
            if (profile) {
              profiles.push({ arch, batch, engine: e.label, report: profile });
              console.log(`\nprofile ${arch} b${batch} ${e.label}\n\n${profileTable(profile)}\n`);
            }
            break;
          } catch (err) {
            const msg = (err as Error).message;
            if (!/wasm out of memory/.test(msg) || batch <= 2) throw err;
            batchOf[arch] = batch / 2;
            notes.push(
              `${arch}: batch ${batch} does not fit in wasm memory (${msg}); measured at batch ${batch / 2}, the peer too`,
            );
            console.log(`dino-step ${arch} b${batch} ${e.label}: out of wasm memory, retrying at batch ${batch / 2}`);
          } finally {
            be.destroy();
          }
        }
      }
      if (!peer) continue;
      const batch = batchOf[arch];
      for (const threads of peerThreads) {
        const label = `torch ${threads}t`;
        for (const variant of threads > 1 ? PEER_WAIT_POLICIES : (['default'] as const)) {
          for (const linear of PEER_LINEAR_ROUTES) {
            try {
              const r = runPeer(benchConfig(arch, batch), threads, SAMPLING, variant, linear);
              peerBlas = r.blas;
              torchVersion = r.torch;
              rows.push({
                arch,
                batch,
                engine: label,
                threads,
                variant,
                linear,
                peakBytes: r.peak_bytes,
                medianSeconds: r.median_seconds,
                imagesPerSecond: r.images_per_s,
                seconds: r.step_seconds,
                loss: r.loss,
                parameters: r.parameters,
                pass,
              });
              console.log(
                `dino-step ${arch} b${batch} ${label} (OMP_WAIT_POLICY ${variant}, linear ${r.linear_route ?? linear}): ` +
                  `${fmt(r.images_per_s)} img/s (${r.step_seconds.map((s) => s.toFixed(2)).join(', ')} s; ${r.blas.path})`,
              );
            } catch (e) {
              notes.push(`${label} ${arch} (linear ${linear}): ${(e as Error).message}`);
              console.log(`dino-step: ${label} ${arch} (linear ${linear}) failed (${(e as Error).message})`);
            }
          }
        }
      }
    }
  }

  // WebGPU: batch 64 and the growth with the batch on a hardware adapter; a few tiny batches on a software one.
  let gpuLabel = '';
  // One device for every WebGPU case: Dawn's Node binding has aborted the process (std::system_error)
  // when instances were created and destroyed several times in one process.
  let gpu: WebGPUBackend | null = null;
  try {
    gpu = await WebGPUBackend.create({ adapter: 'any' });
    const software = gpu.software;
    gpuLabel = software ? 'webgpu (software)' : 'webgpu';
    const plan: [Arch, number[]][] = software
      ? [
          ['vit_cpu', quickMode() ? [2, 4] : [2, 4, 8]],
          ['vit_tiny', [2]],
        ]
      : [
          ['vit_cpu', [16, 32, 64, 128]],
          ['vit_tiny', [16, 32, 64]],
        ];
    for (const [arch, batches] of plan) {
      for (const batch of batches) {
        const profileThis = profiling && batch === batches[0];
        // The profiling wrapper is dropped, not destroyed: destroying it would destroy the shared device.
        const be = profileThis ? new ProfiledBackend(gpu) : gpu;
        const { profile, ...t } = await timeDinoStep(
          be,
          benchConfig(arch, batch),
          software ? SOFTWARE_SAMPLING : SAMPLING,
          profileThis ? 2 : 0,
        );
        rows.push({ arch, batch, engine: gpuLabel, ...t, pass: 0 });
        console.log(
          `dino-step ${arch} b${batch} ${gpuLabel}: ${fmt(t.imagesPerSecond, 2)} img/s (${t.seconds.map((s) => s.toFixed(2)).join(', ')} s)`,
        );
        if (profile) {
          profiles.push({ arch, batch, engine: gpuLabel, report: profile });
          console.log(`\nprofile ${arch} b${batch} ${gpuLabel}\n\n${profileTable(profile)}\n`);
        }
      }
    }
  } catch (e) {
    notes.push(`WebGPU: ${(e as Error).message}`);
    console.log(`dino-step: WebGPU unavailable (${(e as Error).message})`);
  } finally {
    gpu?.destroy();
  }

  // Best pass per (arch, batch, engine).
  const best = new Map<string, Row>();
  for (const r of rows) {
    const k = `${r.arch}|${r.batch}|${r.engine}`;
    const b = best.get(k);
    if (!b || r.imagesPerSecond > b.imagesPerSecond) best.set(k, r);
  }
  const get = (arch: Arch, batch: number, engine: string) => best.get(`${arch}|${batch}|${engine}`);
  for (const arch of ARCHS) {
    const ours = get(arch, batchOf[arch], 'wasm 1t'),
      theirs = get(arch, batchOf[arch], 'torch 1t');
    if (ours && theirs && ours.parameters !== theirs.parameters) {
      notes.push(
        `${arch}: parameter counts differ (ours ${ours.parameters}, peer ${theirs.parameters}): the models are not the same`,
      );
    }
  }

  const all = `wasm ${cores}t`,
    torchAll = `torch ${cores}t`;
  const cpuEngines = [...wasm.map((e) => e.label), ...(peer ? peerThreads.map((t) => `torch ${t}t`) : [])];
  const ratio = (a?: Row, b?: Row) => (a && b ? a.imagesPerSecond / b.imagesPerSecond : undefined);
  const header = ['arch', 'batch', 'params', ...cpuEngines.map((e) => `${e} img/s`)];
  if (cores > 1) header.push(`wasm ${cores}t ÷ 1t`);
  if (peer)
    header.push(
      `wasm 1t ÷ torch 1t`,
      ...(cores > 1 ? [`wasm ${cores}t ÷ torch ${cores}t`, `torch ${cores}t ÷ 1t`] : []),
      `peak wasm ${cores}t / torch ${cores}t`,
    );
  const cpuRows = ARCHS.map((arch) => {
    const r = (e: string) => get(arch, batchOf[arch], e);
    const row: (string | number)[] = [
      arch,
      batchOf[arch],
      r('wasm 1t')?.parameters ?? '–',
      ...cpuEngines.map((e) => fmt(r(e)?.imagesPerSecond)),
    ];
    if (cores > 1) row.push(fmt(ratio(r(all), r('wasm 1t')), 2, 'x'));
    if (peer) {
      row.push(fmt(ratio(r('wasm 1t'), r('torch 1t')), 2, 'x'));
      if (cores > 1) row.push(fmt(ratio(r(all), r(torchAll)), 2, 'x'), fmt(ratio(r(torchAll), r('torch 1t')), 2, 'x'));
      const mine = r(all)?.peakBytes,
        theirs = r(torchAll)?.peakBytes;
      row.push(
        mine !== undefined && theirs !== undefined
          ? `${mib(mine)} / ${mib(theirs)} = ${(mine / theirs).toFixed(2)}x`
          : '–',
      );
    }
    return row;
  });
  const gpuRows = [...best.values()]
    .filter((r) => r.engine === gpuLabel)
    .map((r) => [
      r.arch,
      r.batch,
      fmt(r.medianSeconds, 2),
      fmt(r.imagesPerSecond, 2),
      Number.isFinite(r.loss) ? r.loss.toFixed(3) : String(r.loss),
    ]);
  const parts = [
    `images/s from the median step time${PASSES > 1 ? `, best of ${PASSES} passes` : ''} (one step: 2 global 28² + 6 local 12² crops per image, ` +
      `student forward+backward, teacher forward, DINO loss with centering, KoLeo-proto, clipping, AdamW, EMA, center):`,
    '',
    markdownTable(header, cpuRows),
  ];
  if (peerBlas) {
    parts.push(
      '',
      `PyTorch peer: torch ${torchVersion}, ${peerBlas.path} (libblas.so.3 → ${String(peerBlas.libblas_so_3 ?? '?')}), ` +
        `threads set by torch.set_num_threads and OMP/OPENBLAS/MKL_NUM_THREADS.`,
    );
    if (cores > 1) {
      const waits = ARCHS.map((arch) => {
        const v = (w: PeerWaitPolicy) =>
          Math.max(
            0,
            ...rows
              .filter((r) => r.arch === arch && r.engine === torchAll && r.variant === w)
              .map((r) => r.imagesPerSecond),
          );
        return `${arch} ${PEER_WAIT_POLICIES.map((w) => `${w} ${fmt(v(w))}`).join(', ')} img/s`;
      });
      parts.push(`${torchAll} is the faster of OMP_WAIT_POLICY unset (spinning) and PASSIVE: ${waits.join('; ')}.`);
    }
    const routes = ARCHS.flatMap((arch) =>
      peerThreads.map((t) => {
        const v = (l: PeerLinearRoute) =>
          Math.max(
            0,
            ...rows
              .filter((r) => r.arch === arch && r.engine === `torch ${t}t` && r.linear === l)
              .map((r) => r.imagesPerSecond),
          );
        const won = get(arch, batchOf[arch], `torch ${t}t`)?.linear ?? '–';
        return `${arch} ${t}t ${PEER_LINEAR_ROUTES.map((l) => `${l} ${fmt(v(l))}`).join(', ')} img/s (kept: ${won})`;
      }),
    );
    parts.push(
      `Each torch column is also the faster of two routes for the Linear layers, F.linear (BLAS) and oneDNN 1×1 convolutions: ${routes.join('; ')}.`,
    );
  }
  if (gpuRows.length > 0) {
    parts.push(
      '',
      `${gpuLabel}, images/s as the batch grows${gpuLabel.includes('software') ? ' (llvmpipe: correctness only, not GPU speed)' : ''}:`,
      '',
      markdownTable(['arch', 'batch', 's/step', 'img/s', 'loss'], gpuRows),
    );
  }
  if (notes.length > 0) parts.push('', ...notes.map((n) => `note: ${n}`));
  for (const p of profiles)
    parts.push('', `profile ${p.arch} batch ${p.batch} ${p.engine}:`, '', profileTable(p.report));

  return {
    summaries: [],
    table: parts.join('\n'),
    details: {
      passes: PASSES,
      sampling: SAMPLING,
      softwareSampling: SOFTWARE_SAMPLING,
      batch: BATCH,
      batchOf,
      channels: CHANNELS,
      koleoProto: KOLEO_PROTO,
      configs: Object.fromEntries(
        ARCHS.map((a) => {
          const c = benchConfig(a, BATCH);
          return [
            a,
            {
              patch_size: c.patch_size,
              global_crops_size: c.global_crops_size,
              local_crops_size: c.local_crops_size,
              local_crops_number: c.local_crops_number,
              out_dim: c.out_dim,
              hidden_dim: c.hidden_dim,
              bottleneck_dim: c.bottleneck_dim,
            },
          ];
        }),
      ),
      rows,
      best: [...best.values()],
      ratios: Object.fromEntries(
        ARCHS.map((arch) => {
          const r = (e: string) => get(arch, batchOf[arch], e);
          return [
            arch,
            {
              batch: batchOf[arch],
              wasmAllOverTorchAll: ratio(r(all), r(torchAll)),
              wasm1tOverTorch1t: ratio(r('wasm 1t'), r('torch 1t')),
              wasmAllOver1t: ratio(r(all), r('wasm 1t')),
              torchAllOver1t: ratio(r(torchAll), r('torch 1t')),
            },
          ];
        }),
      ),
      peer: peerBlas ? { torch: torchVersion, blas: peerBlas } : null,
      profiles,
      notes,
    },
  };
}
