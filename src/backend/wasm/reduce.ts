import type { ReduceOp, Storage } from '../backend.js';
import { REDUCE_CODES } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

export function reduce(rt: WasmRuntime, op: ReduceOp, x: Storage, out: Storage, outer: number, len: number, inner: number): void {
  const units = rt.exports.reduceUnits(outer, inner) as number;
  const perUnit = inner === 1 ? len : len * Math.min(inner, 64);
  rt.run('reduce', [ptr(x), ptr(out), REDUCE_CODES[op], outer, len, inner], units, Math.max(1, Math.ceil(32768 / perUnit)));
}

export function argReduce(rt: WasmRuntime, op: 'max' | 'min', x: Storage, out: Storage, outer: number, len: number, inner: number): void {
  rt.run('argReduce', [ptr(x), ptr(out), op === 'max' ? 0 : 1, outer, len, inner], outer * inner, Math.max(1, Math.ceil(32768 / len)));
}
