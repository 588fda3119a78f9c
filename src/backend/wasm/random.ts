// PLACEHOLDER: replaced by the random family implementation.
import type { WasmRuntime } from './runtime.js';

export function random(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('random.random: not implemented yet');
}
