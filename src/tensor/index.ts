// The public tensor API: creation, memory scopes, autograd and every op family.
export { Tensor, ShapeError, tidy, keep, noGrad, isGradEnabled, liveTensors } from './tensor.js';
export type { GradNode } from './tensor.js';
export { empty, tensor, full, zeros, ones, scalar, zerosLike, onesLike } from './create.js';
export { backward, param, zeroGrad, record, needsGrad } from './autograd.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/view.js';
export * from './ops/optim.js';
export * from './ops/softmax.js';
export * from './ops/attention.js';
export * from './ops/norm.js';
export * from './ops/conv.js';
export * from './ops/random.js';
export * from './ops/batchnorm.js';
export * from './ops/layout.js';
export * from './ops/neighbours.js';
export * from './ops/matmul.js';
export * from './ops/resize.js';
