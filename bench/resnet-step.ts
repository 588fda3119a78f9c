// End-to-end suite for the convolutional path: one ResNet DINO training step (src/train/step.ts
// dinoStep, as dino-step.ts times it) with DINO's ResNet recipe (BatchNorm in the head) on 2 global
// 28² + 4 local 12² crops per image, at resnet_cpu and resnet18, batch 64 (halved while a step does
// not fit in wasm32's 4 GiB), wasm with 1 thread and every core against the PyTorch peer
// (bench/peers/resnet_step.py) with the same thread counts. For the peer each thread count keeps its
// fastest variant: OMP_WAIT_POLICY unset or PASSIVE (see dino-step.ts) and oneDNN on or off (the
// native convolution is im2col + OpenBLAS). Reports images/s from the median step and peak memory:
// ours is the wasm linear memory at the end (it only grows, so it is the high-water mark of every
// tensor and scratch buffer), the peer's its peak RSS less the RSS after importing torch.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { ProfiledBackend, profileTable, type ProfileReport } from '../src/backend/profile.js';
import { DEFAULTS, validate, type TrainConfig } from '../src/train/config.js';
import { packagePath } from '../src/util/paths.js';
import { spawnPeer, timeDinoStep } from './dino-step.js';
import { markdownTable, profileMode, quickMode, type SuiteReport } from './harness.js';

const PYTHON = '/usr/bin/python3';
const ARCHS = ['resnet_cpu', 'resnet18'] as const;
type Arch = (typeof ARCHS)[number];
const BATCH = 64;
const LOCAL_CROPS = 4;
const KOLEO_PROTO = 0.1;
const PASSES = quickMode() ? 1 : 2;
const SAMPLING = quickMode()
  ? { warmup: 1, minSteps: 2, maxSteps: 2, minSeconds: 0 }
  : { warmup: 1, minSteps: 3, maxSteps: 10, minSeconds: 8 };
const PROFILE_STEPS = quickMode() ? 2 : 3;

export function resnetBenchConfig(arch: Arch, batch: number): TrainConfig {
  return validate({
    ...DEFAULTS,
    arch,
    batch_size: batch,
    use_bn_in_head: true,
    local_crops_number: LOCAL_CROPS,
    koleo_proto: KOLEO_PROTO,
    freeze_last_layer: 0,
  });
}

interface PeerVariant {
  wait: 'default' | 'PASSIVE';
  mkldnn: 'on' | 'off';
}

interface PeerResult {
  images_per_s: number;
  median_seconds: number;
  step_seconds: number[];
  parameters: number;
  loss: number;
  torch: string;
  peak_bytes: number;
  conv_route: string;
  blas: { path: string; [k: string]: unknown };
}

function peerVariants(threads: number): PeerVariant[] {
  return threads > 1
    ? [
        { wait: 'default', mkldnn: 'on' },
        { wait: 'PASSIVE', mkldnn: 'on' },
        { wait: 'PASSIVE', mkldnn: 'off' },
      ]
    : [
        { wait: 'default', mkldnn: 'on' },
        { wait: 'default', mkldnn: 'off' },
      ];
}

function runPeer(cfg: TrainConfig, threads: number, v: PeerVariant): PeerResult {
  const script = packagePath('bench', 'peers', 'resnet_step.py');
  const t = String(threads);
  const lr = (cfg.lr * cfg.batch_size) / 256;
  const args = [
    script,
    '--arch',
    cfg.arch,
    '--batch',
    String(cfg.batch_size),
    '--threads',
    t,
    '--global_size',
    String(cfg.global_crops_size),
    '--local_size',
    String(cfg.local_crops_size),
    '--local_crops',
    String(cfg.local_crops_number),
    '--channels',
    '1',
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
    String(lr),
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
    '--mkldnn',
    v.mkldnn,
    '--warmup',
    String(SAMPLING.warmup),
    '--min_steps',
    String(SAMPLING.minSteps),
    '--max_steps',
    String(SAMPLING.maxSteps),
    '--min_seconds',
    String(SAMPLING.minSeconds),
  ];
  return spawnPeer<PeerResult>(script, args, threads, v.wait);
}

interface Row {
  arch: Arch;
  batch: number;
  engine: string;
  variant?: string;
  imagesPerSecond: number;
  seconds: number[];
  peakBytes: number;
  loss: number;
  parameters: number;
  pass: number;
}

const fmt = (v: number | undefined, digits = 1, unit = '') =>
  v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(digits)}${unit}`;
const mib = (b: number | undefined) => (b === undefined ? '–' : `${(b / 2 ** 20).toFixed(0)} MiB`);

export async function resnetStepSuite(): Promise<SuiteReport> {
  const cores = availableParallelism();
  const threadCounts = cores > 1 ? [1, cores] : [1];
  const peer = spawnSync(PYTHON, ['-c', 'import torch'], { timeout: 120_000, stdio: 'ignore' }).status === 0;
  const rows: Row[] = [];
  const notes: string[] = [];
  const profiles: { arch: Arch; batch: number; engine: string; report: ProfileReport }[] = [];
  if (!peer) notes.push(`PyTorch peer skipped: \`${PYTHON} -c 'import torch'\` fails`);
  let peerInfo: PeerResult | null = null;
  const batchOf: Record<Arch, number> = { resnet_cpu: BATCH, resnet18: BATCH };
  for (const arch of ARCHS) {
    for (let pass = 0; pass < PASSES; pass++) {
      for (const threads of threadCounts) {
        const engine = `wasm ${threads}t`;
        for (;;) {
          const batch = batchOf[arch];
          const raw = await WasmBackend.create({ threads });
          const be = profileMode() && pass === PASSES - 1 ? new ProfiledBackend(raw) : raw;
          try {
            const { profile, ...t } = await timeDinoStep(
              be,
              resnetBenchConfig(arch, batch),
              SAMPLING,
              be instanceof ProfiledBackend ? PROFILE_STEPS : 0,
            );
            const peakBytes = raw.rt.memory.buffer.byteLength;
            rows.push({
              arch,
              batch,
              engine,
              imagesPerSecond: t.imagesPerSecond,
              seconds: t.seconds,
              peakBytes,
              loss: t.loss,
              parameters: t.parameters,
              pass,
            });
            console.log(
              `resnet-step ${arch} b${batch} ${engine}: ${fmt(t.imagesPerSecond)} img/s (${t.seconds.map((s) => s.toFixed(2)).join(', ')} s), peak ${mib(peakBytes)}`,
            );
            if (profile) {
              profiles.push({ arch, batch, engine, report: profile });
              console.log(`\nprofile ${arch} b${batch} ${engine}\n\n${profileTable(profile)}\n`);
            }
            break;
          } catch (err) {
            const msg = (err as Error).message;
            if (!/wasm out of memory/.test(msg) || batch <= 2) throw err;
            batchOf[arch] = batch / 2;
            notes.push(
              `${arch}: batch ${batch} does not fit in wasm memory; measured at batch ${batch / 2}, the peer too`,
            );
          } finally {
            be.destroy();
          }
        }
      }
      if (!peer) continue;
      for (const threads of threadCounts) {
        for (const v of peerVariants(threads)) {
          const engine = `torch ${threads}t`,
            variant = `OMP_WAIT_POLICY ${v.wait}, oneDNN ${v.mkldnn}`;
          try {
            const r = runPeer(resnetBenchConfig(arch, batchOf[arch]), threads, v);
            peerInfo = r;
            rows.push({
              arch,
              batch: batchOf[arch],
              engine,
              variant,
              imagesPerSecond: r.images_per_s,
              seconds: r.step_seconds,
              peakBytes: r.peak_bytes,
              loss: r.loss,
              parameters: r.parameters,
              pass,
            });
            console.log(
              `resnet-step ${arch} b${batchOf[arch]} ${engine} (${variant}; ${r.conv_route}; ${r.blas.path}): ` +
                `${fmt(r.images_per_s)} img/s (${r.step_seconds.map((s) => s.toFixed(2)).join(', ')} s), peak ${mib(r.peak_bytes)}`,
            );
          } catch (e) {
            notes.push(`${engine} ${arch} (${variant}): ${(e as Error).message}`);
            console.log(`resnet-step: ${engine} ${arch} (${variant}) failed (${(e as Error).message})`);
          }
        }
      }
    }
  }

  // Best pass (and, for the peer, best variant) per (arch, engine); its peak memory comes with it.
  const best = new Map<string, Row>();
  for (const r of rows) {
    const k = `${r.arch}|${r.engine}`;
    const b = best.get(k);
    if (!b || r.imagesPerSecond > b.imagesPerSecond) best.set(k, r);
  }
  const get = (arch: Arch, engine: string) => best.get(`${arch}|${engine}`);
  for (const arch of ARCHS) {
    const ours = get(arch, 'wasm 1t'),
      theirs = get(arch, 'torch 1t');
    if (ours && theirs && ours.parameters !== theirs.parameters) {
      notes.push(
        `${arch}: parameter counts differ (ours ${ours.parameters}, peer ${theirs.parameters}): the models are not the same`,
      );
    }
  }
  const engines = [...threadCounts.map((t) => `wasm ${t}t`), ...(peer ? threadCounts.map((t) => `torch ${t}t`) : [])];
  const top = `${cores}t`;
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
  const header = ['arch', 'batch', 'params', ...engines.map((e) => `${e} img/s`), ...engines.map((e) => `${e} peak`)];
  if (peer) header.push('wasm 1t ÷ torch 1t', `wasm ${top} ÷ torch ${top}`, `peak wasm ${top} ÷ torch ${top}`);
  const table = ARCHS.map((arch) => {
    const r = (e: string) => get(arch, e);
    const row: (string | number)[] = [
      arch,
      batchOf[arch],
      r('wasm 1t')?.parameters ?? '–',
      ...engines.map((e) => fmt(r(e)?.imagesPerSecond)),
      ...engines.map((e) => mib(r(e)?.peakBytes)),
    ];
    if (peer) {
      row.push(
        fmt(ratio(r('wasm 1t')?.imagesPerSecond, r('torch 1t')?.imagesPerSecond), 2, 'x'),
        fmt(ratio(r(`wasm ${top}`)?.imagesPerSecond, r(`torch ${top}`)?.imagesPerSecond), 2, 'x'),
        fmt(ratio(r(`wasm ${top}`)?.peakBytes, r(`torch ${top}`)?.peakBytes), 2, 'x'),
      );
    }
    return row;
  });
  const parts = [
    `images/s from the median step time, best of ${PASSES} pass${PASSES > 1 ? 'es' : ''} (one step: 2 global 28² + ${LOCAL_CROPS} local 12² ` +
      'crops per image, BatchNorm in the head, student forward+backward, teacher forward, DINO loss with centering, KoLeo-proto, clipping, ' +
      "AdamW, EMA, center); peak memory: wasm linear memory vs the peer's peak RSS less its RSS after importing torch:",
    '',
    markdownTable(header, table),
  ];
  if (peerInfo) {
    const variants = ARCHS.map(
      (arch) =>
        `${arch}: ${threadCounts.map((t) => `torch ${t}t ${get(arch, `torch ${t}t`)?.variant ?? '–'}`).join(', ')}`,
    );
    parts.push(
      '',
      `PyTorch peer: torch ${peerInfo.torch}, ${peerInfo.blas.path}; fastest variants: ${variants.join('; ')}.`,
    );
    for (const arch of ARCHS) {
      const all = rows
        .filter((r) => r.arch === arch && r.engine.startsWith('torch'))
        .map((r) => `${r.engine} (${r.variant}) ${fmt(r.imagesPerSecond)}`);
      if (all.length > 0) parts.push(`${arch} every peer run, img/s: ${all.join('; ')}.`);
    }
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
      batchOf,
      localCrops: LOCAL_CROPS,
      koleoProto: KOLEO_PROTO,
      rows,
      best: [...best.values()],
      ratios: Object.fromEntries(
        ARCHS.map((arch) => [
          arch,
          {
            wasm1tOverTorch1t: ratio(get(arch, 'wasm 1t')?.imagesPerSecond, get(arch, 'torch 1t')?.imagesPerSecond),
            wasmAllOverTorchAll: ratio(
              get(arch, `wasm ${top}`)?.imagesPerSecond,
              get(arch, `torch ${top}`)?.imagesPerSecond,
            ),
            peakWasmAllOverTorchAll: ratio(get(arch, `wasm ${top}`)?.peakBytes, get(arch, `torch ${top}`)?.peakBytes),
          },
        ]),
      ),
      peer: peerInfo ? { torch: peerInfo.torch, convRoute: peerInfo.conv_route, blas: peerInfo.blas } : null,
      profiles,
      notes,
    },
  };
}
