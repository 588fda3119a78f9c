import type { DType } from '../backend.js';

export interface WasmStorage {
  readonly length: number;
  readonly dtype: DType;
  readonly ptr: number;
  freed: boolean;
}

/** The byte address of a storage inside the shared wasm memory. */
export function ptr(s: { length: number }): number {
  return (s as WasmStorage).ptr;
}
