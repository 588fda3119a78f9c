// The backends every conformance test runs on. PROTODINO_TEST_BACKENDS=name,name narrows the list
// while developing; CI runs them all. WebGPU is never skipped: if no adapter can be had the suite fails.
import { suite, type Test } from 'uvu';
import type { Backend } from '../../src/backend/backend.js';
import { WasmBackend } from '../../src/backend/wasm/index.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';

export interface BackendCase {
  name: string;
  create(): Promise<Backend>;
}

export const ALL_BACKENDS: BackendCase[] = [
  { name: 'wasm-simd-1t', create: () => WasmBackend.create({ threads: 1, build: 'simd' }) },
  { name: 'wasm-relaxed-1t', create: () => WasmBackend.create({ threads: 1, build: 'relaxed' }) },
  { name: 'wasm-simd-2t', create: () => WasmBackend.create({ threads: 2, build: 'simd' }) },
  { name: 'wasm-relaxed-2t', create: () => WasmBackend.create({ threads: 2, build: 'relaxed' }) },
  { name: 'webgpu', create: () => WebGPUBackend.create({ adapter: 'any' }) },
];

export function selectedBackends(): BackendCase[] {
  const only = process.env.PROTODINO_TEST_BACKENDS;
  if (!only) return ALL_BACKENDS;
  const names = only.split(',').map((s) => s.trim());
  const picked = ALL_BACKENDS.filter((b) => names.includes(b.name));
  if (picked.length !== names.length) throw new Error(`PROTODINO_TEST_BACKENDS names unknown backends: ${only}`);
  return picked;
}

const cache = new Map<string, Promise<Backend>>();

/** One instance per backend case for the whole test process (printing what it runs on once). */
export function getBackend(c: BackendCase): Promise<Backend> {
  let p = cache.get(c.name);
  if (!p) {
    p = c.create().then((be) => {
      console.log(`\n[${c.name}] ${be.description}`);
      return be;
    });
    cache.set(c.name, p);
  }
  return p;
}

/**
 * Defines the same tests once per backend: `define(test, be)` registers cases; `be()` returns the
 * backend inside a test body.
 */
export function conformance(
  family: string,
  define: (test: Test, be: () => Backend) => void,
  backends: BackendCase[] = selectedBackends(),
): void {
  for (const c of backends) {
    const s = suite(`${family} [${c.name}]`);
    let backend: Backend | undefined;
    s.before(async () => {
      backend = await getBackend(c);
    });
    define(s, () => {
      if (!backend) throw new Error(`backend ${c.name} was not created`);
      return backend;
    });
    s.run();
  }
}
