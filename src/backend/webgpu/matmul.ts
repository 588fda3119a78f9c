// PLACEHOLDER: replaced by the matmul family implementation.
import type { WebGPURuntime } from './runtime.js';

export function matmul(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('matmul.matmul: not implemented yet');
}
