// A protodino training checkpoint as facebookresearch/dino's checkpoint.pth: the student's state dict
// under DDP's 'module.' prefix, the teacher's without, the AdamW state in torch's layout (parameters
// numbered in DINO's get_params_groups order), the loss center, the epoch and, in args, the config — what main_dino.py's
// restart_from_checkpoint reads, so a run can continue in PyTorch.
import { readCheckpoint, type LoadedCheckpoint } from '../train/checkpoint.js';
import { writePth } from './pth/index.js';

interface HostTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

const f32 = (t: { shape: number[]; data: Float32Array }): HostTensor => ({
  dtype: 'F32',
  shape: t.shape,
  data: t.data,
});

function stateDict(ck: LoadedCheckpoint, prefix: string, rename: string): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [k, v] of ck.tensors) if (k.startsWith(prefix)) out[rename + k.slice(prefix.length)] = f32(v);
  return out;
}

/** Builds the object torch.load returns for DINO's checkpoint.pth. */
export function dinoCheckpointObject(ck: LoadedCheckpoint): Record<string, unknown> {
  const student = stateDict(ck, 'student.', 'module.');
  const teacher = stateDict(ck, 'teacher.', '');
  // torch numbers parameters group after group, in the order the optimiser held them.
  const groups = ck.meta.optimizerGroups;
  const state = new Map<number, unknown>();
  let index = 0;
  const paramGroups = groups.map((g) => {
    const ids: number[] = [];
    for (const n of g.names) {
      const m = ck.tensors.get(`optimizer.exp_avg.${n}`);
      const v = ck.tensors.get(`optimizer.exp_avg_sq.${n}`);
      if (m && v) {
        state.set(index, {
          step: { dtype: 'F32', shape: [], data: Float32Array.of(ck.meta.optimizerSteps[n] ?? 0) },
          exp_avg: f32(m),
          exp_avg_sq: f32(v),
        });
      }
      ids.push(index++);
    }
    return {
      lr: 0,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weight_decay: g.weightDecay,
      amsgrad: false,
      maximize: false,
      foreach: null,
      capturable: false,
      params: ids,
    };
  });
  const out: Record<string, unknown> = {
    student,
    teacher,
    optimizer: { state, param_groups: paramGroups },
    epoch: ck.meta.epoch,
    // A plain dict where DINO keeps its argparse Namespace: protodino's config, so eval, embed and
    // analyze can rebuild the network from the .pth, and the DDP trainer's resume its step. (A
    // resume point built from a DINO checkpoint has no config: then there is nothing to record.)
    ...(ck.meta.config !== undefined && ck.meta.config !== null
      ? {
          args: {
            config: ck.meta.config,
            step: ck.meta.step,
            ...(ck.meta.normalization ? { normalization: ck.meta.normalization } : {}),
          },
        }
      : {}),
  };
  const center = ck.tensors.get('dino_loss.center');
  if (center) out.dino_loss = { center: f32(center) };
  return out;
}

export function exportCheckpointToPth(src: string, dst: string): void {
  writePth(dst, dinoCheckpointObject(readCheckpoint(src)));
}
