// The DINO head as ONNX nodes: the MLP (Gemm, eval-mode BatchNorm, erf GELU), L2 normalisation, and
// the prototype layer with its effective weight g·v/‖v‖ (and, for DINO-vMF, each prototype's log
// normaliser as a bias), both computed by the engine before export so the graph holds constants.
import { DINOHead, PrototypeHead } from '../../nn/head.js';
import { BatchNorm } from '../../nn/batchnorm.js';
import type { Graph, Weights } from './graph.js';
import { batchNorm, gelu, l2Normalize, linear } from './layers.js';

/** The prototype layer's constants: weight [K, bottleneck], and the vMF log-normalisers [K] or null. */
export interface Prototypes {
  weight: Float32Array;
  shape: [number, number];
  bias: Float32Array | null;
}

/** Logits [N, K] of backbone features `x` [N, D]. */
export function headGraph(
  g: Graph,
  head: DINOHead | PrototypeHead,
  x: string,
  prefix: string,
  protos: Prototypes,
  w: Weights,
): string {
  let h = x;
  if (head instanceof DINOHead) {
    const mlpName = (i: number) => (head.layers.length === 1 ? `${prefix}mlp` : `${prefix}mlp.${i}`);
    head.layers.forEach((m, i) => {
      if (m === 'gelu') h = gelu(g, h, `${mlpName(i)}.gelu`);
      else if (m instanceof BatchNorm) h = batchNorm(g, h, m, mlpName(i), w);
      else h = linear(g, h, m, mlpName(i), w);
    });
  }
  h = l2Normalize(g, h, `${prefix}normalized`);
  const inputs = [h, g.weight(`${prefix}last_layer.weight`, protos.shape, protos.weight)];
  if (protos.bias) inputs.push(g.weight(`${prefix}last_layer.vmf_log_normaliser`, [protos.shape[0]], protos.bias));
  return g.node('Gemm', inputs, { transB: 1 }, `${prefix}last_layer`);
}
