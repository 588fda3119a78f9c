// protodino: the library API.
export { createBackend, WasmBackend, WebGPUBackend } from './backend/index.js';
export type { CreateBackendOptions } from './backend/index.js';
export type { Backend, Storage, DType, MemoryStats } from './backend/backend.js';
export { BackendError } from './backend/backend.js';
export * from './tensor/index.js';
