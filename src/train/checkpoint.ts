// Checkpoints: one safetensors file holding the whole training state — student, teacher, AdamW
// moments, the DINO center, and (in the metadata) the config, schedule position, RNG streams, data
// cursor and input normalization — written atomically with a payload checksum.
import { existsSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import type { Module } from '../nn/module.js';
import type { AdamW } from '../tensor/ops/optim.js';
import type { GeneratorState } from '../tensor/ops/random.js';
import { readSafetensors, SafetensorsError, writeSafetensors, type SafeTensorInput } from '../io/safetensors.js';
import { processAlive } from '../util/process.js';
import type { KoleoProtoCache } from '../ssl/koleo-cache.js';
import { EM_TENSOR_NAMES, type EmPrototypes } from '../ssl/em-prototypes.js';
import type { ChannelStats } from '../data/index.js';

export interface CheckpointMeta {
  format: 'protodino-dino-v1';
  epoch: number;
  /** Global steps done. */
  step: number;
  config: unknown;
  loader: unknown;
  /**
   * The networks' random streams after `step` steps (the student's draws the drop-path masks).
   * Absent in checkpoints written before it was saved.
   */
  generators?: { student: GeneratorState; teacher: GeneratorState };
  /** The collapse alarms' state after `step` steps (src/train/alarms.ts); absent in older checkpoints. */
  alarms?: unknown;
  /**
   * The per-channel mean/std the training images were normalised with, which every evaluation of
   * the network must use too; absent in older checkpoints (src/train/run-data.ts recomputes them).
   */
  normalization?: ChannelStats;
  optimizerSteps: Record<string, number>;
  optimizerStep: number;
  /** Student parameter names per optimiser group, in order (torch numbers them this way). */
  optimizerGroups: { names: string[]; weightDecay: number }[];
  /** Each trainable student parameter's L2 norm when training started (the norm alarm's baseline). */
  initialNorms?: Record<string, number>;
  /** The step (steps done) the saved KoLeo-proto candidates koleo_proto.candidates were built at. */
  koleoCacheBuiltAt?: number;
  /** --prototypes em: the split directions' random stream (the mixture's statistics are tensors em.*). */
  em?: { generator: GeneratorState };
}

export interface TrainingState {
  student: Module;
  teacher: Module;
  optimizer: AdamW;
  center: Tensor | null;
  /** iBOT's patch center (--ibot), stored as ibot_loss.center2. */
  center2?: Tensor | null;
  /** KoLeo-proto's candidate cache; its indices are stored as F32 (exact below 2^24). */
  koleoCache?: KoleoProtoCache | null;
  /** --prototypes em: the mixture's sufficient statistics and weights, stored as em.count, em.sum, … */
  em?: EmPrototypes | null;
}

async function host(t: Tensor): Promise<SafeTensorInput> {
  return { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
}

export async function saveCheckpoint(
  path: string,
  s: TrainingState,
  meta: Omit<CheckpointMeta, 'format' | 'optimizerSteps' | 'optimizerStep' | 'optimizerGroups'>,
): Promise<void> {
  const tensors = new Map<string, SafeTensorInput>();
  for (const [name, t] of s.student.stateDict()) tensors.set(`student.${name}`, await host(t));
  for (const [name, t] of s.teacher.stateDict()) tensors.set(`teacher.${name}`, await host(t));
  if (s.center) tensors.set('dino_loss.center', await host(s.center));
  if (s.center2) tensors.set('ibot_loss.center2', await host(s.center2));
  const cache = s.koleoCache ? await s.koleoCache.hostState() : null;
  if (cache) tensors.set('koleo_proto.candidates', { dtype: 'F32', shape: cache.shape, data: cache.data });
  const em = s.em ? await s.em.hostState() : null;
  if (em && s.em) {
    const shapes = { count: [s.em.K, 1], sum: [s.em.K, s.em.D], sumsq: [s.em.K, s.em.D], usage: [1, s.em.K] };
    for (const k of EM_TENSOR_NAMES) tensors.set(`em.${k}`, { dtype: 'F32', shape: shapes[k], data: em[k] });
  }
  const names = new Map(s.student.namedParameters().map(([n, t]) => [t, n]));
  const opt = s.optimizer.state();
  const optimizerSteps: Record<string, number> = {};
  const params = s.optimizer.params();
  for (let i = 0; i < params.length; i++) {
    const e = opt.params[i];
    if (!e) continue;
    const name = names.get(params[i]);
    if (!name) throw new Error('checkpoint: an optimised tensor is not a student parameter');
    tensors.set(`optimizer.exp_avg.${name}`, await host(e.m));
    tensors.set(`optimizer.exp_avg_sq.${name}`, await host(e.v));
    optimizerSteps[name] = e.step;
  }
  const optimizerGroups = s.optimizer.groups.map((g) => ({
    names: g.params.map((p) => names.get(p) ?? '?'),
    weightDecay: g.weightDecay,
  }));
  const full: CheckpointMeta = {
    format: 'protodino-dino-v1',
    ...meta,
    optimizerSteps,
    optimizerStep: opt.step,
    optimizerGroups,
    ...(cache ? { koleoCacheBuiltAt: cache.builtAt } : {}),
    ...(em ? { em: { generator: em.generator } } : {}),
  };
  writeSafetensors(path, tensors, { protodino: JSON.stringify(full) });
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Every problem with a checkpoint file: the message names the file (or the name given for bytes). */
export class CheckpointError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'CheckpointError';
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The fields this module and its callers rely on, checked, so a damaged file fails here and not later with a TypeError. */
function parseMeta(source: string, raw: string): CheckpointMeta {
  let meta: unknown;
  try {
    meta = JSON.parse(raw);
  } catch (e) {
    throw new CheckpointError(source, `checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(meta)) throw new CheckpointError(source, 'checkpoint metadata is not a JSON object');
  if (meta.format !== 'protodino-dino-v1')
    throw new CheckpointError(source, `unknown checkpoint format '${String(meta.format)}'`);
  const bad = (field: string, v: unknown, want: string): never => {
    throw new CheckpointError(source, `checkpoint metadata ${field} is ${JSON.stringify(v) ?? String(v)}, not ${want}`);
  };
  for (const k of ['epoch', 'step', 'optimizerStep'] as const)
    if (!isCount(meta[k])) bad(k, meta[k], 'a non-negative integer');
  if (meta.koleoCacheBuiltAt !== undefined && !isCount(meta.koleoCacheBuiltAt))
    bad('koleoCacheBuiltAt', meta.koleoCacheBuiltAt, 'a non-negative integer');
  if (meta.em !== undefined) {
    const g = isRecord(meta.em) ? meta.em.generator : undefined;
    if (!isRecord(g) || !isCount(g.seed) || !isCount(g.offset))
      bad('em', meta.em, '{ generator: { seed, offset } } of non-negative integers');
  }
  if (meta.normalization !== undefined) {
    const n = meta.normalization;
    const list = (v: unknown, min: number) =>
      Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= min);
    if (
      !isRecord(n) ||
      !list(n.mean, -Infinity) ||
      !list(n.std, Number.MIN_VALUE) ||
      (n.mean as number[]).length !== (n.std as number[]).length
    ) {
      bad('normalization', n, '{ mean: [numbers], std: [positive numbers] } of one length');
    }
  }
  const steps = meta.optimizerSteps;
  if (!isRecord(steps)) return bad('optimizerSteps', steps, 'an object of step counts');
  for (const [name, v] of Object.entries(steps))
    if (!isCount(v)) bad(`optimizerSteps[${JSON.stringify(name)}]`, v, 'a non-negative integer');
  const groups = meta.optimizerGroups;
  if (!Array.isArray(groups)) return bad('optimizerGroups', groups, 'a list of parameter groups');
  groups.forEach((g: unknown, i) => {
    if (
      !isRecord(g) ||
      !Array.isArray(g.names) ||
      !g.names.every((n) => typeof n === 'string') ||
      typeof g.weightDecay !== 'number' ||
      !Number.isFinite(g.weightDecay)
    ) {
      bad(`optimizerGroups[${i}]`, g, '{ names: [strings], weightDecay: number }');
    }
  });
  return meta as unknown as CheckpointMeta;
}

/**
 * Reads a training checkpoint from a path, or from its bytes (`source` then names it in errors).
 * Every problem with the file — its safetensors structure, checksum, metadata or tensors — is a
 * CheckpointError naming the file.
 */
export function readCheckpoint(
  src: string | Uint8Array,
  source = typeof src === 'string' ? src : 'checkpoint',
): LoadedCheckpoint {
  let file;
  try {
    file = readSafetensors(src, { verify: true });
  } catch (e) {
    // CheckpointError names the file itself
    if (e instanceof SafetensorsError)
      throw new CheckpointError(source, new SafetensorsError(e.detail, e.tensor).message);
    throw e;
  }
  const raw = file.metadata.protodino;
  if (!raw) throw new CheckpointError(source, `not a protodino training checkpoint (no 'protodino' metadata)`);
  const meta = parseMeta(source, raw);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of file.tensors) {
    if (t.dtype !== 'F32') throw new CheckpointError(source, `tensor '${name}' is ${t.dtype}, expected F32`);
    tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
  }
  return { meta, tensors };
}

/** The tensors under `prefix` ('student.', 'teacher.'), named as the module's own state dict names them. */
export function sub(
  tensors: LoadedCheckpoint['tensors'],
  prefix: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** Restores modules, optimizer moments and center from a checkpoint into live objects. */
export function restoreCheckpoint(ck: LoadedCheckpoint, s: TrainingState): void {
  try {
    s.student.loadStateDict(sub(ck.tensors, 'student.'));
  } catch (e) {
    // The usual cause is resuming with other model flags than the run was trained with.
    const saved = ck.meta.config as Record<string, unknown> | undefined;
    const arch = saved ? ` (it was trained with --arch ${saved.arch} --out_dim ${saved.out_dim})` : '';
    throw new Error(`the checkpoint does not fit this run's network${arch}: ${(e as Error).message}`);
  }
  s.teacher.loadStateDict(sub(ck.tensors, 'teacher.'));
  if (s.center) {
    const c = ck.tensors.get('dino_loss.center');
    if (!c) throw new Error('checkpoint has no dino_loss.center');
    s.center.backend.upload(s.center.storage, c.data);
  }
  if (s.center2) {
    const c = ck.tensors.get('ibot_loss.center2');
    if (!c) throw new Error('checkpoint has no ibot_loss.center2 (was it trained without --ibot?)');
    s.center2.backend.upload(s.center2.storage, c.data);
  }
  if (s.koleoCache) {
    // A checkpoint without the cache (or from a run without it) leaves it empty: the next step refreshes.
    const c = ck.tensors.get('koleo_proto.candidates');
    const at = ck.meta.koleoCacheBuiltAt;
    if (c && at !== undefined) s.koleoCache.load({ builtAt: at, shape: c.shape, data: c.data }, s.student.backend);
  }
  if (s.em) {
    const t = Object.fromEntries(EM_TENSOR_NAMES.map((k) => [k, ck.tensors.get(`em.${k}`)?.data]));
    const missing = EM_TENSOR_NAMES.filter((k) => !t[k]);
    const gen = ck.meta.em?.generator;
    if (missing.length || !gen)
      throw new Error(
        `checkpoint has no EM state (${missing.length ? missing.map((k) => `em.${k}`).join(', ') : 'meta em.generator'}); was it trained without --prototypes em?`,
      );
    s.em.load({ count: t.count!, sum: t.sum!, sumsq: t.sumsq!, usage: t.usage!, generator: gen });
  }
  const names = new Map(s.student.namedParameters().map(([n, t]) => [t, n]));
  const params = s.optimizer.params();
  const be = s.student.backend;
  const entries = params.map((p) => {
    const name = names.get(p)!;
    const m = ck.tensors.get(`optimizer.exp_avg.${name}`);
    const v = ck.tensors.get(`optimizer.exp_avg_sq.${name}`);
    if (!m || !v) return null;
    return { step: ck.meta.optimizerSteps[name], m: tensor(m.data, m.shape, be), v: tensor(v.data, v.shape, be) };
  });
  s.optimizer.loadState({ step: ck.meta.optimizerStep, params: entries });
  for (const e of entries)
    if (e) {
      e.m.dispose();
      e.v.dispose();
    }
}

/** Keeps the previous checkpoint as <path>.prev when writing a new one. */
export function rotate(path: string): void {
  if (existsSync(path)) renameSync(path, `${path}.prev`);
}

/**
 * Moves an unreadable checkpoint out of the rotation to <path>.corrupt (kept for inspection), so the
 * next save does not rotate it over the good .prev. Returns the new name.
 */
export function setAside(path: string): string {
  const to = `${path}.corrupt`;
  renameSync(path, to);
  return to;
}

/**
 * Deletes the <path>.tmp-PID files that a process killed while writing a checkpoint left behind
 * (only those whose process is gone). Returns the names removed.
 */
export function removeStaleTemporaries(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && processAlive(pid))) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // already gone
    }
  }
  return removed;
}
