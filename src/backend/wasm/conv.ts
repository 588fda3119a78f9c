import type { Conv2dParams, ConvKernels } from '../backend.js';
import { BackendError } from '../backend.js';
import { convGemmKernels } from './convgemm.js';
import { winogradKernels } from './winograd.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

const GRAIN = 16384; // elements per thread below which splitting costs more than it saves

type Geometry = [
  H: number,
  W: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  ph: number,
  pw: number,
  outH: number,
  outW: number,
];

function geometry(p: Conv2dParams): Geometry {
  return [p.height, p.width, p.kernelH, p.kernelW, p.strideH, p.strideW, p.padH, p.padW, p.outH, p.outW];
}

export function convKernels(rt: WasmRuntime): ConvKernels {
  return {
    ...convGemmKernels(rt),
    ...winogradKernels(rt),
    im2col(x, out, p) {
      const k = p.channels * p.kernelH * p.kernelW;
      rt.run(
        'im2col',
        [ptr(x), ptr(out), p.channels, ...geometry(p)],
        p.batch * p.outH * p.outW,
        Math.ceil(GRAIN / Math.max(1, k)),
      );
    },
    col2im(col, dx, p) {
      const work = p.width * p.kernelH * p.kernelW;
      rt.run(
        'col2im',
        [ptr(col), ptr(dx), p.channels, ...geometry(p)],
        p.batch * p.channels * p.height,
        Math.ceil(GRAIN / Math.max(1, work)),
      );
    },
    pool2d(op, x, out, argmax, p) {
      const work = p.outW * p.kernelH * p.kernelW;
      rt.run(
        'pool2d',
        [ptr(x), ptr(out), argmax ? ptr(argmax) : 0, op === 'max' ? 0 : 1, ...geometry(p)],
        p.batch * p.channels * p.outH,
        Math.ceil(GRAIN / Math.max(1, work)),
      );
    },
    pool2dGrad(op, dy, argmax, dx, p) {
      if (op === 'max' && !argmax)
        throw new BackendError('max pooling needs the argmax of the forward pass', 'pool2dGrad');
      const work = p.width * Math.ceil(p.kernelH / p.strideH) * Math.ceil(p.kernelW / p.strideW);
      rt.run(
        'pool2dGrad',
        [ptr(dy), argmax ? ptr(argmax) : 0, ptr(dx), op === 'max' ? 0 : 1, ...geometry(p)],
        p.batch * p.channels * p.height,
        Math.ceil(GRAIN / Math.max(1, work)),
      );
    },
  };
}
