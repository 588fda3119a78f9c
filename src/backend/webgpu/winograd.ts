// Winograd F(4×4, 3×3) transforms (wgsl/winograd.wgsl, twins of assembly/winograd.ts), and the
// Winograd convolution and weight-gradient products (fused on wasm: assembly/winograd-fused*.ts) as
// their composition with matmul (src/backend/winograd-compose.ts): on a GPU each kernel already keeps
// its values in registers and workgroup memory, so fusing would only save the dispatches.
import type { ConvKernels, Storage } from '../backend.js';
import { WINOGRAD_VALUES, winogradRange } from '../backend.js';
import { composedWinogradConv, composedWinogradConvGrad } from '../winograd-compose.js';
import { matmulKernels } from './matmul.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'winograd.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;

const WW = paramLayout(FILE, 'WW', [
  ['r', 'u32'],
  ['s', 'u32'],
  ['flip', 'u32'],
  ['total', 'u32'],
]);
const WI = paramLayout(FILE, 'WI', [
  ['c', 'u32'],
  ['h', 'u32'],
  ['w', 'u32'],
  ['padH', 'u32'],
  ['padW', 'u32'],
  ['th', 'u32'],
  ['tw', 'u32'],
  ['first', 'u32'],
  ['n', 'u32'],
  ['np', 'u32'],
  ['total', 'u32'],
  ['_p0', 'u32'],
]);
const WO = paramLayout(FILE, 'WO', [
  ['o', 'u32'],
  ['oh', 'u32'],
  ['ow', 'u32'],
  ['th', 'u32'],
  ['tw', 'u32'],
  ['first', 'u32'],
  ['n', 'u32'],
  ['np', 'u32'],
  ['total', 'u32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);

export function winogradKernels(
  rt: WebGPURuntime,
): Pick<
  ConvKernels,
  | 'winogradWeights'
  | 'winogradInput'
  | 'winogradOutput'
  | 'winogradConv'
  | 'winogradOutputGrad'
  | 'winogradConvGrad'
  | 'winogradWeightsGrad'
> {
  const kernels: Omit<ReturnType<typeof winogradKernels>, 'winogradConv' | 'winogradConvGrad'> = {
    winogradWeights(w, u, outChannels, channels, flip) {
      const [r, s] = flip ? [channels, outChannels] : [outChannels, channels];
      const total = r * s;
      if (total === 0) return;
      rt.dispatch(
        'winogradWeights',
        rt.pipeline(FILE, 'winogradWeights'),
        [buf(w), buf(u)],
        packParams(WW, { r, s, flip: flip ? 1 : 0, total }),
        grid1d(total),
      );
    },
    winogradInput(x, v, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradInput');
      const total = p.channels * np;
      if (total === 0) return;
      rt.dispatch(
        'winogradInput',
        rt.pipeline(FILE, 'winogradInput'),
        [buf(x), buf(v)],
        packParams(WI, {
          c: p.channels,
          h: p.height,
          w: p.width,
          padH: p.padH,
          padW: p.padW,
          th,
          tw,
          first,
          n: count,
          np,
          total,
        }),
        grid1d(total),
      );
    },
    winogradOutput(m, out, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradOutput');
      const total = p.outChannels * count;
      if (total === 0) return;
      rt.dispatch(
        'winogradOutput',
        rt.pipeline(FILE, 'winogradOutput'),
        [buf(m), buf(out)],
        packParams(WO, { o: p.outChannels, oh: p.outH, ow: p.outW, th, tw, first, n: count, np, total }),
        grid1d(total),
      );
    },
    winogradOutputGrad(dy, dm, p, first, count) {
      const { th, tw, np } = winogradRange(p, first, count, 'winogradOutputGrad');
      const total = p.outChannels * np;
      if (total === 0) return;
      rt.dispatch(
        'winogradOutputGrad',
        rt.pipeline(FILE, 'winogradOutputGrad'),
        [buf(dy), buf(dm)],
        packParams(WO, { o: p.outChannels, oh: p.outH, ow: p.outW, th, tw, first, n: count, np, total }),
        grid1d(total),
      );
    },
    winogradWeightsGrad(du, dw, outChannels, channels) {
      const total = outChannels * channels;
      if (total === 0) return;
      rt.dispatch(
        'winogradWeightsGrad',
        rt.pipeline(FILE, 'winogradWeightsGrad'),
        [buf(du), buf(dw)],
        packParams(WW, { r: outChannels, s: channels, flip: 0, total }),
        grid1d(total),
      );
    },
  };
  const k = { ...kernels, matmul: matmulKernels(rt).matmul };
  return {
    ...kernels,
    winogradConv(x, u, out, p, first, count) {
      const { np } = winogradRange(p, first, count, 'winogradConv');
      if (count === 0 || p.outChannels === 0) return;
      const v = rt.alloc(WINOGRAD_VALUES * p.channels * np, 'f32');
      const m = rt.alloc(WINOGRAD_VALUES * p.outChannels * np, 'f32');
      try {
        composedWinogradConv(k, x, u, out, p, first, count, v, m);
      } finally {
        rt.free(v);
        rt.free(m);
      }
    },
    winogradConvGrad(x, dy, du, p, first, count, accumulate) {
      const { np } = winogradRange(p, first, count, 'winogradConvGrad');
      if (p.channels === 0 || p.outChannels === 0) return;
      const v = rt.alloc(WINOGRAD_VALUES * p.channels * Math.max(np, 1), 'f32');
      const dm = rt.alloc(WINOGRAD_VALUES * p.outChannels * Math.max(np, 1), 'f32');
      try {
        composedWinogradConvGrad(k, x, dy, du, p, first, count, accumulate, v, dm);
      } finally {
        rt.free(v);
        rt.free(dm);
      }
    },
  };
}
