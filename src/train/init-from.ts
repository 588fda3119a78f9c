// --init_from FILE: starting a run from weights trained elsewhere. Three kinds of file:
// - facebookresearch/dino's checkpoint.pth (student, teacher, optimizer, dino_loss, epoch): the run
//   continues from it as DINO's restart_from_checkpoint would, at the start of the epoch it saved;
// - a backbone-only state dict (.pth, or .safetensors without protodino metadata): both backbones
//   start from it, the head fresh, at step 0;
// - a protodino training checkpoint: the run continues from it exactly as --resume would, in a new
//   output directory.
// Everything is matched against the networks this run's config builds before a value is loaded, so
// a wrong file fails naming the tensor and both shapes instead of training something else.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import type { AdamW } from '../tensor/ops/optim.js';
import type { LoaderState } from '../data/index.js';
import { readSafetensors, SafetensorsError } from '../io/safetensors.js';
import { PthTensor } from '../io/pth/tensor.js';
import {
  importDinoObject,
  importDinoPth,
  ImportError,
  type ImportedBackbone,
  type ImportedDinoCheckpoint,
  type ImportedTensor,
} from '../io/import-dino.js';
import { readCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint.js';
import type { DinoNetwork } from './network.js';
import type { TrainConfig } from './config.js';

export type InitSource =
  | { kind: 'dino'; file: string; weights: ImportedDinoCheckpoint }
  | { kind: 'backbone'; file: string; weights: ImportedBackbone }
  | { kind: 'protodino'; file: string; checkpoint: LoadedCheckpoint };

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** Reads and classifies an --init_from file; every problem is an ImportError or CheckpointError naming it. */
export function readInitFrom(file: string): InitSource {
  if (!existsSync(file)) throw new ImportError(file, 'no such file');
  const head = new Uint8Array(4);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (n === 4 && ZIP_MAGIC.every((b, i) => head[i] === b)) {
    const weights = importDinoPth(file);
    return weights.kind === 'dino' ? { kind: 'dino', file, weights } : { kind: 'backbone', file, weights };
  }
  let st;
  try {
    // Checked when it carries our checksum; a state dict from another tool (e.g. Hugging Face's) has none.
    st = readSafetensors(file);
  } catch (e) {
    if (e instanceof SafetensorsError)
      throw new ImportError(
        file,
        `is neither a PyTorch zip checkpoint (torch.save) nor a readable safetensors file (${e.message})`,
      );
    throw e;
  }
  if (st.metadata.protodino !== undefined) return { kind: 'protodino', file, checkpoint: readCheckpoint(file) };
  const obj = Object.fromEntries(
    [...st.tensors].map(([k, t]) => [k, new PthTensor(t.dtype as never, t.shape, t.data)]),
  );
  const weights = importDinoObject(obj, file);
  if (weights.kind !== 'backbone')
    throw new ImportError(file, 'a safetensors file without protodino metadata can hold backbone weights only');
  return { kind: 'backbone', file, weights };
}

/** Where the loader starts: a DINO checkpoint at the start of its epoch, a protodino one at its cursor. */
export function initLoaderState(src: InitSource, cfg: TrainConfig, datasetSize: number): LoaderState | undefined {
  if (src.kind === 'protodino') return src.checkpoint.meta.loader as LoaderState;
  if (src.kind === 'dino')
    return { epoch: src.weights.epoch, batch: 0, seed: cfg.seed, batchSize: cfg.batch_size, n: datasetSize };
  return undefined;
}

const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks a file's tensors against a module's state dict: every name known, every shape equal, every
 * entry present except those in `mayMiss` (which keep the values the network was built with).
 */
function match(
  file: string,
  what: string,
  got: Map<string, ImportedTensor>,
  own: Map<string, Tensor>,
  mayMiss: (name: string) => boolean = () => false,
): void {
  const unknown = [...got.keys()].filter((k) => !own.has(k));
  const missing = [...own.keys()].filter((k) => !got.has(k) && !mayMiss(k));
  if (unknown.length || missing.length) {
    const list = (xs: string[]) =>
      xs
        .slice(0, 8)
        .map((x) => `'${x}'`)
        .join(', ') + (xs.length > 8 ? ` and ${xs.length - 8} more` : '');
    const parts = [
      unknown.length ? `unknown ${what} tensor${unknown.length > 1 ? 's' : ''} ${list(unknown)}` : '',
      missing.length ? `missing ${what} tensor${missing.length > 1 ? 's' : ''} ${list(missing)}` : '',
    ].filter(Boolean);
    throw new ImportError(file, `${parts.join('; ')} for the network this config builds`);
  }
  for (const [name, t] of got) {
    const mine = own.get(name)!;
    if (t.shape.length !== mine.shape.length || t.shape.some((d, i) => d !== mine.shape[i]))
      throw new ImportError(
        file,
        `${what} tensor '${name}' has shape ${shape(t.shape)} in the file but ${shape(mine.shape)} in the network this config builds`,
      );
  }
}

interface Live {
  student: DinoNetwork;
  teacher: DinoNetwork;
  optimizer: AdamW;
  cfg: TrainConfig;
  /** Optimizer steps per epoch of this run. */
  niter: number;
  loader: LoaderState | undefined;
}

/** iBOT's mask token (zeros when built) is protodino's addition to the ViT; DINO's files never carry it. */
const mayMissDino = (name: string) => name === 'backbone.masked_embed';

/** Loads a backbone-only state dict into both backbones (DINO's teacher starts as the student). */
export function loadBackbone(
  src: Extract<InitSource, { kind: 'backbone' }>,
  student: DinoNetwork,
  teacher: DinoNetwork,
) {
  const got = src.weights.backbone;
  match(src.file, 'backbone', got, student.backbone.stateDict(), (n) => n === 'masked_embed');
  for (const net of [student, teacher]) net.backbone.loadStateDict(got, false);
}

/**
 * A DINO checkpoint as the LoadedCheckpoint a resume restores: state dicts renamed, AdamW moments put
 * under this run's parameter names (torch numbers parameters group after group, as the optimizer
 * holds them), the step set to the saved epoch's first.
 */
export function dinoResumePoint(src: Extract<InitSource, { kind: 'dino' }>, live: Live): LoadedCheckpoint {
  const { file, weights: w } = src;
  const { student, teacher, optimizer, cfg } = live;
  match(file, 'student', w.student, student.stateDict(), mayMissDino);
  match(file, 'teacher', w.teacher, teacher.stateDict(), mayMissDino);
  const tensors: LoadedCheckpoint['tensors'] = new Map();
  const put = (prefix: string, m: Map<string, ImportedTensor>, net: DinoNetwork) => {
    for (const [k, t] of net.stateDict()) {
      const v = m.get(k);
      // Only the mask token may be absent (mayMissDino), and it is built as zeros.
      tensors.set(prefix + k, v ?? { shape: [...t.shape], data: new Float32Array(t.size) });
    }
  };
  put('student.', w.student, student);
  put('teacher.', w.teacher, teacher);
  const K = cfg.out_dim;
  if (cfg.centering === 'centering') {
    if (!w.center) throw new ImportError(file, `has no dino_loss.center, which --centering centering continues from`);
    if (w.center.shape.length !== 2 || w.center.shape[0] !== 1 || w.center.shape[1] !== K)
      throw new ImportError(
        file,
        `dino_loss.center has shape ${shape(w.center.shape)} in the file but [1, ${K}] in this run (--out_dim ${K})`,
      );
    tensors.set('dino_loss.center', w.center);
  }
  // DINO has no iBOT patch loss: its center starts at zero, as in a fresh run.
  if (cfg.ibot) tensors.set('ibot_loss.center2', { shape: [1, K], data: new Float32Array(K) });

  const own = student.stateDict();
  const names = new Map(student.namedParameters().map(([n, t]) => [t, n]));
  const groups = optimizer.groups.map((g) => g.params.map((p) => names.get(p)!));
  // torch numbers parameters in named_parameters order, which protodino's modules register in as
  // DINO's do (the moments' shapes are checked below); a parameter the file lacks (the mask token)
  // has no number there and starts fresh.
  const inFile = groups.map((ns) => ns.filter((n) => w.student.has(n)));
  const optimizerSteps: Record<string, number> = {};
  if (w.optimizer) {
    const sizes = (xs: { length: number }[]) => xs.map((x) => x.length).join(' + ');
    if (w.optimizer.length !== inFile.length || w.optimizer.some((g, i) => g.slots.length !== inFile[i].length)) {
      throw new ImportError(
        file,
        `optimizer has param_groups of ${sizes(w.optimizer.map((g) => g.slots))} parameters, this run's AdamW ${sizes(inFile)} (regularised, then biases and norms, as DINO's get_params_groups)`,
      );
    }
    w.optimizer.forEach((g, gi) =>
      g.slots.forEach((slot, i) => {
        if (!slot) return;
        const name = inFile[gi][i];
        const p = own.get(name)!;
        for (const [key, t] of [
          ['exp_avg', slot.exp_avg],
          ['exp_avg_sq', slot.exp_avg_sq],
        ] as const) {
          if (t.shape.length !== p.shape.length || t.shape.some((d, j) => d !== p.shape[j]))
            throw new ImportError(
              file,
              `optimizer state ${key} of parameter ${gi}.${i} ('${name}' in this run) has shape ${shape(t.shape)} in the file but the parameter is ${shape(p.shape)}`,
            );
          tensors.set(`optimizer.${key}.${name}`, t);
        }
        optimizerSteps[name] = slot.step;
      }),
    );
  }
  const step = w.epoch * live.niter;
  const meta: CheckpointMeta = {
    format: 'protodino-dino-v1',
    epoch: w.epoch,
    step,
    config: undefined,
    loader: live.loader,
    optimizerSteps,
    optimizerStep: step,
    optimizerGroups: optimizer.groups.map((g, i) => ({ names: groups[i], weightDecay: g.weightDecay })),
  };
  return { meta, tensors };
}

/** A protodino checkpoint's tensors checked against this run's networks before the resume path loads them. */
export function checkProtodinoCheckpoint(src: Extract<InitSource, { kind: 'protodino' }>, live: Live): void {
  const pick = (prefix: string) => {
    const m = new Map<string, ImportedTensor>();
    for (const [k, v] of src.checkpoint.tensors) if (k.startsWith(prefix)) m.set(k.slice(prefix.length), v);
    return m;
  };
  match(src.file, 'student', pick('student.'), live.student.stateDict());
  match(src.file, 'teacher', pick('teacher.'), live.teacher.stateDict());
}
