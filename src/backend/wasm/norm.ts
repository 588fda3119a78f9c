import type { NormKernels, Storage } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// The AS kernels take address 0 for an absent gamma/beta/dgamma/dbeta.
const opt = (s: Storage | null) => (s ? ptr(s) : 0);
const grain = (cols: number) => Math.max(1, Math.ceil(16384 / Math.max(1, cols)));

/** Planes per thread below which a fork-join costs more than it saves. */
const planeGrain = (hw: number) => Math.max(1, Math.ceil(16384 / Math.max(1, hw)));
/** Channels per thread below which the per-channel adds of n plane partials stay on one thread. */
const combineGrain = (n: number) => Math.max(1, Math.ceil(16384 / Math.max(1, n)));

export function normKernels(rt: WasmRuntime): NormKernels {
  return {
    layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps) {
      if (cols === 0) return;
      rt.run(
        'layerNorm',
        [ptr(x), opt(gamma), opt(beta), ptr(out), ptr(mean), ptr(rstd), cols, eps],
        rows,
        grain(cols),
      );
    },
    addLayerNorm(x, a, aRows, sum, gamma, beta, out, mean, rstd, rows, cols, eps) {
      if (cols === 0) return;
      rt.run(
        'addLayerNorm',
        [ptr(x), ptr(a), aRows, ptr(sum), opt(gamma), opt(beta), ptr(out), ptr(mean), ptr(rstd), cols, eps],
        rows,
        grain(cols),
      );
    },
    layerNormGrad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, dres = null) {
      if (cols === 0) return;
      // The parameter pass reads dy, so it runs before dx is written (dx may alias dy).
      if (dgamma || dbeta) {
        const units = rt.exports.layerNormParamUnits(cols);
        // rows = 0 still runs it: the sums come out 0, which is the overwrite the contract asks for.
        rt.run(
          'layerNormGradParams',
          [ptr(x), ptr(mean), ptr(rstd), ptr(dy), opt(dgamma), opt(dbeta), rows, cols],
          units,
          Math.max(1, Math.ceil(4096 / Math.max(1, rows))),
        );
      }
      rt.run(
        'layerNormGrad',
        [ptr(x), opt(gamma), ptr(mean), ptr(rstd), ptr(dy), ptr(dx), opt(dres), cols],
        rows,
        grain(cols),
      );
    },
    // In passes over planes (b, c), b-major, with per-plane partial sums added per channel in b
    // order: the bits of one thread summing each channel (assembly/norm.ts says why).
    batchNormStats(x, mean, variance, n, C, hw) {
      if (C === 0) return;
      const planes = n * C;
      const partial = rt.allocBytes(planes * 4);
      try {
        const g = planeGrain(hw),
          cg = combineGrain(n);
        rt.run('batchNormPlaneSums', [ptr(x), partial, hw], planes, g);
        rt.run('batchNormCombine', [partial, ptr(mean), n, C, n * hw], C, cg);
        rt.run('batchNormPlaneSqDevs', [ptr(x), ptr(mean), partial, C, hw], planes, g);
        rt.run('batchNormCombine', [partial, ptr(variance), n, C, n * hw], C, cg);
      } finally {
        rt.freeBytes(partial, planes * 4);
      }
    },
    batchNormApply(x, mean, rstd, gamma, beta, residual, out, n, C, hw, relu) {
      rt.run(
        'batchNormApply',
        [ptr(x), ptr(mean), ptr(rstd), opt(gamma), opt(beta), opt(residual), ptr(out), n, C, hw, relu ? 1 : 0],
        n * C,
        planeGrain(hw),
      );
    },
    batchNormGrad(x, y, mean, rstd, gamma, dy, dx, dgamma, dbeta, dres, n, C, hw, relu, batchStats) {
      if (C === 0) return;
      const planes = n * C;
      const partial = rt.allocBytes(planes * 8),
        sums = rt.allocBytes(C * 8);
      try {
        const g = planeGrain(hw);
        const py = relu ? ptr(y!) : 0;
        rt.run(
          'batchNormGradPlaneSums',
          [ptr(x), py, ptr(mean), ptr(rstd), ptr(dy), partial, C, hw, relu ? 1 : 0],
          planes,
          g,
        );
        rt.run('batchNormGradCombine', [partial, sums, opt(dgamma), opt(dbeta), n, C], C, combineGrain(n));
        rt.run(
          'batchNormGradApply',
          [
            ptr(x),
            py,
            ptr(mean),
            ptr(rstd),
            opt(gamma),
            ptr(dy),
            ptr(dx),
            opt(dres),
            sums,
            n,
            C,
            hw,
            relu ? 1 : 0,
            batchStats ? 1 : 0,
          ],
          planes,
          g,
        );
      } finally {
        rt.freeBytes(sums, C * 8);
        rt.freeBytes(partial, planes * 8);
      }
    },
  };
}
