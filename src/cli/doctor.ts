// protodino doctor: what this machine offers each backend, and which one `--backend auto` takes and
// why. Read before a GPU run, or when a run lands on a backend nobody expected.
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WasmBackend } from '../backend/index.js';
import type { AdapterReport } from '../backend/webgpu/adapters.js';
import { relaxedSimdAvailable } from '../backend/wasm/runtime.js';
import { describeTuning, type Tuning, type TuningSource } from '../backend/wasm/tuning.js';
import { vulkanLoader } from '../backend/webgpu/vulkan-loader.js';

export interface DoctorReport {
  node: string;
  platform: string;
  arch: string;
  cores: number;
  wasm: { build: string; relaxedSimd: boolean; threads: number };
  /** The wasm kernels' blocking and thread split (--tune / PROTODINO_TUNE) and where it came from. */
  tuning: Tuning & { source: TuningSource };
  /** Linux only: Dawn's Vulkan backend needs libvulkan.so.1. */
  vulkanLoader: { found: boolean; detail: string; drivers: string[] };
  adapters: AdapterReport[];
  auto: { kind: 'wasm' | 'webgpu'; reason: string };
  /** What Dawn itself wrote to stderr while the adapters were probed, one message a line. */
  dawnMessages: string[];
}

const PROBE_TIMEOUT_MS = 120_000;

/** Runs doctor-probe.js in a child process; its stderr is Dawn's messages, minus their source locations. */
function probeGpu(): Pick<DoctorReport, 'adapters' | 'auto' | 'dawnMessages'> {
  const probe = fileURLToPath(new URL('./doctor-probe.js', import.meta.url));
  const r = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  const dawnMessages = (r.stderr ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l))
    .map((l) => l.replace(/^Warning: /, ''));
  const line = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    const how = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    throw new Error(
      `doctor: the WebGPU probe failed (${how})${dawnMessages.length ? `: ${dawnMessages.join(' | ')}` : ''}`,
    );
  }
  const { adapters, auto } = JSON.parse(line) as Pick<DoctorReport, 'adapters' | 'auto'>;
  return { adapters, auto, dawnMessages };
}

export async function doctorReport(): Promise<DoctorReport> {
  // The wasm backend as every command builds it by default, asked what it chose (and, with --tune
  // auto, what the host's measurement picked: read from the cache, or measured now and cached).
  const be = await WasmBackend.create();
  const wasm = { build: be.rt.build, relaxedSimd: relaxedSimdAvailable(), threads: be.rt.threads };
  const tuning = { ...be.rt.tuning, source: be.rt.tuningSource };
  be.destroy();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cores: availableParallelism(),
    wasm,
    tuning,
    vulkanLoader: vulkanLoader(),
    ...probeGpu(),
  };
}

function bytes(n: number): string {
  if (n >= 2 ** 30 && n % 2 ** 30 === 0) return `${n / 2 ** 30} GiB`;
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20} MiB`;
  if (n >= 2 ** 10 && n % 2 ** 10 === 0) return `${n / 2 ** 10} KiB`;
  return `${n} B`;
}

function adapterLines(a: AdapterReport): string[] {
  if (!a.found) return [`  ${a.backend}: ${a.note}`];
  const kind = `${a.software ? 'software' : 'hardware'}, ${a.featureLevel}`;
  const sub = a.subgroupMinSize !== undefined ? `, subgroup size ${a.subgroupMinSize}–${a.subgroupMaxSize}` : '';
  const l = a.limits!;
  return [
    `  ${a.backend}: ${a.name} (${kind})`,
    `    features: ${Object.entries(a.features!)
      .map(([f, on]) => `${f} ${on ? 'yes' : 'no'}`)
      .join(', ')}${sub}`,
    `    limits: buffer ${bytes(l.maxBufferSize)}, storage binding ${bytes(l.maxStorageBufferBindingSize)}, ` +
      `workgroup storage ${bytes(l.maxComputeWorkgroupStorageSize)}, ` +
      `${l.maxComputeInvocationsPerWorkgroup} invocations per workgroup (x ≤ ${l.maxComputeWorkgroupSizeX}), ` +
      `${l.maxComputeWorkgroupsPerDimension} workgroups per dimension, ${l.maxStorageBuffersPerShaderStage} storage buffers per stage`,
  ];
}

export function doctorText(r: DoctorReport): string {
  const lines = [
    `node ${r.node} on ${r.platform} ${r.arch}, ${r.cores} cores`,
    `wasm: ${r.wasm.build} build (relaxed SIMD ${r.wasm.relaxedSimd ? 'accepted' : 'rejected by this runtime'}), ` +
      `${r.wasm.threads} thread${r.wasm.threads === 1 ? '' : 's'}`,
    `wasm tuning (--tune): ${describeTuning(r.tuning)}; from ${r.tuning.source.from} (${r.tuning.source.detail})`,
  ];
  if (r.platform === 'linux')
    lines.push(
      r.vulkanLoader.found
        ? `Vulkan loader: ${r.vulkanLoader.detail}; drivers: ${r.vulkanLoader.drivers.join(', ') || 'none'}`
        : `Vulkan loader: none (${r.vulkanLoader.detail}); WebGPU can only use the OpenGL ES software adapter`,
    );
  lines.push('WebGPU adapters:', ...r.adapters.flatMap(adapterLines));
  lines.push(`--backend auto: ${r.auto.kind} (${r.auto.reason})`);
  if (r.dawnMessages.length) lines.push('Dawn said:', ...r.dawnMessages.map((m) => `  ${m}`));
  return lines.join('\n') + '\n';
}

export async function doctor(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  const r = await doctorReport();
  process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : doctorText(r));
}
