import type { MatmulKernels, Storage } from '../backend.js';
import { checkMatmulParams } from '../backend.js';
import { packParams, paramLayout } from './params.js';
import { reduceKernels } from './reduce.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'matmul.wgsl';
const TILE = 64; // rows and columns of C per workgroup (wgsl/matmul.wgsl)
const buf = (s: Storage) => (s as GpuStorage).buffer;
const P = paramLayout(FILE, 'P', [
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['strideA', 'u32'],
  ['strideB', 'u32'],
  ['batch0', 'u32'],
  ['tileRow0', 'u32'],
  ['tileCol0', 'u32'],
]);

export function matmulKernels(rt: WebGPURuntime): MatmulKernels {
  const { reduce } = reduceKernels(rt);
  return {
    matmul(a, b, out, p) {
      const { batch, m, n, k } = p;
      checkMatmulParams(p);
      if (batch === 0 || m === 0 || n === 0) return;
      // Row sums of op(A) are a reduction of A as stored (over k): the product's tiles do not hold whole rows.
      if (p.rowSumsA && p.transA) reduce('sum', a, p.rowSumsA, 1, k, m);
      else if (p.rowSumsA) reduce('sum', a, p.rowSumsA, m, k, 1);
      const pipeline = rt.pipeline(FILE, 'matmul', {
        TRANS_A: p.transA ? 1 : 0,
        TRANS_B: p.transB ? 1 : 0,
        HAS_BIAS: p.bias ? 1 : 0,
        GELU: p.activation === 'gelu' ? 1 : 0,
        ACCUMULATE: p.accumulate ? 1 : 0,
      });
      // Without a bias the binding is never read; any read-only buffer satisfies the layout.
      const bindings = [buf(a), buf(b), buf(p.bias ?? a), buf(out)];
      const label = `matmul(${batch}x${m}x${n}x${k}${p.transA ? ',tA' : ''}${p.transB ? ',tB' : ''})`;
      const max = Math.min(65535, rt.limits.maxComputeWorkgroupsPerDimension);
      const rowTiles = Math.ceil(m / TILE),
        colTiles = Math.ceil(n / TILE);
      for (let b0 = 0; b0 < batch; b0 += max) {
        for (let r0 = 0; r0 < rowTiles; r0 += max) {
          for (let c0 = 0; c0 < colTiles; c0 += max) {
            const u = packParams(P, {
              m,
              n,
              k,
              strideA: p.strideA,
              strideB: p.strideB,
              batch0: b0,
              tileRow0: r0,
              tileCol0: c0,
            });
            rt.dispatch(label, pipeline, bindings, u, [
              Math.min(max, colTiles - c0),
              Math.min(max, rowTiles - r0),
              Math.min(max, batch - b0),
            ]);
          }
        }
      }
    },
  };
}
