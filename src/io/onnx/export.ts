// A protodino checkpoint's backbone (and optionally its DINO head) as an ONNX model that needs
// nothing beside it: it takes images in [0, 1] as [N, C, H, W], applies the training mean/std
// itself, and outputs what `protodino embed` writes for the same images (the backbone features,
// unnormalised: the ViT's CLS token after the final norm, the ResNet's pooled map, the PCA
// projection). The network is rebuilt and loaded exactly as embed rebuilds it, so a checkpoint embed
// refuses is refused here too, and the graph is written from those modules.
import { readFileSync } from 'node:fs';
import type { Backend } from '../../backend/backend.js';
import { createBackend } from '../../backend/index.js';
import { channelStats, type ChannelStats } from '../../data/index.js';
import { PCAProjection } from '../../nn/pca.js';
import { ResNet } from '../../nn/resnet.js';
import { VisionTransformer } from '../../nn/vit.js';
import { prototypeNorms, vmfLogNormaliser } from '../../ssl/vmf.js';
import { noGrad, tidy, type Tensor } from '../../tensor/tensor.js';
import type { DinoNetwork } from '../../train/network.js';
import {
  checkpointStats,
  networkFromCheckpoint,
  readRunCheckpoint,
  trainingImages,
  type RunCheckpoint,
} from '../../train/run-data.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { packagePath } from '../../util/paths.js';
import { Graph, tensorInfo, type Weights } from './graph.js';
import { headGraph, type Prototypes } from './head.js';
import { pcaGraph } from './pca.js';
import { encodeModel } from './proto.js';
import { resnetGraph } from './resnet.js';
import { vitGraph } from './vit.js';

export interface OnnxExportOptions {
  /** Also output the DINO head's logits [N, K] ('logits'). */
  withHead?: boolean;
  which?: 'teacher' | 'student';
  /** The backend the network is rebuilt on (default: a wasm backend created and destroyed here). */
  backend?: Backend;
}

export interface OnnxExport {
  bytes: Uint8Array;
  input: { name: string; shape: (number | string)[] };
  outputs: { name: string; shape: (number | string)[] }[];
  mean: number[];
  std: number[];
}

export const INPUT = 'images';
export const FEATURES = 'features';
export const LOGITS = 'logits';

/** The image channels the checkpoint's backbone was built for, read from its first weight. */
function checkpointChannels(run: RunCheckpoint, which: string): number {
  const { cfg, ck, path } = run;
  const need = (name: string) => {
    const t = ck.tensors.get(`${which}.backbone.${name}`);
    if (!t)
      throw new Error(`export: ${path} has no ${which}.backbone.${name}; it is not a complete ${cfg.arch} checkpoint`);
    return t;
  };
  if (cfg.arch === 'pca') {
    const d = need('mean').shape[0];
    const c = d / cfg.global_crops_size ** 2;
    if (!Number.isInteger(c) || c < 1)
      throw new Error(`export: ${path}'s PCA mean has ${d} values, not C·${cfg.global_crops_size}² for any C`);
    return c;
  }
  const w = need(cfg.arch.startsWith('resnet') ? 'conv1.weight' : 'patch_embed.proj.weight');
  if (w.shape.length !== 4) throw new Error(`export: ${path}'s first convolution weight is [${w.shape}], not 4-d`);
  return w.shape[1];
}

/** The normalisation training used: stored in the checkpoint, or recomputed as embed recomputes it. */
async function trainingStats(run: RunCheckpoint): Promise<ChannelStats> {
  return checkpointStats(run.ck) ?? channelStats(await trainingImages(run.cfg));
}

async function hostWeights(net: DinoNetwork): Promise<Weights> {
  const host = new Map<Tensor, Float32Array>();
  for (const t of net.stateDict().values()) host.set(t, (await t.data()) as Float32Array);
  return (t) => {
    const v = host.get(t);
    if (!v) throw new Error(`ONNX export: ${t.name ?? 'a tensor'} is not in the network's state dict`);
    return v;
  };
}

/** The prototype layer as the engine applies it: g·v/‖v‖, plus the vMF log-normalisers for --vmf. */
async function prototypes(net: DinoNetwork): Promise<Prototypes> {
  const ll = net.head.last_layer;
  const [w, bias] = noGrad(() =>
    tidy(() => {
      const weight = ll.weight();
      return [weight, ll.vmf ? vmfLogNormaliser(prototypeNorms(weight), weight.shape[1]) : null] as const;
    }),
  );
  try {
    const [K, p] = w.shape;
    return {
      weight: (await w.data()) as Float32Array,
      shape: [K, p],
      bias: bias ? ((await bias.data()) as Float32Array) : null,
    };
  } finally {
    w.dispose();
    bias?.dispose();
  }
}

function producerVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}

/** Where a network came from, for the model's description and metadata. */
export interface OnnxSource {
  arch: string;
  which: 'teacher' | 'student';
  dataset: string;
  path: string;
  epoch: number;
  step: number;
  /** The side the ViT's position embedding and the PCA components were fitted at. */
  cropSize: number;
}

/** The ONNX model of a checkpoint read with readRunCheckpoint. */
export async function checkpointToOnnx(run: RunCheckpoint, opts: OnnxExportOptions = {}): Promise<OnnxExport> {
  const which = opts.which ?? 'teacher';
  const { cfg, ck } = run;
  const channels = checkpointChannels(run, which);
  const stats = await trainingStats(run);
  if (stats.mean.length !== channels || stats.std.length !== channels)
    throw new Error(
      `export: the checkpoint's normalization has ${stats.mean.length} channels, its network ${channels}`,
    );
  const be = opts.backend ?? (await createBackend({ kind: 'wasm' }));
  try {
    const net = networkFromCheckpoint(run, be, channels, which);
    if (cfg.vmf) net.head.last_layer.vmf = true; // as the trainer sets it: the logits carry the log-normaliser
    try {
      const source: OnnxSource = {
        arch: cfg.arch,
        which,
        dataset: cfg.dataset,
        path: run.path,
        epoch: ck.meta.epoch,
        step: ck.meta.step,
        cropSize: cfg.global_crops_size,
      };
      return await networkToOnnx(net, source, stats, opts.withHead ?? false);
    } finally {
      net.dispose();
    }
  } finally {
    if (!opts.backend) be.destroy();
  }
}

/** The ONNX model of a live network (its backbone, and its head with `withHead`) in eval mode. */
export async function networkToOnnx(
  net: DinoNetwork,
  source: OnnxSource,
  stats: ChannelStats,
  withHead: boolean,
): Promise<OnnxExport> {
  const w = await hostWeights(net);
  const g = new Graph();
  const bb = net.backbone;
  const C = stats.mean.length;
  const S = source.cropSize;
  // A ResNet pools whatever it is given; the ViT's position embedding and PCA's components fix the size.
  const input = { name: INPUT, shape: bb instanceof ResNet ? ['N', C, 'H', 'W'] : ['N', C, S, S] };
  g.fresh(INPUT);
  // (x − mean) / std per channel, as the loaders normalise.
  const centred = g.node('Sub', [INPUT, g.weight('normalization.mean', [1, C, 1, 1], Float32Array.from(stats.mean))]);
  const x = g.node(
    'Div',
    [centred, g.weight('normalization.std', [1, C, 1, 1], Float32Array.from(stats.std))],
    {},
    'normalized',
  );
  let features: string;
  let what: string;
  if (bb instanceof ResNet) {
    features = resnetGraph(g, bb, x, 'backbone.', w);
    what = 'the globally average-pooled last feature map';
  } else if (bb instanceof VisionTransformer) {
    features = vitGraph(g, bb, x, 'backbone.', w);
    what = 'the CLS token after the final LayerNorm';
  } else if (bb instanceof PCAProjection) {
    features = pcaGraph(g, bb, x, 'backbone.', w);
    what = 'the PCA projection';
  } else {
    throw new Error(`export: --to onnx cannot export the ${source.arch} backbone`);
  }
  const D = bb instanceof PCAProjection ? bb.dim : bb.embedDim;
  features = g.node('Identity', [features], {}, FEATURES);
  const outputs = [tensorInfo(FEATURES, ['N', D], `backbone features (${what}), as protodino embed writes them`)];
  if (withHead) {
    const protos = await prototypes(net);
    g.node('Identity', [headGraph(g, net.head, features, 'head.', protos, w)], {}, LOGITS);
    outputs.push(tensorInfo(LOGITS, ['N', protos.shape[0]], 'DINO head logits against the prototypes'));
  }
  const model = g.model({
    inputs: [tensorInfo(INPUT, input.shape, 'images in [0, 1], N×C×H×W; the training mean/std are applied inside')],
    outputs,
    doc: `protodino ${source.arch} ${source.which} of ${source.path} (epoch ${source.epoch}, step ${source.step})`,
    producerVersion: producerVersion(),
    metadata: {
      arch: source.arch,
      network: source.which,
      dataset: source.dataset,
      epoch: String(source.epoch),
      step: String(source.step),
      normalization_mean: JSON.stringify(stats.mean),
      normalization_std: JSON.stringify(stats.std),
      input_range: '[0, 1]',
    },
  });
  return {
    bytes: encodeModel(model),
    input,
    outputs: outputs.map((o) => ({
      name: o.name,
      shape: o.type.tensor_type.shape.dim.map((d) => ('dim_value' in d ? d.dim_value : d.dim_param)),
    })),
    mean: stats.mean,
    std: stats.std,
  };
}

/** Reads a protodino checkpoint and writes its ONNX model to `dst` (atomically). */
export async function exportCheckpointToOnnx(
  src: string,
  dst: string,
  opts: OnnxExportOptions = {},
): Promise<OnnxExport> {
  let run: RunCheckpoint;
  try {
    run = readRunCheckpoint('export', src);
  } catch (e) {
    // The config's own checks (an arch this version does not build, say) do not name the file.
    const m = (e as Error).message;
    throw new Error(
      m.startsWith('export:') ? m : `export: ${src}: the network cannot be rebuilt from its config (${m})`,
    );
  }
  const out = await checkpointToOnnx(run, opts);
  writeFileAtomic(dst, [out.bytes]);
  return out;
}
