import type { Conv2dParams, ConvKernels, ConvParams, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { winogradKernels } from './winograd.js';

const FILE = 'conv.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

const GEOMETRY = [
  ['batch', 'u32'],
  ['channels', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['kh', 'u32'],
  ['kw', 'u32'],
  ['sh', 'u32'],
  ['sw', 'u32'],
  ['ph', 'u32'],
  ['pw', 'u32'],
  ['outH', 'u32'],
  ['outW', 'u32'],
] as const;
const P = paramLayout(FILE, 'P', [...GEOMETRY, ['total', 'u32'], ['_p0', 'u32'], ['_p1', 'u32'], ['_p2', 'u32']]);
const CP = paramLayout(FILE, 'CP', [...GEOMETRY, ['outC', 'u32'], ['total', 'u32'], ['_p0', 'u32'], ['_p1', 'u32']]);

const geometry = (p: Conv2dParams) => ({
  batch: p.batch,
  channels: p.channels,
  height: p.height,
  width: p.width,
  kh: p.kernelH,
  kw: p.kernelW,
  sh: p.strideH,
  sw: p.strideW,
  ph: p.padH,
  pw: p.padW,
  outH: p.outH,
  outW: p.outW,
});

function params(p: Conv2dParams, total: number): Uint8Array {
  return packParams(P, { ...geometry(p), total });
}

function convParams(p: ConvParams, total: number): Uint8Array {
  return packParams(CP, { ...geometry(p), outC: p.outChannels, total });
}

export function convKernels(rt: WebGPURuntime): ConvKernels {
  return {
    ...winogradKernels(rt),
    im2col(x, out, p) {
      const total = p.batch * p.outH * p.outW * p.channels * p.kernelH * p.kernelW;
      rt.dispatch('im2col', rt.pipeline(FILE, 'im2col'), [buf(x), buf(out)], params(p, total), grid1d(total));
    },
    col2im(col, dx, p) {
      const total = p.batch * p.channels * p.height * p.width;
      rt.dispatch('col2im', rt.pipeline(FILE, 'col2im'), [buf(col), buf(dx)], params(p, total), grid1d(total));
    },
    pool2d(op, x, out, argmax, p) {
      const total = p.batch * p.channels * p.outH * p.outW;
      if (op === 'avg') {
        rt.dispatch('avgPool2d', rt.pipeline(FILE, 'poolAvg'), [buf(x), buf(out)], params(p, total), grid1d(total));
        return;
      }
      // The kernel always writes argmax; a scratch buffer takes it when the caller does not want it.
      const arg = argmax ?? rt.alloc(total, 'i32');
      rt.dispatch(
        'maxPool2d',
        rt.pipeline(FILE, 'poolMax'),
        [buf(x), buf(out), buf(arg)],
        params(p, total),
        grid1d(total),
      );
      if (!argmax) rt.free(arg as GpuStorage);
    },
    pool2dGrad(op, dy, argmax, dx, p) {
      const total = p.batch * p.channels * p.height * p.width;
      if (op === 'avg') {
        rt.dispatch(
          'avgPool2dGrad',
          rt.pipeline(FILE, 'poolAvgGrad'),
          [buf(dy), buf(dx)],
          params(p, total),
          grid1d(total),
        );
        return;
      }
      if (!argmax) throw new BackendError('max pooling needs the argmax of the forward pass', 'pool2dGrad');
      rt.dispatch(
        'maxPool2dGrad',
        rt.pipeline(FILE, 'poolMaxGrad'),
        [buf(dy), buf(argmax), buf(dx)],
        params(p, total),
        grid1d(total),
      );
    },
    conv2d(x, w, out, p) {
      const total = p.batch * p.outChannels * p.outH * p.outW;
      if (total === 0) return;
      rt.dispatch(
        'conv2d',
        rt.pipeline(FILE, 'convForward'),
        [buf(x), buf(w), buf(out)],
        convParams(p, total),
        grid1d(total),
      );
    },
    conv2dGradInput(dy, w, dx, p) {
      const total = p.batch * p.channels * p.height * p.width;
      if (total === 0) return;
      rt.dispatch(
        'conv2dGradInput',
        rt.pipeline(FILE, 'convGradInput'),
        [buf(dy), buf(w), buf(dx)],
        convParams(p, total),
        grid1d(total),
      );
    },
    conv2dGradWeight(x, dy, dw, p) {
      const total = p.outChannels * p.channels * p.kernelH * p.kernelW;
      if (total === 0) return;
      // one workgroup per weight
      rt.dispatch(
        'conv2dGradWeight',
        rt.pipeline(FILE, 'convGradWeight'),
        [buf(x), buf(dy), buf(dw)],
        convParams(p, total),
        grid1d(total, 1),
      );
    },
  };
}
