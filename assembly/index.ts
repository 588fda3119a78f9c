// The kernel module: every family's exports, compiled once with plain SIMD and once with relaxed SIMD.
export { heapBase } from './common';
export * from './elementwise';
export * from './reduce';
