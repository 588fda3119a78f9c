// The wasm kernels' host-tuned parameters: what they are, their defaults (the constants the kernels
// used before, tuned on the README's 2-core AMD EPYC), their limits, the override syntax of
// `--tune` / PROTODINO_TUNE, and the cache file a measurement is kept in (tuner.ts measures).
//
// Only parameters that move no output's summation order are here, so a fixed-seed run's checkpoint is
// bit-identical whatever values a host picks (test/backend/tuning.test.ts checks the bits):
//   matmul.mc               rows per packed A block and per chunk of work (≤ 256, a multiple of 4).
//   matmul.kc               the k block (16…512): each output's sum over k is one chain in k order
//                           whatever the blocks, since at a block boundary the running f32 sums go
//                           to memory and come back exactly (the micro-kernel's LOAD mode).
//   matmul.chunksPerThread  how many chunks per thread the rows are cut into, at least, to balance.
//   matmul.claimFlops       multiply-adds a thread claims per atomic at least, for tiny chunks.
//   matmul.forkFlops        multiply-adds per thread below which a product runs on one thread.
//   matmul.packGrain        elements per thread below which packing B is not split across threads.
//   conv.chunksPerThread    column-panel chunks per thread in the implicit-GEMM convolutions.
//   conv.forkFlops          as matmul.forkFlops, for the convolutions.
// Which thread computes which rows or panels never changes a number (each output is owned by one
// thread and summed in one fixed order), nor does how many threads join.
// Not tunable: the 4×8 register tile (wider tiles spill V8's 16 xmm registers and ran at half speed
// or worse: assembly/microkernel.ts) and the convolutions' KC (their packed weight and dy layouts
// are built in KC blocks on both sides of the binary interface; it moves no sum either).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.js';

export interface MatmulTuning {
  mc: number;
  kc: number;
  chunksPerThread: number;
  claimFlops: number;
  forkFlops: number;
  packGrain: number;
}

export interface ConvTuning {
  chunksPerThread: number;
  forkFlops: number;
}

export interface Tuning {
  matmul: MatmulTuning;
  conv: ConvTuning;
}

/** The largest matmul.mc and matmul.kc: the per-thread A slot in assembly/matmul.ts is sized for them. */
export const MC_MAX = 256;
export const KC_MAX = 512;

/** Today's constants: what a run uses with tuning off, and what a measurement must beat. */
export const DEFAULT_TUNING: Tuning = Object.freeze({
  matmul: Object.freeze({
    mc: 128,
    kc: 256,
    chunksPerThread: 4,
    claimFlops: 1 << 15,
    forkFlops: 1 << 17,
    packGrain: 1 << 14,
  }),
  conv: Object.freeze({ chunksPerThread: 16, forkFlops: 1 << 17 }),
}) as Tuning;

interface Limit {
  min: number;
  max: number;
  multipleOf?: number;
}

const LIMITS: { [F in keyof Tuning]: Record<keyof Tuning[F], Limit> } = {
  matmul: {
    mc: { min: 4, max: MC_MAX, multipleOf: 4 },
    kc: { min: 16, max: KC_MAX, multipleOf: 16 },
    chunksPerThread: { min: 1, max: 256 },
    claimFlops: { min: 1, max: 2 ** 30 },
    forkFlops: { min: 1, max: 2 ** 30 },
    packGrain: { min: 1, max: 2 ** 30 },
  },
  conv: {
    chunksPerThread: { min: 1, max: 256 },
    forkFlops: { min: 1, max: 2 ** 30 },
  },
};

/** Where the values in use came from. */
export type TuningOrigin = 'default' | 'cache' | 'measured' | 'override';

export interface TuningSource {
  from: TuningOrigin;
  /** The cache file, the override, or why the defaults are in use. */
  detail: string;
}

export class TuningError extends Error {}

/** One line: `matmul mc 128, kc 256, chunks/thread 4, claim 32768, fork 131072, pack 16384; conv chunks/thread 16, fork 131072`. */
export function describeTuning(t: Tuning): string {
  const m = t.matmul,
    c = t.conv;
  return (
    `matmul mc ${m.mc}, kc ${m.kc}, chunks/thread ${m.chunksPerThread}, claim ${m.claimFlops}, fork ${m.forkFlops}, ` +
    `pack ${m.packGrain}; conv chunks/thread ${c.chunksPerThread}, fork ${c.forkFlops}`
  );
}

/** The fields where `t` differs from the defaults, as `matmul.mc=192`, or 'the defaults'. */
export function tuningDiff(t: Tuning): string {
  const out: string[] = [];
  for (const fam of Object.keys(LIMITS) as (keyof Tuning)[]) {
    for (const [k, v] of Object.entries(t[fam])) {
      if ((DEFAULT_TUNING[fam] as unknown as Record<string, number>)[k] !== v) out.push(`${fam}.${k}=${v}`);
    }
  }
  return out.length ? out.join(',') : 'the defaults';
}

/**
 * A complete Tuning from `partial` (missing fields from `base`), refusing unknown families or fields
 * and values outside their limits, with a message that names the field.
 */
export function checkTuning(partial: unknown, base: Tuning = DEFAULT_TUNING, what = 'tuning'): Tuning {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial))
    throw new TuningError(`${what}: expected an object like {"matmul": {"mc": 128}}`);
  const out = { matmul: { ...base.matmul }, conv: { ...base.conv } } as Tuning;
  for (const [fam, fields] of Object.entries(partial as Record<string, unknown>)) {
    if (!(fam in LIMITS))
      throw new TuningError(`${what}: unknown kernel family '${fam}' (tunable: ${Object.keys(LIMITS).join(', ')})`);
    const limits = LIMITS[fam as keyof Tuning] as Record<string, Limit>;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields))
      throw new TuningError(`${what}: '${fam}' must be an object of numbers`);
    for (const [k, v] of Object.entries(fields as Record<string, unknown>)) {
      const lim = limits[k];
      if (!lim)
        throw new TuningError(
          `${what}: unknown parameter '${fam}.${k}' (${fam} has ${Object.keys(limits).join(', ')})`,
        );
      if (
        typeof v !== 'number' ||
        !Number.isInteger(v) ||
        v < lim.min ||
        v > lim.max ||
        v % (lim.multipleOf ?? 1) !== 0
      )
        throw new TuningError(
          `${what}: ${fam}.${k} must be an integer in ${lim.min}..${lim.max}` +
            `${lim.multipleOf ? `, a multiple of ${lim.multipleOf}` : ''}, got ${JSON.stringify(v)}`,
        );
      (out[fam as keyof Tuning] as unknown as Record<string, number>)[k] = v;
    }
  }
  return out;
}

/** What `--tune` / PROTODINO_TUNE asks for. */
export type TuneSpec = { mode: 'off' } | { mode: 'auto' } | { mode: 'override'; tuning: Tuning; detail: string };

/**
 * `off` (the defaults), `auto` (the cached measurement, or measure now and cache it), a list of
 * `family.param=value` separated by commas, or a JSON file: either a cache file (its `tuning` is
 * used) or a partial Tuning such as {"matmul": {"mc": 192}}. Fields not given keep their defaults.
 */
export function parseTuneSpec(spec: string): TuneSpec {
  const s = spec.trim();
  if (s === 'off' || s === 'auto') return { mode: s };
  if (s === '') throw new TuningError("--tune: expected off, auto, a file, or family.param=value,...; got ''");
  if (/^[a-zA-Z]+\.[a-zA-Z]+=/.test(s)) {
    const partial: Record<string, Record<string, number>> = {};
    for (const item of s.split(',')) {
      const m = /^\s*([a-zA-Z]+)\.([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(item);
      if (!m) throw new TuningError(`--tune: '${item}' is not family.param=value (e.g. matmul.mc=192)`);
      const v = Number(m[3]);
      (partial[m[1]] ??= {})[m[2]] = Number.isFinite(v) ? v : (m[3] as unknown as number);
    }
    return { mode: 'override', tuning: checkTuning(partial, DEFAULT_TUNING, '--tune'), detail: s };
  }
  let text: string;
  try {
    text = readFileSync(s, 'utf8');
  } catch (e) {
    throw new TuningError(
      `--tune: '${s}' is not off, auto or family.param=value, and cannot be read as a file (${(e as Error).message})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TuningError(`--tune: ${s} is not JSON (${(e as Error).message})`);
  }
  const body =
    (json as { format?: unknown; tuning?: unknown }).format === CACHE_FORMAT ? (json as CacheFile).tuning : json;
  return { mode: 'override', tuning: checkTuning(body, DEFAULT_TUNING, `--tune ${s}`), detail: s };
}

// ---- the cache ---------------------------------------------------------------------------------

/** What a measurement depends on: the CPU, the thread count, the wasm build and its exact binary. */
export interface TuningKey {
  cpu: string;
  threads: number;
  build: string;
  /** sha256 of the wasm binary, first 16 hex digits: a rebuilt kernel is measured again. */
  wasm: string;
}

const CACHE_FORMAT = 'protodino-tuning';
const CACHE_VERSION = 1;

export interface CacheFile {
  format: typeof CACHE_FORMAT;
  version: number;
  key: TuningKey;
  tuning: Tuning;
  /** When and how it was measured: each stage's candidates with their relative times. */
  measured: { at: string; ms: number; stages: unknown[] };
}

/**
 * The CPU model as the OS names it, whitespace collapsed, and on Linux also /proc/cpuinfo's vendor,
 * family, model, stepping and cache size: a virtual machine may name every generation alike (the
 * README's machine says only "AMD EPYC"; its family 26 is Zen 5).
 */
export function cpuModel(cpuinfo = readCpuinfo()): string {
  const name = (cpus()[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim() || 'unknown';
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.+)$`, 'm').exec(cpuinfo)?.[1].trim();
  const parts = [
    field('vendor_id'),
    field('cpu family') && `family ${field('cpu family')}`,
    field('model') && `model ${field('model')}`,
    field('stepping') && `stepping ${field('stepping')}`,
    field('cache size') && `${field('cache size')} cache`,
  ].filter(Boolean);
  return parts.length ? `${name} (${parts.join(', ')})` : name;
}

function readCpuinfo(): string {
  try {
    // the first processor's block is enough: the key is about the kind of core
    return readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0];
  } catch {
    return '';
  }
}

export function wasmHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** $XDG_CACHE_HOME/protodino, else ~/.cache/protodino. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'protodino');
}

/** One file per key: tuning-<build>-<threads>t-<hash of the whole key>.json. */
export function cachePath(key: TuningKey, dir: string = cacheDir()): string {
  const h = createHash('sha256')
    .update(JSON.stringify([key.cpu, key.threads, key.build, key.wasm]))
    .digest('hex');
  return join(dir, `tuning-${key.build}-${key.threads}t-${h.slice(0, 12)}.json`);
}

export type CacheRead =
  { status: 'hit'; tuning: Tuning } | { status: 'missing' } | { status: 'corrupt' | 'foreign'; reason: string };

/** Reads the cache file at `path` for `key`; never throws. */
export function readCache(path: string, key: TuningKey): CacheRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
    return { status: 'corrupt', reason: `cannot be read (${(e as Error).message})` };
  }
  let json: Partial<CacheFile>;
  try {
    json = JSON.parse(text) as Partial<CacheFile>;
  } catch (e) {
    return { status: 'corrupt', reason: `is not JSON (${(e as Error).message})` };
  }
  if (typeof json !== 'object' || json === null || json.format !== CACHE_FORMAT)
    return { status: 'foreign', reason: `is not a ${CACHE_FORMAT} file` };
  if (json.version !== CACHE_VERSION)
    return { status: 'foreign', reason: `has version ${String(json.version)}, this build reads ${CACHE_VERSION}` };
  const k = json.key;
  if (!k || k.cpu !== key.cpu || k.threads !== key.threads || k.build !== key.build || k.wasm !== key.wasm) {
    return {
      status: 'foreign',
      reason: `was measured for ${k ? `${k.cpu}, ${k.threads} threads, ${k.build} build ${k.wasm}` : 'an unknown key'}, not ${key.cpu}, ${key.threads} threads, ${key.build} build ${key.wasm}`,
    };
  }
  try {
    return { status: 'hit', tuning: checkTuning(json.tuning, DEFAULT_TUNING, path) };
  } catch (e) {
    return { status: 'corrupt', reason: `holds invalid values (${(e as Error).message})` };
  }
}

/** Writes the cache file atomically (a concurrent reader sees the old file or the new one). */
export function writeCache(path: string, key: TuningKey, tuning: Tuning, measured: CacheFile['measured']): void {
  mkdirSync(join(path, '..'), { recursive: true });
  const file: CacheFile = { format: CACHE_FORMAT, version: CACHE_VERSION, key, tuning, measured };
  writeFileAtomic(path, [new TextEncoder().encode(JSON.stringify(file, null, 2) + '\n')]);
}
