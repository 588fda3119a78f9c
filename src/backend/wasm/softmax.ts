// PLACEHOLDER: replaced by the softmax family implementation.
import type { WasmRuntime } from './runtime.js';

export function softmax(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('softmax.softmax: not implemented yet');
}
export function softmaxGrad(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('softmax.softmaxGrad: not implemented yet');
}
