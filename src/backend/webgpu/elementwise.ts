import type { BinaryOp, Storage, UnaryOp } from '../backend.js';
import { BINARY_CODES, UNARY_CODES } from '../backend.js';
import { collapseDims, contiguousStrides, numel } from '../strided.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'elementwise.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

export function fill(rt: WebGPURuntime, out: Storage, n: number, value: number): void {
  const u = new Uniform().u32(n).f32(value, 0).u32(0);
  rt.dispatch('fill', rt.pipeline(FILE, 'fill'), [buf(out)], u.view(), grid1d(n));
}

export function unary(rt: WebGPURuntime, op: UnaryOp, x: Storage, out: Storage, n: number, a: number, b: number): void {
  const u = new Uniform().u32(n).f32(a, b).u32(0);
  rt.dispatch(`unary(${op})`, rt.pipeline(FILE, 'unary', { OP: UNARY_CODES[op] }), [buf(x), buf(out)], u.view(), grid1d(n));
}

export function unaryGrad(rt: WebGPURuntime, op: UnaryOp, x: Storage, y: Storage, dy: Storage, dx: Storage, n: number,
  a: number, b: number): void {
  const u = new Uniform().u32(n).f32(a, b).u32(0);
  rt.dispatch(`unaryGrad(${op})`, rt.pipeline(FILE, 'unaryGrad', { OP: UNARY_CODES[op] }),
    [buf(x), buf(y), buf(dy), buf(dx)], u.view(), grid1d(n));
}

function stridedUniform(shape: number[], strides: number[][]): Uint8Array {
  const u = new Uniform().u32(...shape, 0, 0);
  for (let j = 0; j < 3; j++) u.u32(...(strides[j] ?? [0, 0, 0, 0, 0, 0]), 0, 0);
  return u.u32(numel(shape)).view();
}

export function binary(rt: WebGPURuntime, op: BinaryOp, a: Storage, b: Storage, out: Storage, shape: number[],
  aStrides: number[], bStrides: number[]): void {
  const c = collapseDims(shape, aStrides, bStrides, contiguousStrides(shape));
  const n = numel(shape);
  rt.dispatch(`binary(${op})`, rt.pipeline(FILE, 'binary', { OP: BINARY_CODES[op] }), [buf(a), buf(b), buf(out)],
    stridedUniform(c.shape, [c.strides[0], c.strides[1]]), grid1d(n));
}

export function where(rt: WebGPURuntime, cond: Storage, a: Storage, b: Storage, out: Storage, shape: number[],
  cStrides: number[], aStrides: number[], bStrides: number[]): void {
  const c = collapseDims(shape, cStrides, aStrides, bStrides, contiguousStrides(shape));
  const n = numel(shape);
  rt.dispatch('where', rt.pipeline(FILE, 'where_'), [buf(cond), buf(a), buf(b), buf(out)],
    stridedUniform(c.shape, [c.strides[0], c.strides[1], c.strides[2]]), grid1d(n));
}
