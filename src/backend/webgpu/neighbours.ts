// PLACEHOLDER: replaced by the neighbours family implementation.
import type { WebGPURuntime } from './runtime.js';

export function nearestNeighbor(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('neighbours.nearestNeighbor: not implemented yet');
}
export function topk(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('neighbours.topk: not implemented yet');
}
