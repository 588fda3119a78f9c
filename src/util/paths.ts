import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package root (the folder holding package.json, wgsl/ and build/), found from this file. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'wgsl'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('protodino: cannot find the package root (package.json next to wgsl/)');
    dir = up;
  }
  return (root = dir);
}

export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
