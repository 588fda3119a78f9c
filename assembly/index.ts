// The kernel module: every family's exports, compiled once with plain SIMD and once with relaxed SIMD.
export { heapBase } from './common';
export * from './elementwise';
export * from './reduce';
export * from './optim';
// softmax.ts also exports softmaxRow, an @inline helper of attention.ts, not a kernel.
export { softmax, softmaxGrad } from './softmax';
export * from './norm';
export * from './matmul';
export * from './conv';
export * from './random';
export * from './layout';
export * from './neighbours';
export * from './neighbours-self';
export * from './peak';
export * from './attention';
export * from './convgemm';
// winograd.ts also exports its tile block and the inline row transforms for winograd-fused.ts, not kernels.
export { winogradBlocking, winogradWeights, winogradInput, winogradOutput, winogradOutputGrad, winogradWeightsGrad } from './winograd';
// winograd-fused.ts also exports inputRows, an @inline helper of winograd-fused-grad.ts, not a kernel.
export { winogradPackU, winogradFusedSlot, winogradFused } from './winograd-fused';
export * from './winograd-fused-grad';
