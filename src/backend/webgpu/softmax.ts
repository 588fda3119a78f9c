// PLACEHOLDER: replaced by the softmax family implementation.
import type { WebGPURuntime } from './runtime.js';

export function softmax(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('softmax.softmax: not implemented yet');
}
export function softmaxGrad(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('softmax.softmaxGrad: not implemented yet');
}
