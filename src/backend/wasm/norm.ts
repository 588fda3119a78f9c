import type { NormKernels, Storage } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// The AS kernels take address 0 for an absent gamma/beta/dgamma/dbeta.
const opt = (s: Storage | null) => (s ? ptr(s) : 0);
const grain = (cols: number) => Math.max(1, Math.ceil(16384 / Math.max(1, cols)));

const channelGrain = (n: number, hw: number) => Math.max(1, Math.ceil(16384 / Math.max(1, n * hw)));

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
    layerNormGrad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols) {
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
      rt.run('layerNormGrad', [ptr(x), opt(gamma), ptr(mean), ptr(rstd), ptr(dy), ptr(dx), cols], rows, grain(cols));
    },
    batchNormStats(x, mean, variance, n, C, hw) {
      rt.run('batchNormStats', [ptr(x), ptr(mean), ptr(variance), n, C, hw], C, channelGrain(n, hw));
    },
    batchNormApply(x, mean, rstd, gamma, beta, residual, out, n, C, hw, relu) {
      rt.run(
        'batchNormApply',
        [ptr(x), ptr(mean), ptr(rstd), opt(gamma), opt(beta), opt(residual), ptr(out), n, C, hw, relu ? 1 : 0],
        C,
        channelGrain(n, hw),
      );
    },
    batchNormGrad(x, y, mean, rstd, gamma, dy, dx, dgamma, dbeta, dres, n, C, hw, relu, batchStats) {
      rt.run(
        'batchNormGrad',
        [
          ptr(x),
          relu ? ptr(y!) : 0,
          ptr(mean),
          ptr(rstd),
          opt(gamma),
          ptr(dy),
          ptr(dx),
          opt(dgamma),
          opt(dbeta),
          opt(dres),
          n,
          C,
          hw,
          relu ? 1 : 0,
          batchStats ? 1 : 0,
        ],
        C,
        channelGrain(n, hw),
      );
    },
  };
}
