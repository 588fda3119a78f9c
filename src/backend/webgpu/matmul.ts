import type { MatmulKernels, MatmulParams, Storage } from '../backend.js';
import { checkMatmulParams } from '../backend.js';
import { packParams, paramLayout } from './params.js';
import { reduceKernels } from './reduce.js';
import type { GpuStorage, WebGPURuntime } from './runtime.js';
import { loopRanges } from './loop-budget.js';

/**
 * The WGSL matmul kernels: each computes a rows x 64 tile of C per workgroup, and all give
 * bitwise-equal results (one fma chain over k per output), so the choice only changes speed.
 */
const VARIANTS = {
  /**
   * wgsl/matmul.wgsl: 16x16 threads, a 4x4 block each. The previous kernel, no longer chosen (on
   * llvmpipe it lost to vec4x64 at every shape measured, 32³ to 4160x192x192, by 1.2-2.7x);
   * kept as the baseline bench/matmul.ts measures the others against.
   */
  tile64: { file: 'matmul.wgsl', rows: 64, constants: {} },
  /** wgsl/matmul-vec4.wgsl: 8x16 threads, a 4x8 block each from vec4 reads of workgroup memory. */
  vec4x64: { file: 'matmul-vec4.wgsl', rows: 64, constants: { WY: 16 } },
  /** The same kernel with 8x32 threads: half the reads of B per output of a product with many rows. */
  vec4x128: { file: 'matmul-vec4.wgsl', rows: 128, constants: { WY: 32 } },
} as const;
const COLS = 64;
/** Depth of a k slice (wgsl TK), and a slice's loop iterations at most (its 16 steps, staging, the loop's own). */
const TK = 16;
const SLICE_LOOPS = 32;
export type MatmulVariant = keyof typeof VARIANTS;
export const MATMUL_VARIANTS = Object.keys(VARIANTS) as MatmulVariant[];

const FIELDS = [
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['strideA', 'u32'],
  ['strideB', 'u32'],
  ['batch0', 'u32'],
  ['tileRow0', 'u32'],
  ['tileCol0', 'u32'],
  ['kBegin', 'u32'],
  ['kEnd', 'u32'],
  ['_p0', 'u32'],
  ['_p1', 'u32'],
] as const;
const LAYOUTS = {
  'matmul.wgsl': paramLayout('matmul.wgsl', 'P', FIELDS),
  'matmul-vec4.wgsl': paramLayout('matmul-vec4.wgsl', 'P', FIELDS),
};
const buf = (s: Storage) => (s as GpuStorage).buffer;

let forced: MatmulVariant | null = null;
/** Runs every later WebGPU matmul with `variant` (null: the choice by shape), so tests and benches reach each kernel. */
export function forceMatmulVariant(variant: MatmulVariant | null): void {
  forced = variant;
}

/**
 * The kernel a product of this shape runs. The 128-row tile from 1024 rows, where it leaves at most
 * an eighth of its rows as padding and still makes at least 8 row tiles to spread over cores. On
 * llvmpipe it is level with the 64-row tile there (-15% to +8% over two interleaved runs at
 * 1600-4160 rows and 512³, about the noise of this shared machine) and at half speed at 64 rows;
 * it is chosen for its halved reads of B per output, which count on a GPU, not measured here.
 */
export function matmulVariant(p: Pick<MatmulParams, 'batch' | 'm' | 'n' | 'k'>): MatmulVariant {
  if (forced) return forced;
  return p.m >= 1024 ? 'vec4x128' : 'vec4x64';
}

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
      const variant = matmulVariant(p);
      const { file, rows, constants } = VARIANTS[variant];
      const pipelineFor = (last: boolean, accIn: boolean) =>
        rt.pipeline(file, 'matmul', {
          ...constants,
          TRANS_A: p.transA ? 1 : 0,
          TRANS_B: p.transB ? 1 : 0,
          HAS_BIAS: last && p.bias ? 1 : 0,
          GELU: last && p.activation === 'gelu' ? 1 : 0,
          KEEP_PRE: last && p.preActivation ? 1 : 0,
          ACCUMULATE: last && p.accumulate ? 1 : 0,
          ACC_IN: accIn ? 1 : 0,
        });
      // Long k in slices, a dispatch each (./loop-budget.ts): all but the last store the raw sums
      // in a scratch buffer, which the next slice's sums start from; the last runs the epilogue.
      const slices = loopRanges(k, SLICE_LOOPS, TK);
      const scratch = slices.length > 1 ? [rt.alloc(batch * m * n, 'f32'), rt.alloc(batch * m * n, 'f32')] : [];
      // Without a bias the binding is never read; any read-only buffer satisfies the layout. Without a
      // kept pre-activation Z is never written, but a writable binding may not alias C: a spare float.
      const spare = p.preActivation ? null : rt.alloc(1, 'f32');
      const label = `matmul(${batch}x${m}x${n}x${k}${p.transA ? ',tA' : ''}${p.transB ? ',tB' : ''})`;
      const max = Math.min(65535, rt.limits.maxComputeWorkgroupsPerDimension);
      const rowTiles = Math.ceil(m / rows),
        colTiles = Math.ceil(n / COLS);
      slices.forEach(([kBegin, kEnd], s) => {
        const last = s === slices.length - 1;
        const pipeline = pipelineFor(last, s > 0);
        const target = last ? out : scratch[s % 2];
        const accIn = s > 0 ? buf(scratch[(s - 1) % 2]) : buf(a);
        const z = last && p.preActivation ? p.preActivation : spare!;
        const bindings = [buf(a), buf(b), buf(p.bias ?? a), buf(target), buf(z), accIn];
        for (let b0 = 0; b0 < batch; b0 += max) {
          for (let r0 = 0; r0 < rowTiles; r0 += max) {
            for (let c0 = 0; c0 < colTiles; c0 += max) {
              const u = packParams(LAYOUTS[file], {
                m,
                n,
                k,
                strideA: p.strideA,
                strideB: p.strideB,
                batch0: b0,
                tileRow0: r0,
                tileCol0: c0,
                kBegin,
                kEnd,
              });
              rt.dispatch(label, pipeline, bindings, u, [
                Math.min(max, colTiles - c0),
                Math.min(max, rowTiles - r0),
                Math.min(max, batch - b0),
              ]);
            }
          }
        }
      });
      for (const t of scratch) rt.free(t);
      // Safe to pool at once: any later write to it is encoded after this dispatch (queue order).
      if (spare) rt.free(spare);
    },
  };
}
