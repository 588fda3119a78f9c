// The Winograd convolution and its weight gradient's products as three kernels each, written once:
// WebGPU's winogradConv and winogradConvGrad are these, and src/tensor/ops/conv.ts runs them over
// chunks of tiles where wasm's fused kernels do not pay (their buffers reused chunk after chunk).
import type { ConvParams, Kernels, Storage } from './backend.js';
import { matmulParams, WINOGRAD_VALUES, winogradColumns } from './backend.js';

type Composer = Pick<Kernels, 'winogradInput' | 'winogradOutput' | 'winogradOutputGrad' | 'matmul'>;

/**
 * The outputs of tiles [first, first + count) of the convolution p with transformed filters u
 * [36][outChannels][channels]: winogradInput into v, the 36 products into m (each at least
 * [36][channels or outChannels][winogradColumns(count)]), winogradOutput into out.
 */
export function composedWinogradConv(
  k: Composer,
  x: Storage,
  u: Storage,
  out: Storage,
  p: ConvParams,
  first: number,
  count: number,
  v: Storage,
  m: Storage,
): void {
  const O = p.outChannels,
    C = p.channels,
    np = winogradColumns(count);
  k.winogradInput(x, v, p, first, count);
  k.matmul(u, v, m, matmulParams({ batch: WINOGRAD_VALUES, m: O, n: np, k: C, strideA: O * C, strideB: C * np }));
  k.winogradOutput(m, out, p, first, count);
}

/**
 * du [36][outChannels][channels] = (du if accumulate) + Σ over tiles [first, first + count) of
 * dM_ξ·V_ξᵀ: winogradInput into v, winogradOutputGrad of dy into dm, one transposed product whose
 * outputs each sum the tiles in order.
 */
export function composedWinogradConvGrad(
  k: Composer,
  x: Storage,
  dy: Storage,
  du: Storage,
  p: ConvParams,
  first: number,
  count: number,
  accumulate: boolean,
  v: Storage,
  dm: Storage,
): void {
  const O = p.outChannels,
    C = p.channels,
    np = winogradColumns(count);
  k.winogradInput(x, v, p, first, count);
  k.winogradOutputGrad(dy, dm, p, first, count);
  const mp = { batch: WINOGRAD_VALUES, m: O, n: C, k: np, transB: true, strideA: O * np, strideB: C * np, accumulate };
  k.matmul(dm, v, du, matmulParams(mp));
}
