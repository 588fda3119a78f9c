// createBackend: the one entry point that picks and builds a backend.
import type { Backend } from './backend.js';
import { BackendError } from './backend.js';
import { WasmBackend, type WasmBackendOptions } from './wasm/index.js';
import { WebGPUBackend } from './webgpu/index.js';
import { describeAdapter, findAdapter } from './webgpu/runtime.js';

export interface CreateBackendOptions extends WasmBackendOptions {
  /** 'auto' takes WebGPU on a hardware adapter, else wasm. */
  kind?: 'wasm' | 'webgpu' | 'auto';
  /** For webgpu: 'any' (default when asked for explicitly) allows the software adapter. */
  adapter?: 'hardware' | 'software' | 'any';
}

// A Record, so an option added to the interface and not here does not compile.
const OPTION_NAMES: Record<keyof CreateBackendOptions, true> = {
  kind: true,
  threads: true,
  build: true,
  adapter: true,
  tune: true,
};
/** Every option createBackend reads; anything else is refused rather than silently ignored. */
export const CREATE_BACKEND_OPTIONS = Object.keys(OPTION_NAMES) as readonly (keyof CreateBackendOptions)[];

export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new BackendError(
      `createBackend takes an options object, got ${Array.isArray(opts) ? 'an array' : String(opts)}`,
    );
  const unknown = Object.keys(opts).filter((k) => !(CREATE_BACKEND_OPTIONS as readonly string[]).includes(k));
  if (unknown.length) {
    // { backend: 'wasm' } is the usual slip: it would quietly give the 'auto' backend.
    const hint = unknown.includes('backend') ? " (the backend is chosen with kind: 'wasm' | 'webgpu' | 'auto')" : '';
    throw new BackendError(
      `createBackend: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}${hint}; valid options are ${CREATE_BACKEND_OPTIONS.join(', ')}`,
    );
  }
  const kind = opts.kind ?? 'auto';
  switch (kind) {
    case 'wasm':
      return WasmBackend.create(opts);
    case 'webgpu':
      return WebGPUBackend.create({ adapter: opts.adapter ?? 'any' });
    case 'auto':
      return (await autoChoice()).kind === 'webgpu'
        ? WebGPUBackend.create({ adapter: 'hardware' })
        : WasmBackend.create(opts);
    default:
      throw new BackendError(`unknown backend kind '${String(kind)}': expected wasm, webgpu or auto`);
  }
}

/** What `kind: 'auto'` picks, and why, in words `protodino doctor` prints. */
export async function autoChoice(): Promise<{ kind: 'wasm' | 'webgpu'; reason: string }> {
  try {
    const { adapter } = await findAdapter('hardware');
    return { kind: 'webgpu', reason: `hardware WebGPU adapter: ${describeAdapter(adapter.info)}` };
  } catch (e) {
    // The software adapter is used only when WebGPU is asked for by name (README).
    return { kind: 'wasm', reason: (e as Error).message };
  }
}

export type { Backend } from './backend.js';
export { WasmBackend } from './wasm/index.js';
export { WebGPUBackend } from './webgpu/index.js';
