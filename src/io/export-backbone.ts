// One network's backbone alone, the way facebookresearch/dino publishes its pretrained weights: a
// state dict without the head, the optimiser or a 'backbone.' prefix. `train --init_from` starts a
// new run from it (a different head, a frozen backbone), and other tools load it as plain weights.
// Safetensors (checksummed) by default, torch's .pth when the output name ends in .pth.
import { basename } from 'node:path';
import { readCheckpoint } from '../train/checkpoint.js';
import { writeSafetensors } from './safetensors.js';
import { PthTensor, writePth } from './pth/index.js';

export interface BackboneExport {
  tensors: number;
  parameters: number;
  format: 'safetensors' | 'pth';
}

export function exportBackbone(src: string, dst: string, which: 'teacher' | 'student' = 'teacher'): BackboneExport {
  const ck = readCheckpoint(src);
  const prefix = `${which}.backbone.`;
  const weights = [...ck.tensors]
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, t]) => [k.slice(prefix.length), t] as const);
  // A PCA backbone has no trained weights in the checkpoint; an empty file would load as "nothing to do".
  if (weights.length === 0) throw new Error(`export: ${src} holds no ${which} backbone weights`);
  const parameters = weights.reduce((n, [, t]) => n + t.data.length, 0);
  if (dst.endsWith('.pth')) {
    writePth(dst, Object.fromEntries(weights.map(([k, t]) => [k, new PthTensor('F32', t.shape, t.data)])));
    return { tensors: weights.length, parameters, format: 'pth' };
  }
  const config = ck.meta.config as { arch?: string } | undefined;
  // No 'protodino' key: that marks a training checkpoint, which --init_from would resume whole.
  const metadata = { format: 'pt', backbone_of: `${which} of ${basename(src)}`, arch: String(config?.arch ?? '') };
  writeSafetensors(
    dst,
    Object.fromEntries(weights.map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])),
    metadata,
  );
  return { tensors: weights.length, parameters, format: 'safetensors' };
}
