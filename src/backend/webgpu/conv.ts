// PLACEHOLDER: replaced by the conv family implementation.
import type { WebGPURuntime } from './runtime.js';

export function im2col(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('conv.im2col: not implemented yet');
}
export function col2im(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('conv.col2im: not implemented yet');
}
export function pool2d(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('conv.pool2d: not implemented yet');
}
export function pool2dGrad(_rt: WebGPURuntime, ..._args: unknown[]): void {
  throw new Error('conv.pool2dGrad: not implemented yet');
}
