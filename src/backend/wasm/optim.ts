// PLACEHOLDER: replaced by the optim family implementation.
import type { WasmRuntime } from './runtime.js';

export function adamw(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('optim.adamw: not implemented yet');
}
export function ema(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('optim.ema: not implemented yet');
}
