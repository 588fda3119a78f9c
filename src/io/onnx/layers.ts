// The ONNX sub-graphs of protodino's layers, each written to compute what the engine's layer
// computes: Linear, LayerNorm (eps 1e-6 in the ViT), BatchNorm in eval mode, erf GELU and L2
// normalisation with the engine's eps.
import type { BatchNorm } from '../../nn/batchnorm.js';
import type { LayerNorm, Linear } from '../../nn/layers.js';
import { float, type Graph, type Weights } from './graph.js';

/** Wᵀ of a [out, in] weight, so MatMul can take activations of any rank on the left. */
function transposed(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w[o * inp + i];
  return t;
}

/**
 * x·Wᵀ + b for x of rank ≥ 2: Gemm for [N, in] (one node, weight as stored), MatMul + Add for the
 * ViT's [N, T, in] tokens, since Gemm only takes matrices.
 */
export function linear(g: Graph, x: string, lin: Linear, name: string, w: Weights, rank = 2): string {
  const { inFeatures: inp, outFeatures: out } = lin;
  if (rank === 2) {
    const inputs = [x, g.weight(`${name}.weight`, [out, inp], w(lin.weight))];
    if (lin.bias) inputs.push(g.weight(`${name}.bias`, [out], w(lin.bias)));
    return g.node('Gemm', inputs, { transB: 1 }, name);
  }
  const y = g.node(
    'MatMul',
    [x, g.weight(`${name}.weightT`, [inp, out], transposed(w(lin.weight), out, inp))],
    {},
    name,
  );
  return lin.bias ? g.node('Add', [y, g.weight(`${name}.bias`, [out], w(lin.bias))], {}, `${name}.out`) : y;
}

/** LayerNormalization over the last axis (opset 17). */
export function layerNorm(g: Graph, x: string, ln: LayerNorm, name: string, w: Weights): string {
  return g.node(
    'LayerNormalization',
    [x, g.weight(`${name}.weight`, [ln.size], w(ln.weight)), g.weight(`${name}.bias`, [ln.size], w(ln.bias))],
    { axis: -1, epsilon: float(ln.eps) },
    name,
  );
}

/** BatchNorm with its running statistics (eval mode), over axis 1 of [N, C] or [N, C, H, W]. */
export function batchNorm(g: Graph, x: string, bn: BatchNorm, name: string, w: Weights): string {
  const C = bn.numFeatures;
  return g.node(
    'BatchNormalization',
    [
      x,
      g.weight(`${name}.weight`, [C], w(bn.weight)),
      g.weight(`${name}.bias`, [C], w(bn.bias)),
      g.weight(`${name}.running_mean`, [C], w(bn.running_mean)),
      g.weight(`${name}.running_var`, [C], w(bn.running_var)),
    ],
    { epsilon: float(bn.eps) },
    name,
  );
}

/**
 * GELU as the engine computes it, x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (the exact form, not the tanh
 * approximation); opset 17 has no Gelu operator (it came in 20), so it is built from Erf.
 */
export function gelu(g: Graph, x: string, name: string): string {
  const e = g.node(
    'Erf',
    [g.node('Mul', [x, g.scalar('gelu.rsqrt2', Math.SQRT1_2)], {}, `${name}.scaled`)],
    {},
    `${name}.erf`,
  );
  const onePlus = g.node('Add', [e, g.scalar('gelu.one', 1)], {}, `${name}.cdf2`);
  return g.node('Mul', [g.node('Mul', [x, onePlus], {}, `${name}.xcdf2`), g.scalar('gelu.half', 0.5)], {}, name);
}

/** x / max(‖x‖₂, 1e-12) along the last axis, as the engine's l2Normalize (and torch's F.normalize). */
export function l2Normalize(g: Graph, x: string, name: string): string {
  const norm = g.node('ReduceL2', [x], { axes: [-1], keepdims: 1 }, `${name}.norm`);
  const denom = g.node('Max', [norm, g.scalar('l2.eps', 1e-12)], {}, `${name}.denom`);
  return g.node('Div', [x, denom], {}, name);
}
