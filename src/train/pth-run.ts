// A facebookresearch/dino-layout checkpoint.pth that carries protodino's training config in `args`:
// what scripts/torch-twin/train_ddp.py writes, and `protodino export --to pth`. Upstream DINO stores
// an argparse Namespace there, which the pickle reader never builds (it executes no Python class), so
// only these files' plain-dict args ({ config, step, normalization }) let eval, embed, analyze and
// report rebuild the network; any other .pth is refused with that reason.
import { importDinoObject, ImportError, readPthForImport } from '../io/import-dino.js';
import type { CheckpointMeta, LoadedCheckpoint } from './checkpoint.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/** The .pth as a LoadedCheckpoint (tensors student.*, teacher.*, dino_loss.center); throws naming the file. */
export function readPthRunCheckpoint(path: string): LoadedCheckpoint {
  const obj = readPthForImport(path);
  const args = isObject(obj) ? obj.args : undefined;
  if (!isObject(args) || !isObject(args.config))
    throw new ImportError(
      path,
      "is a PyTorch checkpoint without protodino's training config in 'args' (train_ddp.py and export --to pth write it), " +
        'so the network cannot be rebuilt (use analyze without --dataset for its prototypes alone, or train --init_from it)',
    );
  const w = importDinoObject(obj, path);
  if (w.kind !== 'dino') throw new ImportError(path, 'has args but no student and teacher');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of w.student) tensors.set(`student.${k}`, t);
  for (const [k, t] of w.teacher) tensors.set(`teacher.${k}`, t);
  if (w.center) tensors.set('dino_loss.center', w.center);
  const n = args.normalization;
  const normalization = isObject(n) && isNumbers(n.mean) && isNumbers(n.std) ? { mean: n.mean, std: n.std } : undefined;
  const step = typeof args.step === 'number' && Number.isSafeInteger(args.step) ? args.step : 0;
  const meta: CheckpointMeta = {
    format: 'protodino-dino-v1',
    epoch: w.epoch,
    step,
    config: args.config,
    loader: null,
    ...(normalization ? { normalization } : {}),
    optimizerSteps: {},
    optimizerStep: 0,
    optimizerGroups: [],
  };
  return { meta, tensors };
}
