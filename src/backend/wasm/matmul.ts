// PLACEHOLDER: replaced by the matmul family implementation.
import type { WasmRuntime } from './runtime.js';

export function matmul(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('matmul.matmul: not implemented yet');
}
