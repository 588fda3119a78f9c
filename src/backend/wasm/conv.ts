import type { Conv2dParams, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves

function geometry(p: Conv2dParams): number[] {
  return [p.height, p.width, p.kernelH, p.kernelW, p.strideH, p.strideW, p.padH, p.padW, p.outH, p.outW];
}

export function im2col(rt: WasmRuntime, x: Storage, out: Storage, p: Conv2dParams): void {
  const k = p.channels * p.kernelH * p.kernelW;
  rt.run('im2col', [ptr(x), ptr(out), p.channels, ...geometry(p)], p.batch * p.outH * p.outW, Math.ceil(GRAIN / Math.max(1, k)));
}

export function col2im(rt: WasmRuntime, col: Storage, dx: Storage, p: Conv2dParams): void {
  const work = p.width * p.kernelH * p.kernelW;
  rt.run('col2im', [ptr(col), ptr(dx), p.channels, ...geometry(p)], p.batch * p.channels * p.height, Math.ceil(GRAIN / Math.max(1, work)));
}

export function pool2d(rt: WasmRuntime, op: 'max' | 'avg', x: Storage, out: Storage, argmax: Storage | null, p: Conv2dParams): void {
  const work = p.outW * p.kernelH * p.kernelW;
  rt.run('pool2d', [ptr(x), ptr(out), argmax ? ptr(argmax) : 0, op === 'max' ? 0 : 1, ...geometry(p)],
    p.batch * p.channels * p.outH, Math.ceil(GRAIN / Math.max(1, work)));
}

export function pool2dGrad(rt: WasmRuntime, op: 'max' | 'avg', dy: Storage, argmax: Storage | null, dx: Storage, p: Conv2dParams): void {
  if (op === 'max' && !argmax) throw new BackendError('max pooling needs the argmax of the forward pass', 'pool2dGrad');
  const work = p.width * Math.ceil(p.kernelH / p.strideH) * Math.ceil(p.kernelW / p.strideW);
  rt.run('pool2dGrad', [ptr(dy), argmax ? ptr(argmax) : 0, ptr(dx), op === 'max' ? 0 : 1, ...geometry(p)],
    p.batch * p.channels * p.height, Math.ceil(GRAIN / Math.max(1, work)));
}
