// createBackend: the one entry point that picks and builds a backend.
import type { Backend } from './backend.js';
import { BackendError } from './backend.js';
import { WasmBackend, type WasmBackendOptions } from './wasm/index.js';
import { WebGPUBackend } from './webgpu/index.js';
import { findAdapter } from './webgpu/runtime.js';

export interface CreateBackendOptions extends WasmBackendOptions {
  /** 'auto' takes WebGPU on a hardware adapter, else wasm. */
  kind?: 'wasm' | 'webgpu' | 'auto';
  /** For webgpu: 'any' (default when asked for explicitly) allows the software adapter. */
  adapter?: 'hardware' | 'software' | 'any';
}

export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  const kind = opts.kind ?? 'auto';
  switch (kind) {
    case 'wasm':
      return WasmBackend.create(opts);
    case 'webgpu':
      return WebGPUBackend.create({ adapter: opts.adapter ?? 'any' });
    case 'auto': {
      try {
        await findAdapter('hardware');
      } catch {
        return WasmBackend.create(opts);
      }
      return WebGPUBackend.create({ adapter: 'hardware' });
    }
    default:
      throw new BackendError(`unknown backend kind '${String(kind)}': expected wasm, webgpu or auto`);
  }
}

export type { Backend } from './backend.js';
export { WasmBackend } from './wasm/index.js';
export { WebGPUBackend } from './webgpu/index.js';
