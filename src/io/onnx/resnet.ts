// A protodino ResNet as ONNX nodes: bias-free Conv, BatchNormalization with the running statistics
// (the engine's eval mode; left unfolded so the graph reads like the state dict, and runtimes fold
// it themselves), Relu, the residual Add, the ImageNet stem's max-pool, and global average pooling.
import { BasicBlock, Bottleneck, type Conv2d, type ResNet } from '../../nn/resnet.js';
import type { BatchNorm } from '../../nn/batchnorm.js';
import type { Graph, Weights } from './graph.js';
import { batchNorm } from './layers.js';

function conv(g: Graph, x: string, c: Conv2d, name: string, w: Weights): string {
  const { kernel: k, stride: s, padding: p } = c;
  return g.node(
    'Conv',
    [x, g.weight(`${name}.weight`, c.weight.shape, w(c.weight))],
    {
      kernel_shape: [k, k],
      strides: [s, s],
      pads: [p, p, p, p],
    },
    name,
  );
}

/** bn(conv(x)), then + residual, then ReLU: the order of the engine's fused BatchNorm. */
function convBn(
  g: Graph,
  x: string,
  c: Conv2d,
  bn: BatchNorm,
  names: [string, string],
  w: Weights,
  fuse: { residual?: string; relu?: boolean },
): string {
  let h = batchNorm(g, conv(g, x, c, names[0], w), bn, names[1], w);
  if (fuse.residual) h = g.node('Add', [h, fuse.residual], {}, `${names[1]}.residual`);
  return fuse.relu ? g.node('Relu', [h], {}, `${names[1]}.relu`) : h;
}

/** The backbone's features [N, embedDim] of normalised images `x` [N, C, H, W]. */
export function resnetGraph(g: Graph, net: ResNet, x: string, prefix: string, w: Weights): string {
  let h = convBn(g, x, net.conv1, net.bn1, [`${prefix}conv1`, `${prefix}bn1`], w, { relu: true });
  if (net.config.stem === 'imagenet')
    h = g.node('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, `${prefix}maxpool`);
  net.stages.forEach((stage, i) =>
    stage.forEach((b, j) => {
      const p = `${prefix}layer${i + 1}.${j}.`;
      const ds = b.downsample;
      const shortcut = ds ? convBn(g, h, ds.conv, ds.bn, [`${p}downsample.0`, `${p}downsample.1`], w, {}) : h;
      if (b instanceof BasicBlock) {
        const h1 = convBn(g, h, b.conv1, b.bn1, [`${p}conv1`, `${p}bn1`], w, { relu: true });
        h = convBn(g, h1, b.conv2, b.bn2, [`${p}conv2`, `${p}bn2`], w, { residual: shortcut, relu: true });
      } else if (b instanceof Bottleneck) {
        const h1 = convBn(g, h, b.conv1, b.bn1, [`${p}conv1`, `${p}bn1`], w, { relu: true });
        const h2 = convBn(g, h1, b.conv2, b.bn2, [`${p}conv2`, `${p}bn2`], w, { relu: true });
        h = convBn(g, h2, b.conv3, b.bn3, [`${p}conv3`, `${p}bn3`], w, { residual: shortcut, relu: true });
      } else {
        throw new Error(`ONNX export: ResNet block ${p.slice(0, -1)} is neither a BasicBlock nor a Bottleneck`);
      }
    }),
  );
  const pooled = g.node('GlobalAveragePool', [h], {}, `${prefix}avgpool`);
  return g.node('Flatten', [pooled], { axis: 1 }, `${prefix}flatten`);
}
