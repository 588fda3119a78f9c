import type { NormKernels, Storage } from '../backend.js';
import { grid1d } from './grid.js';
import { packParams, paramLayout } from './params.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';

const FILE = 'norm.wgsl';
/** wgsl/norm-rows.wgsl: layerNorm and layerNormGrad with one invocation per row, for software adapters. */
const ROWS_FILE = 'norm-rows.wgsl';
/** Rows longer than this keep the workgroup-per-row tree even on a software adapter (one lane would walk them alone). */
const ROW_INVOCATION_MAX_COLS = 4096;
const ROW_WG = 64; // WG in wgsl/norm-rows.wgsl
/** Most rows its parameter-gradient pass walks: llvmpipe ends an invocation's loops after about 65535 iterations. */
const ROW_INVOCATION_MAX_ROWS = 16384;
const buf = (s: Storage) => (s as GpuStorage).buffer;
const PARAM_COLS = 16; // COLS in wgsl/norm.wgsl
const PARAM_ROWL = 16; // ROWL in wgsl/norm.wgsl
const MIN_BLOCK_ROWS = 256;
const MAX_BLOCKS = 256;

/**
 * Workgroup size for a one-workgroup-per-row kernel: the power of two covering the row, between
 * 32 and 256, so short rows do not leave most invocations idle (softmax.wgsl uses it too).
 */
export function rowWorkgroup(cols: number): number {
  let wg = 32;
  while (wg < 256 && wg < cols) wg *= 2;
  return wg;
}

const P = paramLayout(FILE, 'P', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['eps', 'f32'],
  ['_pad', 'u32'],
]);
const PA = paramLayout(FILE, 'PA', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['eps', 'f32'],
  ['aRows', 'u32'],
]);
const PP = paramLayout(FILE, 'PP', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['blockRows', 'u32'],
  ['_pad', 'u32'],
]);
const P_ROWS = paramLayout(ROWS_FILE, 'P', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['eps', 'f32'],
  ['_pad', 'u32'],
]);
const PA_ROWS = paramLayout(ROWS_FILE, 'PA', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['eps', 'f32'],
  ['aRows', 'u32'],
]);
const PP_ROWS = paramLayout(ROWS_FILE, 'PP', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['blockRows', 'u32'],
  ['_pad', 'u32'],
]);
const BN = paramLayout(FILE, 'BN', [
  ['n', 'u32'],
  ['C', 'u32'],
  ['hw', 'u32'],
  ['flags', 'u32'],
]);

const uniform = (rows: number, cols: number, eps: number) => packParams(P, { rows, cols, eps });

export type LayerNormVariant = 'workgroup' | 'invocation';
export const LAYER_NORM_VARIANTS: LayerNormVariant[] = ['workgroup', 'invocation'];
let forcedLayerNorm: LayerNormVariant | null = null;
/** Runs every later WebGPU layerNorm/layerNormGrad with `variant` (null: the choice by adapter), so tests reach both. */
export function forceLayerNormVariant(variant: LayerNormVariant | null): void {
  forcedLayerNorm = variant;
}

/**
 * A workgroup per row (wgsl/norm.wgsl, a tree in workgroup memory) on a GPU; an invocation per row
 * (wgsl/norm-rows.wgsl, no barriers) on a software adapter, where barriers are the cost.
 */
export function layerNormVariant(software: boolean, cols: number): LayerNormVariant {
  if (forcedLayerNorm) return forcedLayerNorm;
  return software && cols <= ROW_INVOCATION_MAX_COLS ? 'invocation' : 'workgroup';
}
const bnUniform = (n: number, C: number, hw: number, flags: number) => packParams(BN, { n, C, hw, flags });

/**
 * Rows are cut into at most MAX_BLOCKS blocks (a rule of the shape alone) so tall inputs still
 * fill the device; with one block the column pass writes dgamma/dbeta directly.
 */
function paramGrads(
  rt: WebGPURuntime,
  x: Storage,
  mean: Storage,
  rstd: Storage,
  dy: Storage,
  dgamma: Storage | null,
  dbeta: Storage | null,
  rows: number,
  cols: number,
): void {
  const blockRows = Math.max(MIN_BLOCK_ROWS, Math.ceil(rows / MAX_BLOCKS / PARAM_ROWL) * PARAM_ROWL);
  const blocks = Math.max(1, Math.ceil(rows / blockRows));
  const flags = { HAS_DGAMMA: dgamma ? 1 : 0, HAS_DBETA: dbeta ? 1 : 0 };
  // An absent output still needs a binding, and a writable binding must not alias another one.
  const temps: GpuStorage[] = [];
  const temp = (n: number) => {
    const t = rt.alloc(n, 'f32');
    temps.push(t);
    return t;
  };
  const spareW = dgamma && dbeta ? null : temp(1);
  const outG = dgamma ?? spareW!,
    outB = dbeta ?? spareW!;
  if (layerNormVariant(rt.software, cols) === 'invocation' && rows <= ROW_INVOCATION_MAX_ROWS) {
    // One pass, an invocation per column over every row (wgsl/norm-rows.wgsl).
    rt.dispatch(
      'layerNormGradParams',
      rt.pipeline(ROWS_FILE, 'layerNormGradParams', flags),
      [buf(x), buf(mean), buf(rstd), buf(dy), buf(outG), buf(outB)],
      packParams(PP_ROWS, { rows, cols, blockRows: 0 }),
      grid1d(cols, ROW_WG),
    );
    for (const t of temps) rt.free(t);
    return;
  }
  const u = packParams(PP, { rows, cols, blockRows });
  const chunks = Math.ceil(cols / PARAM_COLS);
  const params = rt.pipeline(FILE, 'layerNormGradParams', flags);
  if (blocks === 1) {
    rt.dispatch('layerNormGradParams', params, [buf(x), buf(mean), buf(rstd), buf(dy), buf(outG), buf(outB)], u, [
      chunks,
      1,
    ]);
  } else {
    const partG = dgamma ? temp(blocks * cols) : null,
      partB = dbeta ? temp(blocks * cols) : null;
    rt.dispatch(
      'layerNormGradParams',
      params,
      [buf(x), buf(mean), buf(rstd), buf(dy), buf(partG ?? spareW!), buf(partB ?? spareW!)],
      u,
      [chunks, blocks],
    );
    const spareR = partG && partB ? null : temp(1);
    rt.dispatch(
      'layerNormGradCombine',
      rt.pipeline(FILE, 'layerNormGradCombine', flags),
      [buf(partG ?? spareR!), buf(partB ?? spareR!), buf(outG), buf(outB)],
      packParams(PP, { rows: blocks, cols, blockRows: 0 }),
      grid1d(cols),
    );
  }
  // Safe to pool at once: any later write to them is encoded after these dispatches (queue order).
  for (const t of temps) rt.free(t);
}

export function normKernels(rt: WebGPURuntime): NormKernels {
  return {
    layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps) {
      if (rows === 0 || cols === 0) return;
      // An absent gamma/beta binding is never read; x stands in (read-only bindings may alias).
      const bindings = [buf(x), buf(gamma ?? x), buf(beta ?? x), buf(out), buf(mean), buf(rstd)];
      const flags = { HAS_GAMMA: gamma ? 1 : 0, HAS_BETA: beta ? 1 : 0 };
      if (layerNormVariant(rt.software, cols) === 'invocation') {
        const pipe = rt.pipeline(ROWS_FILE, 'layerNorm', flags);
        rt.dispatch('layerNorm', pipe, bindings, packParams(P_ROWS, { rows, cols, eps }), grid1d(rows, ROW_WG));
        return;
      }
      const pipe = rt.pipeline(FILE, 'layerNorm', { WG: rowWorkgroup(cols), ...flags });
      rt.dispatch('layerNorm', pipe, bindings, uniform(rows, cols, eps), grid1d(rows, 1));
    },
    addLayerNorm(x, a, aRows, sum, gamma, beta, out, mean, rstd, rows, cols, eps) {
      if (rows === 0 || cols === 0) return;
      const bindings = [buf(x), buf(a), buf(gamma ?? x), buf(beta ?? x), buf(sum), buf(out), buf(mean), buf(rstd)];
      const flags = { HAS_GAMMA: gamma ? 1 : 0, HAS_BETA: beta ? 1 : 0 };
      // the variant layerNorm takes, so the fused kernel keeps its bits
      if (layerNormVariant(rt.software, cols) === 'invocation') {
        const pipe = rt.pipeline(ROWS_FILE, 'addLayerNorm', flags);
        rt.dispatch(
          'addLayerNorm',
          pipe,
          bindings,
          packParams(PA_ROWS, { rows, cols, eps, aRows }),
          grid1d(rows, ROW_WG),
        );
        return;
      }
      const pipe = rt.pipeline(FILE, 'addLayerNorm', { WG: rowWorkgroup(cols), ...flags });
      rt.dispatch('addLayerNorm', pipe, bindings, packParams(PA, { rows, cols, eps, aRows }), grid1d(rows, 1));
    },
    layerNormGrad(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, dres = null) {
      if (cols === 0) return;
      if (dgamma || dbeta) paramGrads(rt, x, mean, rstd, dy, dgamma, dbeta, rows, cols);
      if (rows === 0) return;
      const bindings = [buf(x), buf(gamma ?? x), buf(mean), buf(rstd), buf(dy), buf(dres ?? x), buf(dx)];
      const flags = { HAS_GAMMA: gamma ? 1 : 0, HAS_RES: dres ? 1 : 0 };
      if (layerNormVariant(rt.software, cols) === 'invocation') {
        const pipe = rt.pipeline(ROWS_FILE, 'layerNormGrad', flags);
        rt.dispatch('layerNormGrad', pipe, bindings, packParams(P_ROWS, { rows, cols, eps: 0 }), grid1d(rows, ROW_WG));
        return;
      }
      const pipe = rt.pipeline(FILE, 'layerNormGrad', { WG: rowWorkgroup(cols), ...flags });
      rt.dispatch('layerNormGrad', pipe, bindings, uniform(rows, cols, 0), grid1d(rows, 1));
    },
    // batch norm: wgsl/norm.wgsl's batchNorm*
    batchNormStats(x, mean, variance, n, C, hw) {
      if (C === 0) return;
      rt.dispatch(
        'batchNormStats',
        rt.pipeline(FILE, 'batchNormStats'),
        [buf(x), buf(mean), buf(variance)],
        bnUniform(n, C, hw, 0),
        [C, 1],
      );
    },
    batchNormApply(x, mean, rstd, gamma, beta, residual, out, n, C, hw, relu) {
      const total = n * C * hw;
      if (total === 0) return;
      const flags = (gamma ? 1 : 0) | (beta ? 2 : 0) | (residual ? 4 : 0) | (relu ? 8 : 0);
      rt.dispatch(
        'batchNormApply',
        rt.pipeline(FILE, 'batchNormApply'),
        [buf(x), buf(mean), buf(rstd), buf(gamma ?? x), buf(beta ?? x), buf(residual ?? x), buf(out)],
        bnUniform(n, C, hw, flags),
        grid1d(total),
      );
    },
    batchNormGrad(x, y, mean, rstd, gamma, dy, dx, dgamma, dbeta, dres, n, C, hw, relu, batchStats) {
      if (C === 0) return;
      const flags = (gamma ? 1 : 0) | (relu ? 8 : 0) | (batchStats ? 16 : 0) | (dres ? 32 : 0);
      const u = bnUniform(n, C, hw, flags);
      const sums = rt.alloc(2 * C, 'f32');
      const chan = rt.alloc(5 * C, 'f32');
      rt.dispatch(
        'batchNormGradSums',
        rt.pipeline(FILE, 'batchNormGradSums'),
        [buf(x), buf(y ?? x), buf(mean), buf(rstd), buf(dy), buf(sums)],
        u,
        [C, 1],
      );
      if (dgamma || dbeta) {
        rt.dispatch(
          'batchNormGradParams',
          rt.pipeline(FILE, 'batchNormGradParams'),
          [buf(sums), buf(dgamma ?? chan), buf(dbeta ?? chan)],
          bnUniform(n, C, hw, (dgamma ? 1 : 0) | (dbeta ? 2 : 0)),
          grid1d(C, 64),
        );
      }
      rt.dispatch(
        'batchNormGradChannels',
        rt.pipeline(FILE, 'batchNormGradChannels'),
        [buf(mean), buf(rstd), buf(gamma ?? mean), buf(sums), buf(chan)],
        u,
        grid1d(C, 64),
      );
      const total = n * C * hw;
      if (total > 0) {
        // an absent dres still needs a writable binding of its own (never written: flag 32 is off)
        const sink = dres ?? rt.alloc(1, 'f32');
        rt.dispatch(
          'batchNormGradInput',
          rt.pipeline(FILE, 'batchNormGradInput'),
          [buf(x), buf(y ?? x), buf(chan), buf(dy), buf(dx), buf(sink)],
          u,
          grid1d(total),
        );
        if (!dres) rt.free(sink as GpuStorage);
      }
      rt.free(sums as GpuStorage);
      rt.free(chan as GpuStorage);
    },
  };
}
