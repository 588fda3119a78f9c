// PLACEHOLDER: replaced by the norm family implementation.
import type { WasmRuntime } from './runtime.js';

export function layerNorm(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('norm.layerNorm: not implemented yet');
}
export function layerNormGrad(_rt: WasmRuntime, ..._args: unknown[]): void {
  throw new Error('norm.layerNormGrad: not implemented yet');
}
