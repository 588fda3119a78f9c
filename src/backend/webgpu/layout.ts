// PLACEHOLDER: replaced by the layout family implementation.
import type { WebGPURuntime } from './runtime.js';

export function copyStrided(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('layout.copyStrided: not implemented yet');
}
export function gatherRows(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('layout.gatherRows: not implemented yet');
}
export function scatterAddRows(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('layout.scatterAddRows: not implemented yet');
}
