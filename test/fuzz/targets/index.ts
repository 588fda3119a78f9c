// The fuzz targets by name (one module each, loaded on demand: each builds its seed files).
import type { FuzzTarget } from '../target.js';

export const TARGETS = ['idx', 'cifar', 'image', 'safetensors', 'checkpoint', 'pth'] as const;
export type TargetName = (typeof TARGETS)[number];

export async function loadTarget(name: string): Promise<FuzzTarget> {
  if (!(TARGETS as readonly string[]).includes(name))
    throw new Error(`unknown fuzz target '${name}' (have: ${TARGETS.join(', ')})`);
  const mod = (await import(`./${name}.js`)) as { target: FuzzTarget };
  return mod.target;
}
