import type { Conv2dParams, ConvParams, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'conv.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

function params(p: Conv2dParams, total: number): Uint8Array {
  return new Uniform().u32(p.batch, p.channels, p.height, p.width, p.kernelH, p.kernelW, p.strideH, p.strideW,
    p.padH, p.padW, p.outH, p.outW, total, 0, 0, 0).view();
}

export function im2col(rt: WebGPURuntime, x: Storage, out: Storage, p: Conv2dParams): void {
  const total = p.batch * p.outH * p.outW * p.channels * p.kernelH * p.kernelW;
  rt.dispatch('im2col', rt.pipeline(FILE, 'im2col'), [buf(x), buf(out)], params(p, total), grid1d(total));
}

export function col2im(rt: WebGPURuntime, col: Storage, dx: Storage, p: Conv2dParams): void {
  const total = p.batch * p.channels * p.height * p.width;
  rt.dispatch('col2im', rt.pipeline(FILE, 'col2im'), [buf(col), buf(dx)], params(p, total), grid1d(total));
}

export function pool2d(rt: WebGPURuntime, op: 'max' | 'avg', x: Storage, out: Storage, argmax: Storage | null, p: Conv2dParams): void {
  const total = p.batch * p.channels * p.outH * p.outW;
  if (op === 'avg') {
    rt.dispatch('avgPool2d', rt.pipeline(FILE, 'poolAvg'), [buf(x), buf(out)], params(p, total), grid1d(total));
    return;
  }
  // The kernel always writes argmax; a scratch buffer takes it when the caller does not want it.
  const arg = argmax ?? rt.alloc(total, 'i32');
  rt.dispatch('maxPool2d', rt.pipeline(FILE, 'poolMax'), [buf(x), buf(out), buf(arg)], params(p, total), grid1d(total));
  if (!argmax) rt.free(arg as GpuStorage);
}

export function pool2dGrad(rt: WebGPURuntime, op: 'max' | 'avg', dy: Storage, argmax: Storage | null, dx: Storage, p: Conv2dParams): void {
  const total = p.batch * p.channels * p.height * p.width;
  if (op === 'avg') {
    rt.dispatch('avgPool2dGrad', rt.pipeline(FILE, 'poolAvgGrad'), [buf(dy), buf(dx)], params(p, total), grid1d(total));
    return;
  }
  if (!argmax) throw new BackendError('max pooling needs the argmax of the forward pass', 'pool2dGrad');
  rt.dispatch('maxPool2dGrad', rt.pipeline(FILE, 'poolMaxGrad'), [buf(dy), buf(argmax), buf(dx)], params(p, total), grid1d(total));
}

function convParams(p: ConvParams, total: number): Uint8Array {
  return new Uniform().u32(p.batch, p.channels, p.height, p.width, p.kernelH, p.kernelW, p.strideH, p.strideW,
    p.padH, p.padW, p.outH, p.outW, p.outChannels, total, 0, 0).view();
}

export function conv2d(rt: WebGPURuntime, x: Storage, w: Storage, out: Storage, p: ConvParams): void {
  const total = p.batch * p.outChannels * p.outH * p.outW;
  if (total === 0) return;
  rt.dispatch('conv2d', rt.pipeline(FILE, 'convForward'), [buf(x), buf(w), buf(out)], convParams(p, total), grid1d(total));
}

export function conv2dGradInput(rt: WebGPURuntime, dy: Storage, w: Storage, dx: Storage, p: ConvParams): void {
  const total = p.batch * p.channels * p.height * p.width;
  if (total === 0) return;
  rt.dispatch('conv2dGradInput', rt.pipeline(FILE, 'convGradInput'), [buf(dy), buf(w), buf(dx)], convParams(p, total), grid1d(total));
}

export function conv2dGradWeight(rt: WebGPURuntime, x: Storage, dy: Storage, dw: Storage, p: ConvParams): void {
  const total = p.outChannels * p.channels * p.kernelH * p.kernelW;
  if (total === 0) return;
  // one workgroup per weight
  rt.dispatch('conv2dGradWeight', rt.pipeline(FILE, 'convGradWeight'), [buf(x), buf(dy), buf(dw)], convParams(p, total), grid1d(total, 1));
}
