import { BackendError, type Storage, type NeighboursKernels } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { loopBudget, loopRanges } from './loop-budget.js';

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
  ['j0', 'u32'],
  ['j1', 'u32'],
  ['_p0', 'u32'],
]);
const TOPK = paramLayout(FILE, 'TopK', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['k', 'u32'],
  ['j0', 'u32'],
  ['j1', 'u32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
  ['_p2', 'u32'],
]);
const SELF = paramLayout(SELF_FILE, 'SelfParams', [
  ['k', 'u32'],
  ['d', 'u32'],
  ['m', 'u32'],
  ['excludeSelf', 'u32'],
  ['negInf', 'f32'],
  ['j0', 'u32'],
  ['j1', 'u32'],
  ['_p0', 'u32'],
]);
const SYM = paramLayout(SELF_FILE, 'Sym', [
  ['k', 'u32'],
  ['d', 'u32'],
  ['excludeSelf', 'u32'],
  ['negInf', 'f32'],
  ['s0', 'u32'],
  ['strip', 'u32'],
  ['chunk', 'u32'],
  ['chunks', 'u32'],
]);
const CAND = paramLayout(SELF_FILE, 'Cand', [
  ['k', 'u32'],
  ['d', 'u32'],
  ['m', 'u32'],
  ['_p', 'u32'],
  ['negInf', 'f32'],
  ['c0', 'u32'],
  ['c1', 'u32'],
  ['_p0', 'u32'],
]);

/** Column row blocks per symTiles workgroup at most: gives a GPU workgroups enough. */
const SYM_CHUNK = 16;
/** Entries (value and index, 8 bytes) of symTiles' column partials: strip · k ≤ this, 16 MiB. */
const SYM_PARTIALS = 1 << 21;

let forcedSymmetric: boolean | null = null;
let forcedLayout: { strip?: number; chunk?: number } = {};
/**
 * Forces the exact self search onto the symmetric kernels (true), the one-sided one (false) or the
 * choice (null), and the symmetric kernels' strip and chunk (in row blocks; small ones let small
 * tests cross strips and chunks); for tests and benchmarks.
 */
export function forceSymmetricSelfSearch(v: boolean | null, layout: { strip?: number; chunk?: number } = {}): void {
  forcedSymmetric = v;
  forcedLayout = layout;
}

/**
 * Whether nearestNeighborSelf with m = 1 and no candidate list computes each pair once (symTiles):
 * on a software adapter, where it is 3.3-3.9x faster from K = 1024 to 65536 and even at K = 64
 * (wgsl/neighbours-self.wgsl); not yet measured on a hardware GPU, which keeps the one-sided kernel.
 */
export function symmetricSelfSearch(software: boolean): boolean {
  return forcedSymmetric ?? software;
}

/** The symmetric exact search (wgsl/neighbours-self.wgsl symTiles, symMerge): a pair of dispatches per strip of row blocks. */
function symmetricSearch(
  rt: WebGPURuntime,
  x: Storage,
  outVal: Storage,
  outIdx: Storage,
  k: number,
  d: number,
  excludeSelf: boolean,
): void {
  const nb = Math.ceil(k / BM);
  const strip = Math.min(nb, forcedLayout.strip ?? Math.max(1, Math.floor(SYM_PARTIALS / k)));
  const chunk = forcedLayout.chunk ?? Math.max(1, Math.min(SYM_CHUNK, Math.floor(loopBudget() / Math.max(d, 1))));
  const chunks = Math.ceil(nb / chunk);
  const colV = rt.alloc(strip * k, 'f32'),
    colI = rt.alloc(strip * k, 'i32'),
    rowV = rt.alloc(chunks * strip * BM, 'f32'),
    rowI = rt.alloc(chunks * strip * BM, 'i32');
  try {
    for (let s0 = 0; s0 < nb; s0 += strip) {
      const u = packParams(SYM, {
        k,
        d,
        excludeSelf: excludeSelf ? 1 : 0,
        negInf: -Infinity,
        s0,
        strip,
        chunk,
        chunks,
      });
      rt.dispatch(
        'nearestNeighborSelf',
        rt.pipeline(SELF_FILE, 'symTiles'),
        [buf(x), colV.buffer, colI.buffer, rowV.buffer, rowI.buffer],
        u,
        [chunks - Math.floor(s0 / chunk), Math.min(strip, nb - s0)],
      );
      rt.dispatch(
        'nearestNeighborSelf',
        rt.pipeline(SELF_FILE, 'symMerge'),
        [colV.buffer, colI.buffer, rowV.buffer, rowI.buffer, buf(outVal), buf(outIdx)],
        u,
        grid1d(k - s0 * BM, 64),
      );
    }
  } finally {
    for (const s of [colV, colI, rowV, rowI]) rt.free(s);
  }
}

export function neighboursKernels(rt: WebGPURuntime): NeighboursKernels {
  const kernels: NeighboursKernels = {
    nearestNeighbor(x, y, outVal, outIdx, m, k, d, excludeSelf) {
      if (m === 0) return;
      // Per row block of y: ceil(d / 16) steps of 16 features, plus the loop's own step.
      for (const [j0, j1] of loopRanges(k, Math.ceil(d / 16) * 17 + 1, BM)) {
        const u = packParams(NN, {
          m,
          k,
          d,
          excludeSelf: excludeSelf ? 1 : 0,
          negInf: -Infinity,
          j0,
          j1,
        });
        rt.dispatch(
          'nearestNeighbor',
          rt.pipeline(FILE, 'nearestNeighbor'),
          [buf(x), buf(y), buf(outVal), buf(outIdx)],
          u,
          grid1d(m, BM),
        );
      }
    },
    /**
     * With m = 1 and no candidate list this is the exact search: each pair once on a software
     * adapter (symmetricSearch), the one-sided tiled kernel on a GPU; otherwise one thread per row
     * keeps its m best (wgsl/neighbours-self.wgsl).
     */
    nearestNeighborSelf(x, outVal, outIdx, cand, k, d, m, excludeSelf) {
      if (k === 0) return;
      if (!Number.isInteger(m) || m < 1)
        throw new BackendError(`m = ${m} must be a positive integer`, 'nearestNeighborSelf');
      if (!cand && m === 1) {
        if (symmetricSelfSearch(rt.software)) symmetricSearch(rt, x, outVal, outIdx, k, d, excludeSelf);
        else kernels.nearestNeighbor(x, x, outVal, outIdx, k, k, d, excludeSelf);
        return;
      }
      const listV = rt.alloc(k * m, 'f32');
      const listI = cand ? (cand as GpuStorage) : rt.alloc(k * m, 'i32');
      try {
        // Per row j: dot8's steps, the insertion's at most m, and the loop's own; the list's setup 2m.
        for (const [j0, j1] of loopRanges(k, Math.floor(d / 8) + (d % 8) + m + 2, 1, 2 * m)) {
          const u = packParams(SELF, { k, d, m, excludeSelf: excludeSelf ? 1 : 0, negInf: -Infinity, j0, j1 });
          rt.dispatch(
            'nearestNeighborSelf',
            rt.pipeline(SELF_FILE, 'selfTopM'),
            [buf(x), buf(outVal), buf(outIdx), listV.buffer, listI.buffer],
            u,
            grid1d(k, 64),
          );
        }
      } finally {
        rt.free(listV);
        if (!cand) rt.free(listI);
      }
    },
    nearestAmongCandidates(x, cand, outVal, outIdx, k, d, m) {
      if (k === 0) return;
      for (const [c0, c1] of loopRanges(m, d + 1)) {
        const u = packParams(CAND, { k, d, m, negInf: -Infinity, c0, c1 });
        rt.dispatch(
          'nearestAmongCandidates',
          rt.pipeline(SELF_FILE, 'candidates'),
          [buf(x), buf(cand), buf(outVal), buf(outIdx)],
          u,
          grid1d(k, 64),
        );
      }
    },
    topk(x, outVal, outIdx, rows, cols, k) {
      if (rows === 0 || k === 0) return;
      // Per column: the insertion's at most k steps and the loop's own.
      for (const [j0, j1] of loopRanges(cols, k + 2)) {
        const u = packParams(TOPK, { rows, cols, k, j0, j1 });
        rt.dispatch('topk', rt.pipeline(FILE, 'topk'), [buf(x), buf(outVal), buf(outIdx)], u, grid1d(rows, 64));
      }
    },
  };
  return kernels;
}
