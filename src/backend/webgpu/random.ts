// PLACEHOLDER: replaced by the random family implementation.
import type { WebGPURuntime } from './runtime.js';

export function random(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('random.random: not implemented yet');
}
