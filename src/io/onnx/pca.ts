// The PCA backbone as ONNX nodes: flatten, centre with the fitted mean, project on the components.
import type { PCAProjection } from '../../nn/pca.js';
import type { Graph, Weights } from './graph.js';

/** The projection [N, dim] of normalised images `x` [N, C, S, S] (C·S·S = the fitted input size). */
export function pcaGraph(g: Graph, pca: PCAProjection, x: string, prefix: string, w: Weights): string {
  const { inputDim: D, dim: k } = pca;
  const flat = g.node('Flatten', [x], { axis: 1 }, `${prefix}flatten`);
  const centred = g.node('Sub', [flat, g.weight(`${prefix}mean`, [D], w(pca.mean))], {}, `${prefix}centred`);
  // Gemm with transB reads the components [dim, D] as stored: x · componentsᵀ.
  return g.node(
    'Gemm',
    [centred, g.weight(`${prefix}components`, [k, D], w(pca.components))],
    { transB: 1 },
    `${prefix}projection`,
  );
}
