import type { BinaryOp, Storage, UnaryOp } from '../backend.js';
import { BINARY_CODES, UNARY_CODES } from '../backend.js';
import { collapseDims, contiguousStrides, numel, splitLongRun } from '../strided.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves

export function fill(rt: WasmRuntime, out: Storage, n: number, value: number): void {
  rt.run('fill', [ptr(out), value], n, GRAIN);
}

export function unary(rt: WasmRuntime, op: UnaryOp, x: Storage, out: Storage, n: number, a: number, b: number): void {
  rt.run('unary', [ptr(x), ptr(out), UNARY_CODES[op], a, b], n, GRAIN / 4);
}

export function unaryGrad(rt: WasmRuntime, op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, n: number,
  a: number, b: number): void {
  rt.run('unaryGrad', [ptr(x), ptr(y), ptr(dy), ptr(dx), UNARY_CODES[op], a, b], n, GRAIN / 4);
}

export function binary(rt: WasmRuntime, op: BinaryOp, a: Storage, b: Storage, out: Storage, shape: number[],
  aStrides: number[], bStrides: number[]): void {
  const contiguous = contiguousStrides(shape);
  const c = collapseDims(shape, aStrides, bStrides, contiguous);
  splitLongRun(c);
  const [pShape, pA, pB] = rt.scratchI32(c.shape, c.strides[0], c.strides[1]);
  const rows = numel(c.shape.slice(0, 5));
  rt.run('binary', [ptr(a), ptr(b), ptr(out), BINARY_CODES[op], pShape, pA, pB], rows, Math.max(1, GRAIN / c.shape[5]));
}

export function where(rt: WasmRuntime, cond: Storage, a: Storage, b: Storage, out: Storage, shape: number[],
  cStrides: number[], aStrides: number[], bStrides: number[]): void {
  const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
  splitLongRun(c);
  const [pShape, pC, pA, pB] = rt.scratchI32(c.shape, c.strides[0], c.strides[1], c.strides[2]);
  const rows = numel(c.shape.slice(0, 5));
  rt.run('where', [ptr(cond), ptr(a), ptr(b), ptr(out), pShape, pC, pA, pB], rows, Math.max(1, GRAIN / c.shape[5]));
}
