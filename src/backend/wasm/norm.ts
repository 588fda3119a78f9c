import type { Storage } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

// The AS kernels take address 0 for an absent gamma/beta/dgamma/dbeta.
const opt = (s: Storage | null) => (s ? ptr(s) : 0);
const grain = (cols: number) => Math.max(1, Math.ceil(16384 / Math.max(1, cols)));

export function layerNorm(rt: WasmRuntime, x: Storage, gamma: Storage | null, beta: Storage | null, out: Storage,
  mean: Storage, rstd: Storage, rows: number, cols: number, eps: number): void {
  if (cols === 0) return;
  rt.run('layerNorm', [ptr(x), opt(gamma), opt(beta), ptr(out), ptr(mean), ptr(rstd), cols, eps], rows, grain(cols));
}

export function layerNormGrad(rt: WasmRuntime, x: Storage, gamma: Storage | null, mean: Storage, rstd: Storage,
  dy: Storage, dx: Storage, dgamma: Storage | null, dbeta: Storage | null, rows: number, cols: number): void {
  if (cols === 0) return;
  // The parameter pass reads dy, so it runs before dx is written (dx may alias dy).
  if (dgamma || dbeta) {
    const units = rt.exports.layerNormParamUnits(cols) as number;
    // rows = 0 still runs it: the sums come out 0, which is the overwrite the contract asks for.
    rt.run('layerNormGradParams', [ptr(x), ptr(mean), ptr(rstd), ptr(dy), opt(dgamma), opt(dbeta), rows, cols],
      units, Math.max(1, Math.ceil(4096 / Math.max(1, rows))));
  }
  rt.run('layerNormGrad', [ptr(x), opt(gamma), ptr(mean), ptr(rstd), ptr(dy), ptr(dx), cols], rows, grain(cols));
}

const channelGrain = (n: number, hw: number) => Math.max(1, Math.ceil(16384 / Math.max(1, n * hw)));

export function batchNormStats(rt: WasmRuntime, x: Storage, mean: Storage, variance: Storage, n: number, C: number, hw: number): void {
  rt.run('batchNormStats', [ptr(x), ptr(mean), ptr(variance), n, C, hw], C, channelGrain(n, hw));
}

export function batchNormApply(rt: WasmRuntime, x: Storage, mean: Storage, rstd: Storage, gamma: Storage | null, beta: Storage | null,
  residual: Storage | null, out: Storage, n: number, C: number, hw: number, relu: boolean): void {
  rt.run('batchNormApply', [ptr(x), ptr(mean), ptr(rstd), opt(gamma), opt(beta), opt(residual), ptr(out), n, C, hw, relu ? 1 : 0],
    C, channelGrain(n, hw));
}

export function batchNormGrad(rt: WasmRuntime, x: Storage, y: Storage | null, mean: Storage, rstd: Storage, gamma: Storage | null,
  dy: Storage, dx: Storage, dgamma: Storage | null, dbeta: Storage | null, dres: Storage | null, n: number, C: number, hw: number,
  relu: boolean, batchStats: boolean): void {
  rt.run('batchNormGrad', [ptr(x), relu ? ptr(y!) : 0, ptr(mean), ptr(rstd), opt(gamma), ptr(dy), ptr(dx), opt(dgamma), opt(dbeta),
    opt(dres), n, C, hw, relu ? 1 : 0, batchStats ? 1 : 0], C, channelGrain(n, hw));
}
