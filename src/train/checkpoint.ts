// Checkpoints: one safetensors file holding the whole training state — student, teacher, AdamW
// moments, the DINO center, and (in the metadata) the config, schedule position, RNG and data cursor —
// written atomically with a payload checksum.
import { existsSync, renameSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import type { Module } from '../nn/module.js';
import type { AdamW } from '../tensor/ops/optim.js';
import { readSafetensors, writeSafetensors, type SafeTensorInput } from './safetensors.js';

export interface CheckpointMeta {
  format: 'protodino-dino-v1';
  epoch: number;
  /** Global steps done. */
  step: number;
  config: unknown;
  loader: unknown;
  generator: unknown;
  optimizerSteps: Record<string, number>;
  optimizerStep: number;
  /** Student parameter names per optimiser group, in order (torch numbers them this way). */
  optimizerGroups: { names: string[]; weightDecay: number }[];
}

export interface TrainingState {
  student: Module;
  teacher: Module;
  optimizer: AdamW;
  center: Tensor | null;
  /** iBOT's patch center (--ibot), stored as ibot_loss.center2. */
  center2?: Tensor | null;
}

async function host(t: Tensor): Promise<SafeTensorInput> {
  return { dtype: 'F32', shape: [...t.shape], data: (await t.data()) as Float32Array };
}

export async function saveCheckpoint(path: string, s: TrainingState,
  meta: Omit<CheckpointMeta, 'format' | 'optimizerSteps' | 'optimizerStep' | 'optimizerGroups'>): Promise<void> {
  const tensors = new Map<string, SafeTensorInput>();
  for (const [name, t] of s.student.stateDict()) tensors.set(`student.${name}`, await host(t));
  for (const [name, t] of s.teacher.stateDict()) tensors.set(`teacher.${name}`, await host(t));
  if (s.center) tensors.set('dino_loss.center', await host(s.center));
  if (s.center2) tensors.set('ibot_loss.center2', await host(s.center2));
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
    names: g.params.map((p) => names.get(p) ?? '?'), weightDecay: g.weightDecay,
  }));
  const full: CheckpointMeta = { format: 'protodino-dino-v1', ...meta, optimizerSteps, optimizerStep: opt.step, optimizerGroups };
  writeSafetensors(path, tensors, { protodino: JSON.stringify(full) });
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function readCheckpoint(path: string): LoadedCheckpoint {
  const file = readSafetensors(path, { verify: true });
  const raw = file.metadata.protodino;
  if (!raw) throw new Error(`${path}: not a protodino training checkpoint (no 'protodino' metadata)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch (e) {
    throw new Error(`${path}: checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  if (meta.format !== 'protodino-dino-v1') throw new Error(`${path}: unknown checkpoint format '${String(meta.format)}'`);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of file.tensors) {
    if (t.dtype !== 'F32') throw new Error(`${path}: tensor '${name}' is ${t.dtype}, expected F32`);
    tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
  }
  return { meta, tensors };
}

function sub(tensors: LoadedCheckpoint['tensors'], prefix: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** Restores modules, optimizer moments and center from a checkpoint into live objects. */
export function restoreCheckpoint(ck: LoadedCheckpoint, s: TrainingState): void {
  s.student.loadStateDict(sub(ck.tensors, 'student.'));
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
  for (const e of entries) if (e) {
    e.m.dispose();
    e.v.dispose();
  }
}

/** Keeps the previous checkpoint as <path>.prev when writing a new one. */
export function rotate(path: string): void {
  if (existsSync(path)) renameSync(path, `${path}.prev`);
}
