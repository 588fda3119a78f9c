// PLACEHOLDER: replaced by the neighbours family implementation.
import type { WasmRuntime } from './runtime.js';

export function nearestNeighbor(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('neighbours.nearestNeighbor: not implemented yet');
}
export function topk(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('neighbours.topk: not implemented yet');
}
