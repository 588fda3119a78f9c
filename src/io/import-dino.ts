// The inverse of export-dino.ts: what torch.load gives for a facebookresearch/dino checkpoint.pth, or
// for a backbone-only state dict, as protodino-named host tensors. Names map back by dropping DDP's
// 'module.' prefix (the student always has it, the teacher only when DINO wrapped it for
// SyncBatchNorm) and, in a backbone-only dict, 'backbone.' as DINO's load_pretrained_weights does.
// Nothing here knows a network: the trainer matches the result against the one it built.
import { PthError } from './pth/errors.js';
import { PthTensor } from './pth/tensor.js';
import { readPth } from './pth/torch-load.js';

export interface ImportedTensor {
  shape: number[];
  data: Float32Array;
}

/** One parameter's AdamW state as torch keeps it. */
export interface ImportedAdamSlot {
  step: number;
  exp_avg: ImportedTensor;
  exp_avg_sq: ImportedTensor;
}

export interface ImportedDinoCheckpoint {
  kind: 'dino';
  student: Map<string, ImportedTensor>;
  teacher: Map<string, ImportedTensor>;
  /** dino_loss.center, [1, K]. */
  center: ImportedTensor | null;
  /** Epochs done (DINO saves epoch + 1 after each epoch). */
  epoch: number;
  /** torch's param_groups in order, each parameter's state or null (never stepped); null: no optimizer saved. */
  optimizer: { weightDecay: number; slots: (ImportedAdamSlot | null)[] }[] | null;
}

export interface ImportedBackbone {
  kind: 'backbone';
  backbone: Map<string, ImportedTensor>;
  /** Classifier weights DINO replaces with nn.Identity (ResNet fc.*, ViT head.*): not loaded. */
  skipped: string[];
}

export type ImportedWeights = ImportedDinoCheckpoint | ImportedBackbone;

/** A file that is not what --init_from accepts, or that holds something unusable; names the file. */
export class ImportError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'ImportError';
  }
}

/** The top-level keys of DINO's checkpoint.pth; args and fp16_scaler are read past (nothing here uses them). */
export const DINO_CHECKPOINT_KEYS = ['student', 'teacher', 'optimizer', 'dino_loss', 'epoch', 'args', 'fp16_scaler'];

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PthTensor) && !ArrayBuffer.isView(v);

function floatTensor(file: string, name: string, v: unknown): ImportedTensor {
  if (!(v instanceof PthTensor)) throw new ImportError(file, `'${name}' is not a tensor`);
  const d = v.data;
  let data: Float32Array;
  if (d instanceof Float32Array) data = d;
  else if (d instanceof Float64Array) data = Float32Array.from(d);
  // num_batches_tracked is int64 in torch; protodino keeps the count as a float.
  else if (d instanceof BigInt64Array && name.endsWith('num_batches_tracked')) data = Float32Array.from(d, Number);
  else throw new ImportError(file, `'${name}' is ${v.dtype}, not a floating-point tensor`);
  return { shape: [...v.shape], data };
}

function stateDict(file: string, what: string, v: unknown, strip: string[]): Map<string, ImportedTensor> {
  if (!isObject(v)) throw new ImportError(file, `'${what}' is not a state dict`);
  const out = new Map<string, ImportedTensor>();
  for (const [k, t] of Object.entries(v)) {
    let name = k;
    for (const p of strip) if (name.startsWith(p)) name = name.slice(p.length);
    if (out.has(name)) throw new ImportError(file, `'${what}' holds '${name}' twice (with and without a prefix)`);
    out.set(name, floatTensor(file, `${what}.${k}`, t));
  }
  return out;
}

function count(file: string, what: string, v: unknown): number {
  const n = v instanceof PthTensor && v.shape.length === 0 ? Number(v.data[0]) : typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new ImportError(file, `${what} is ${String(n)}, not a non-negative integer`);
  return n;
}

function optimizerGroups(file: string, v: unknown): ImportedDinoCheckpoint['optimizer'] {
  if (v === undefined || v === null) return null;
  if (!isObject(v) || !isObject(v.state) || !Array.isArray(v.param_groups))
    throw new ImportError(file, `'optimizer' is not an optimizer state dict ({ state, param_groups })`);
  const state = v.state;
  const used = new Set<string>();
  const groups = v.param_groups.map((g: unknown, gi) => {
    if (!isObject(g) || !Array.isArray(g.params) || typeof g.weight_decay !== 'number')
      throw new ImportError(file, `optimizer.param_groups[${gi}] has no params list or weight_decay`);
    const slots = g.params.map((id: unknown) => {
      const key = String(id);
      const s = state[key];
      if (s === undefined) return null;
      used.add(key);
      const at = `optimizer.state[${key}]`;
      if (!isObject(s)) throw new ImportError(file, `${at} is not a dict`);
      const extra = Object.keys(s).filter((k) => !['step', 'exp_avg', 'exp_avg_sq'].includes(k));
      // max_exp_avg_sq would mean amsgrad, an update protodino's AdamW does not make.
      if (extra.length) throw new ImportError(file, `${at} has keys ${extra.join(', ')} that AdamW state has not`);
      const step = count(file, `${at}.step`, s.step);
      if (step < 1) throw new ImportError(file, `${at}.step is ${step}: a saved AdamW state has stepped at least once`);
      return {
        step,
        exp_avg: floatTensor(file, `${at}.exp_avg`, s.exp_avg),
        exp_avg_sq: floatTensor(file, `${at}.exp_avg_sq`, s.exp_avg_sq),
      };
    });
    return { weightDecay: g.weight_decay, slots };
  });
  const orphans = Object.keys(state).filter((k) => !used.has(k));
  if (orphans.length)
    throw new ImportError(file, `optimizer.state has entries ${orphans.join(', ')} that no param_group lists`);
  return groups;
}

/** Reads the object torch.load returns for DINO's checkpoint.pth or a backbone state dict. */
export function importDinoObject(obj: unknown, file: string): ImportedWeights {
  if (!isObject(obj))
    throw new ImportError(
      file,
      `holds ${obj === null ? 'None' : Array.isArray(obj) ? 'a list' : obj instanceof PthTensor ? 'a tensor' : `a ${typeof obj}`}, not a dict`,
    );
  const keys = Object.keys(obj);
  if ('student' in obj || 'teacher' in obj) {
    const unknown = keys.filter((k) => !DINO_CHECKPOINT_KEYS.includes(k));
    if (unknown.length)
      throw new ImportError(
        file,
        `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in a DINO checkpoint (known: ${DINO_CHECKPOINT_KEYS.join(', ')})`,
      );
    for (const k of ['student', 'teacher'])
      if (!(k in obj)) throw new ImportError(file, `a DINO checkpoint needs '${k}', this one has ${keys.join(', ')}`);
    let center: ImportedTensor | null = null;
    if (obj.dino_loss !== undefined) {
      const d = obj.dino_loss;
      if (!isObject(d) || Object.keys(d).join() !== 'center')
        throw new ImportError(file, `'dino_loss' must be DINOLoss's state dict { center }`);
      center = floatTensor(file, 'dino_loss.center', d.center);
    }
    return {
      kind: 'dino',
      student: stateDict(file, 'student', obj.student, ['module.']),
      teacher: stateDict(file, 'teacher', obj.teacher, ['module.']),
      center,
      epoch: obj.epoch === undefined ? 0 : count(file, 'epoch', obj.epoch),
      optimizer: optimizerGroups(file, obj.optimizer),
    };
  }
  const notTensors = keys.filter((k) => !(obj[k] instanceof PthTensor));
  if (keys.length === 0 || notTensors.length)
    throw new ImportError(
      file,
      keys.length === 0
        ? 'is an empty dict'
        : `is neither a DINO checkpoint (student, teacher, …) nor a state dict of tensors: ${notTensors
            .slice(0, 5)
            .map((k) => `'${k}'`)
            .join(', ')} ${notTensors.length > 1 ? 'are not tensors' : 'is not a tensor'}`,
    );
  const all = stateDict(file, 'state dict', obj, ['module.', 'backbone.']);
  const skipped = [...all.keys()].filter((k) => /^(fc|head)\.(weight|bias)$/.test(k));
  for (const k of skipped) all.delete(k);
  return { kind: 'backbone', backbone: all, skipped };
}

/** readPth, a corrupt or truncated file being an ImportError naming what is wrong. */
export function readPthForImport(path: string): unknown {
  try {
    return readPth(path);
  } catch (e) {
    if (e instanceof PthError) throw new ImportError(path, `cannot be read as a PyTorch checkpoint: ${e.detail}`);
    throw e;
  }
}

/** readPthForImport + importDinoObject. */
export function importDinoPth(path: string): ImportedWeights {
  return importDinoObject(readPthForImport(path), path);
}
