import { BackendError, type Storage, type NeighboursKernels } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'neighbours.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const BM = 64; // x rows per workgroup (wgsl/neighbours.wgsl)

const SELF_FILE = 'neighbours-self.wgsl';

const NN = paramLayout(FILE, 'NN', [
  ['m', 'u32'],
  ['k', 'u32'],
  ['d', 'u32'],
  ['excludeSelf', 'u32'],
  ['negInf', 'f32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);
const TOPK = paramLayout(FILE, 'TopK', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['k', 'u32'],
  ['_pad', 'u32'],
]);
const SELF = paramLayout(SELF_FILE, 'SelfParams', [
  ['k', 'u32'],
  ['d', 'u32'],
  ['m', 'u32'],
  ['excludeSelf', 'u32'],
  ['negInf', 'f32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);
const CAND = paramLayout(SELF_FILE, 'Cand', [
  ['k', 'u32'],
  ['d', 'u32'],
  ['m', 'u32'],
  ['_p', 'u32'],
  ['negInf', 'f32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);

export function neighboursKernels(rt: WebGPURuntime): NeighboursKernels {
  const kernels: NeighboursKernels = {
    nearestNeighbor(x, y, outVal, outIdx, m, k, d, excludeSelf) {
      if (m === 0) return;
      const u = packParams(NN, { m, k, d, excludeSelf: excludeSelf ? 1 : 0, negInf: -Infinity });
      rt.dispatch(
        'nearestNeighbor',
        rt.pipeline(FILE, 'nearestNeighbor'),
        [buf(x), buf(y), buf(outVal), buf(outIdx)],
        u,
        grid1d(m, BM),
      );
    },
    /**
     * With m = 1 and no candidate list this is the one-sided search (its tiled kernel is the faster
     * on a GPU); otherwise one thread per row keeps its m best (wgsl/neighbours-self.wgsl).
     */
    nearestNeighborSelf(x, outVal, outIdx, cand, k, d, m, excludeSelf) {
      if (k === 0) return;
      if (!Number.isInteger(m) || m < 1)
        throw new BackendError(`m = ${m} must be a positive integer`, 'nearestNeighborSelf');
      if (!cand && m === 1) {
        kernels.nearestNeighbor(x, x, outVal, outIdx, k, k, d, excludeSelf);
        return;
      }
      const listV = rt.alloc(k * m, 'f32');
      const listI = cand ? (cand as GpuStorage) : rt.alloc(k * m, 'i32');
      try {
        const u = packParams(SELF, { k, d, m, excludeSelf: excludeSelf ? 1 : 0, negInf: -Infinity });
        rt.dispatch(
          'nearestNeighborSelf',
          rt.pipeline(SELF_FILE, 'selfTopM'),
          [buf(x), buf(outVal), buf(outIdx), listV.buffer, listI.buffer],
          u,
          grid1d(k, 64),
        );
      } finally {
        rt.free(listV);
        if (!cand) rt.free(listI);
      }
    },
    nearestAmongCandidates(x, cand, outVal, outIdx, k, d, m) {
      if (k === 0) return;
      const u = packParams(CAND, { k, d, m, negInf: -Infinity });
      rt.dispatch(
        'nearestAmongCandidates',
        rt.pipeline(SELF_FILE, 'candidates'),
        [buf(x), buf(cand), buf(outVal), buf(outIdx)],
        u,
        grid1d(k, 64),
      );
    },
    topk(x, outVal, outIdx, rows, cols, k) {
      if (rows === 0 || k === 0) return;
      const u = packParams(TOPK, { rows, cols, k });
      rt.dispatch('topk', rt.pipeline(FILE, 'topk'), [buf(x), buf(outVal), buf(outIdx)], u, grid1d(rows, 64));
    },
  };
  return kernels;
}
