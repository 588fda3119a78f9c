import { BackendError, type Storage, type NeighboursKernels } from '../backend.js';
import { grid1d, Uniform } from './grid.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'neighbours.wgsl';
const buf = (s: Storage) => (s as GpuStorage).buffer;
const BM = 64; // x rows per workgroup (wgsl/neighbours.wgsl)

const SELF_FILE = 'neighbours-self.wgsl';

export function neighboursKernels(rt: WebGPURuntime): NeighboursKernels {
  const kernels: NeighboursKernels = {
    nearestNeighbor(x, y, outVal, outIdx, m, k, d, excludeSelf) {
      if (m === 0) return;
      const u = new Uniform().u32(m, k, d, excludeSelf ? 1 : 0).f32(-Infinity).u32(0, 0, 0);
      rt.dispatch('nearestNeighbor', rt.pipeline(FILE, 'nearestNeighbor'), [buf(x), buf(y), buf(outVal), buf(outIdx)],
        u.view(), grid1d(m, BM));
    },
    /**
     * With m = 1 and no candidate list this is the one-sided search (its tiled kernel is the faster
     * on a GPU); otherwise one thread per row keeps its m best (wgsl/neighbours-self.wgsl).
     */
    nearestNeighborSelf(x, outVal, outIdx, cand, k, d, m, excludeSelf) {
      if (k === 0) return;
      if (!Number.isInteger(m) || m < 1) throw new BackendError(`m = ${m} must be a positive integer`, 'nearestNeighborSelf');
      if (!cand && m === 1) {
        kernels.nearestNeighbor(x, x, outVal, outIdx, k, k, d, excludeSelf);
        return;
      }
      const listV = rt.alloc(k * m, 'f32');
      const listI = cand ? (cand as GpuStorage) : rt.alloc(k * m, 'i32');
      try {
        const u = new Uniform().u32(k, d, m, excludeSelf ? 1 : 0).f32(-Infinity).u32(0, 0, 0);
        rt.dispatch('nearestNeighborSelf', rt.pipeline(SELF_FILE, 'selfTopM'),
          [buf(x), buf(outVal), buf(outIdx), listV.buffer, listI.buffer], u.view(), grid1d(k, 64));
      } finally {
        rt.free(listV);
        if (!cand) rt.free(listI);
      }
    },
    nearestAmongCandidates(x, cand, outVal, outIdx, k, d, m) {
      if (k === 0) return;
      const u = new Uniform().u32(k, d, m, 0).f32(-Infinity).u32(0, 0, 0);
      rt.dispatch('nearestAmongCandidates', rt.pipeline(SELF_FILE, 'candidates'), [buf(x), buf(cand), buf(outVal), buf(outIdx)],
        u.view(), grid1d(k, 64));
    },
    topk(x, outVal, outIdx, rows, cols, k) {
      if (rows === 0 || k === 0) return;
      const u = new Uniform().u32(rows, cols, k, 0);
      rt.dispatch('topk', rt.pipeline(FILE, 'topk'), [buf(x), buf(outVal), buf(outIdx)], u.view(), grid1d(rows, 64));
    },
  };
  return kernels;
}
