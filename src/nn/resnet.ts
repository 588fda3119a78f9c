// ResNet backbones as torchvision builds them (v1.5: a Bottleneck strides on its 3x3 conv), with
// torchvision's state-dict names and init, and fc replaced by an identity as facebookresearch/dino
// does (`backbone.fc, backbone.head = nn.Identity(), nn.Identity()`), so DINO ResNet checkpoints
// load by name. forward() returns the globally average-pooled features.
import type { Backend } from '../backend/backend.js';
import { Module, ModuleList } from './module.js';
import { BatchNorm } from './batchnorm.js';
import { ShapeError, type Tensor } from '../tensor/tensor.js';
import { mean } from '../tensor/ops/reduce.js';
import { CONV_ALGORITHMS, conv2d, maxPool2d, type ConvAlgorithm } from '../tensor/ops/conv.js';
import { Generator } from '../tensor/ops/random.js';

export interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage; stages are named layer1, layer2, … (1 to 4 of them, each with ≥ 1 block). */
  layers: number[];
  /** Planes per stage (torchvision: 64, 128, 256, 512); a stage's output is planes × expansion. */
  widths?: number[];
  /**
   * 'imagenet': 7x7 stride-2 conv + 3x3 stride-2 max-pool (torchvision). 'cifar': one 3x3 stride-1
   * conv and no max-pool, so 28x28 or 32x32 images are not shrunk 4x before the first stage.
   */
  stem?: 'imagenet' | 'cifar';
  inChans?: number;
}

export const RESNET_PRESETS: Record<string, Omit<ResNetConfig, 'inChans'>> = {
  /**
   * Sized for a 2-core CPU on 28x28 greyscale images: one BasicBlock per stage at a quarter of
   * resnet18's widths and the CIFAR stem; 28 → 28, 14, 7, 4 across the stages, 128 features,
   * about 13 M multiply-adds per image.
   */
  resnet_cpu: { block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], stem: 'cifar' },
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
};

export type ResNetOptions = ResNetConfig | { arch: string; inChans?: number };

/** PROTODINO_CONV_ALGORITHM if set (one of CONV_ALGORITHMS), else 'auto'. */
export function defaultConvAlgorithm(): ConvAlgorithm {
  const v = process.env.PROTODINO_CONV_ALGORITHM;
  if (v === undefined || v === '') return 'auto';
  if (!CONV_ALGORITHMS.includes(v as ConvAlgorithm)) {
    throw new Error(`PROTODINO_CONV_ALGORITHM must be one of ${CONV_ALGORITHMS.join(', ')}, got '${v}'`);
  }
  return v as ConvAlgorithm;
}

/** A bias-free Conv2d with torchvision's init: kaiming_normal_(mode='fan_out', nonlinearity='relu'). */
export class Conv2d extends Module {
  readonly weight: Tensor;
  /**
   * See Conv2dOptions.algorithm; ResNet.setConvAlgorithm switches every conv of a network, and the
   * environment variable PROTODINO_CONV_ALGORITHM sets the default (to compare routes end to end).
   */
  algorithm: ConvAlgorithm = defaultConvAlgorithm();
  constructor(
    be: Backend,
    inChans: number,
    out: number,
    readonly kernel: number,
    readonly stride: number,
    readonly padding: number,
    g: Generator,
  ) {
    super(be);
    const std = Math.sqrt(2 / (out * kernel * kernel));
    this.weight = this.addParam('weight', g.randn([out, inChans, kernel, kernel], be, 0, std));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, null, { stride: this.stride, padding: this.padding, algorithm: this.algorithm });
  }
}

/** nn.Sequential(conv1x1(stride), BatchNorm2d): the projection shortcut. */
class Downsample extends ModuleList {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;
  constructor(be: Backend, inChans: number, out: number, stride: number, g: Generator) {
    super(be);
    this.conv = this.push(new Conv2d(be, inChans, out, 1, stride, 0, g));
    this.bn = this.push(new BatchNorm(be, out));
  }

  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

abstract class Block extends Module {
  downsample: Downsample | null = null;

  /** Registered last, where torchvision's blocks register it; torchvision's rule for when. */
  protected addDownsample(inplanes: number, out: number, stride: number, g: Generator): void {
    if (stride !== 1 || inplanes !== out)
      this.downsample = this.addChild('downsample', new Downsample(this.backend, inplanes, out, stride, g));
  }

  protected shortcut(x: Tensor): Tensor {
    return this.downsample ? this.downsample.forward(x) : x;
  }

  abstract forward(x: Tensor): Tensor;
}

export class BasicBlock extends Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  constructor(be: Backend, inplanes: number, planes: number, stride: number, g: Generator) {
    super(be);
    this.conv1 = this.addChild('conv1', new Conv2d(be, inplanes, planes, 3, stride, 1, g));
    this.bn1 = this.addChild('bn1', new BatchNorm(be, planes));
    this.conv2 = this.addChild('conv2', new Conv2d(be, planes, planes, 3, 1, 1, g));
    this.bn2 = this.addChild('bn2', new BatchNorm(be, planes));
    this.addDownsample(inplanes, planes, stride, g);
  }

  forward(x: Tensor): Tensor {
    const h = this.bn1.forward(this.conv1.forward(x), { relu: true });
    return this.bn2.forward(this.conv2.forward(h), { residual: this.shortcut(x), relu: true });
  }
}

export class Bottleneck extends Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  constructor(be: Backend, inplanes: number, planes: number, stride: number, g: Generator) {
    super(be);
    this.conv1 = this.addChild('conv1', new Conv2d(be, inplanes, planes, 1, 1, 0, g));
    this.bn1 = this.addChild('bn1', new BatchNorm(be, planes));
    this.conv2 = this.addChild('conv2', new Conv2d(be, planes, planes, 3, stride, 1, g));
    this.bn2 = this.addChild('bn2', new BatchNorm(be, planes));
    this.conv3 = this.addChild('conv3', new Conv2d(be, planes, planes * 4, 1, 1, 0, g));
    this.bn3 = this.addChild('bn3', new BatchNorm(be, planes * 4));
    this.addDownsample(inplanes, planes * 4, stride, g);
  }

  forward(x: Tensor): Tensor {
    const h1 = this.bn1.forward(this.conv1.forward(x), { relu: true });
    const h2 = this.bn2.forward(this.conv2.forward(h1), { relu: true });
    return this.bn3.forward(this.conv3.forward(h2), { residual: this.shortcut(x), relu: true });
  }
}

function resolve(opts: ResNetOptions): Required<ResNetConfig> {
  let cfg: ResNetConfig;
  if ('arch' in opts) {
    const preset = RESNET_PRESETS[opts.arch];
    if (!preset)
      throw new ShapeError('ResNet', `unknown arch '${opts.arch}' (known: ${Object.keys(RESNET_PRESETS).join(', ')})`);
    cfg = { ...preset, inChans: opts.inChans };
  } else {
    cfg = opts;
  }
  const full: Required<ResNetConfig> = {
    block: cfg.block,
    layers: [...cfg.layers],
    widths: [...(cfg.widths ?? [64, 128, 256, 512])],
    stem: cfg.stem ?? 'imagenet',
    inChans: cfg.inChans ?? 3,
  };
  const posInt = (v: number) => Number.isInteger(v) && v >= 1;
  if (full.block !== 'basic' && full.block !== 'bottleneck')
    throw new ShapeError('ResNet', `unknown block '${String(full.block)}'`);
  if (full.stem !== 'imagenet' && full.stem !== 'cifar')
    throw new ShapeError('ResNet', `unknown stem '${String(full.stem)}'`);
  if (full.layers.length < 1 || full.layers.length > 4 || !full.layers.every(posInt)) {
    throw new ShapeError('ResNet', `layers must be 1 to 4 block counts ≥ 1, got [${full.layers}]`);
  }
  if (full.widths.length < full.layers.length || !full.widths.every(posInt)) {
    throw new ShapeError(
      'ResNet',
      `widths [${full.widths}] must give a positive integer for each of the ${full.layers.length} stages`,
    );
  }
  full.widths = full.widths.slice(0, full.layers.length);
  if (!posInt(full.inChans)) throw new ShapeError('ResNet', `inChans must be a positive integer, got ${full.inChans}`);
  return full;
}

export class ResNet extends Module {
  readonly config: Required<ResNetConfig>;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  /** layer1 … layerN, each a ModuleList of blocks (nn.Sequential's names 0, 1, …). */
  readonly stages: Block[][] = [];
  private readonly outDim: number;

  constructor(be: Backend, opts: ResNetOptions, g: Generator) {
    super(be);
    this.config = resolve(opts);
    const { block, layers, widths, stem, inChans } = this.config;
    const Kind = block === 'basic' ? BasicBlock : Bottleneck;
    let inplanes = widths[0];
    this.conv1 = this.addChild(
      'conv1',
      stem === 'imagenet'
        ? new Conv2d(be, inChans, inplanes, 7, 2, 3, g)
        : new Conv2d(be, inChans, inplanes, 3, 1, 1, g),
    );
    this.bn1 = this.addChild('bn1', new BatchNorm(be, inplanes));
    layers.forEach((n, i) => {
      const list = this.addChild(`layer${i + 1}`, new ModuleList(be));
      const planes = widths[i],
        out = planes * Kind.expansion;
      const blocks: Block[] = [];
      for (let j = 0; j < n; j++) {
        const stride = i > 0 && j === 0 ? 2 : 1;
        blocks.push(list.push(new Kind(be, inplanes, planes, stride, g)));
        inplanes = out;
      }
      this.stages.push(blocks);
    });
    this.outDim = inplanes;
  }

  /** Runs every convolution by `algorithm` (the im2col route is kept to cross-check the direct kernels). */
  setConvAlgorithm(algorithm: ConvAlgorithm): void {
    for (const m of this.modules()) if (m instanceof Conv2d) m.algorithm = algorithm;
  }

  /** Features per image: the last stage's channels (2048 for resnet50). */
  get embedDim(): number {
    return this.outDim;
  }

  /** The last stage's feature map [B, embedDim, h, w]. */
  forwardMap(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.config.inChans) {
      throw new ShapeError('ResNet', `expects [B, ${this.config.inChans}, H, W] images, got [${x.shape}]`);
    }
    let h = this.bn1.forward(this.conv1.forward(x), { relu: true });
    if (this.config.stem === 'imagenet') h = maxPool2d(h, 3, 2, 1);
    for (const stage of this.stages) for (const b of stage) h = b.forward(h);
    return h;
  }

  /** Global average pooling of the last feature map: [B, embedDim] (fc is an identity). */
  forward(x: Tensor): Tensor {
    return mean(this.forwardMap(x), [2, 3]);
  }
}
