// DINO's multi-crop augmentation (facebookresearch/dino, DataAugmentationDINO): two global views and
// `localCrops` local views per image, each from its own random stream keyed by
// (seed, epoch, sample index, crop index), so a crop never depends on anything else drawn.
import type { ChannelStats } from './dataset.js';
import { Rng } from './rng.js';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  cropResize,
  gaussianBlur,
  grayscale,
  hflip,
  normalizeInto,
  randomResizedCropBox,
  solarize,
} from './transforms.js';

export interface MultiCropOptions {
  /** Output side of the two global crops (DINO: 224; 28 or 32 for Fashion-MNIST). */
  globalSize: number;
  /** Output side of the local crops (DINO: 96; 12 or 16 for Fashion-MNIST). */
  localSize: number;
  /** DINO's --local_crops_number, default 8. */
  localCrops?: number;
  /** RandomResizedCrop area range of global crops, default [0.4, 1]. */
  globalScale?: [number, number];
  /** RandomResizedCrop area range of local crops, default [0.05, 0.4]. */
  localScale?: [number, number];
  /** Aspect-ratio range of every crop, default [3/4, 4/3]. */
  ratio?: [number, number];
  flipP?: number;
  /** ColorJitter is applied with this probability (0.8) with factors drawn from the four ranges. */
  jitterP?: number;
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
  grayscaleP?: number;
  /** Blur probability of global crop 1 and 2 ([1, 0.1]) and of every local crop (0.5). */
  globalBlurP?: [number, number];
  localBlurP?: number;
  /** Gaussian sigma range in output pixels, default [0.1, 2]. */
  blurSigma?: [number, number];
  /** Solarization probability of global crop 1 and 2, default [0, 0.2]. */
  globalSolarizeP?: [number, number];
  /** Normalisation per channel; default computed from the dataset (channelStats). */
  mean?: number[];
  std?: number[];
}

export type ResolvedMultiCrop = Required<MultiCropOptions>;

/** DINO's defaults for everything except the sizes and the normalisation. */
export const DINO_DEFAULTS = {
  localCrops: 8,
  globalScale: [0.4, 1] as [number, number],
  localScale: [0.05, 0.4] as [number, number],
  ratio: [3 / 4, 4 / 3] as [number, number],
  flipP: 0.5,
  jitterP: 0.8,
  brightness: 0.4,
  contrast: 0.4,
  saturation: 0.2,
  hue: 0.1,
  grayscaleP: 0.2,
  globalBlurP: [1, 0.1] as [number, number],
  localBlurP: 0.5,
  blurSigma: [0.1, 2] as [number, number],
  globalSolarizeP: [0, 0.2] as [number, number],
};

export function resolveMultiCrop(
  opts: MultiCropOptions,
  channels: number,
  stats: () => ChannelStats,
): ResolvedMultiCrop {
  const r = { ...DINO_DEFAULTS, ...opts } as ResolvedMultiCrop;
  if (!r.mean || !r.std) {
    const s = stats();
    r.mean = r.mean ?? s.mean;
    r.std = r.std ?? s.std;
  }
  const bad = (what: string): never => {
    throw new RangeError(`multi-crop option ${what}`);
  };
  for (const k of ['globalSize', 'localSize'] as const)
    if (!(Number.isInteger(r[k]) && r[k] > 0 && r[k] <= 4096)) bad(`${k} must be an integer in [1, 4096], got ${r[k]}`);
  if (!(Number.isInteger(r.localCrops) && r.localCrops >= 0))
    bad(`localCrops must be a non-negative integer, got ${r.localCrops}`);
  for (const k of ['globalScale', 'localScale'] as const)
    if (!(r[k][0] > 0 && r[k][0] <= r[k][1] && r[k][1] <= 1)) bad(`${k} must satisfy 0 < lo <= hi <= 1, got ${r[k]}`);
  if (!(r.ratio[0] > 0 && r.ratio[0] <= r.ratio[1])) bad(`ratio must satisfy 0 < lo <= hi, got ${r.ratio}`);
  if (!(r.blurSigma[0] > 0 && r.blurSigma[0] <= r.blurSigma[1]))
    bad(`blurSigma must satisfy 0 < lo <= hi, got ${r.blurSigma}`);
  const probs = [r.flipP, r.jitterP, r.grayscaleP, r.localBlurP, ...r.globalBlurP, ...r.globalSolarizeP];
  if (!probs.every((p) => p >= 0 && p <= 1)) bad(`probabilities must lie in [0, 1], got ${probs}`);
  if (!(r.brightness >= 0 && r.contrast >= 0 && r.saturation >= 0 && r.hue >= 0 && r.hue <= 0.5))
    bad('jitter strengths must be >= 0 (hue <= 0.5)');
  if (r.mean.length !== channels || r.std.length !== channels || !r.std.every((s) => s > 0)) {
    bad(`mean/std need ${channels} values with std > 0, got mean ${r.mean} std ${r.std}`);
  }
  return r;
}

/** Applies the policy to images of one source shape; owns the working buffer of one crop. */
export class MultiCrop {
  readonly cropSizes: number[];
  private readonly work: Float32Array;

  constructor(
    readonly opts: ResolvedMultiCrop,
    private readonly src: { channels: number; height: number; width: number },
  ) {
    this.cropSizes = [opts.globalSize, opts.globalSize, ...Array<number>(opts.localCrops).fill(opts.localSize)];
    const S = Math.max(opts.globalSize, opts.localSize);
    this.work = new Float32Array(src.channels * S * S);
  }

  get cropCount(): number {
    return this.cropSizes.length;
  }

  /**
   * Writes every crop of dataset image `index` (its bytes at images[imgOff..]): crop k goes to
   * outs[k] at image slot `slot`, i.e. [slot, C, S_k, S_k] of a [B, C, S_k, S_k] array.
   */
  apply(
    images: Uint8Array,
    imgOff: number,
    index: number,
    seed: readonly [number, number],
    epoch: number,
    outs: Float32Array[],
    slot: number,
  ): void {
    const o = this.opts;
    const { channels: C, height: H, width: W } = this.src;
    const img = this.work;
    for (let k = 0; k < this.cropSizes.length; k++) {
      const S = this.cropSizes[k];
      const HW = S * S;
      const global = k < 2;
      const rng = new Rng([0xd1a0, seed[0], seed[1], epoch, index, k]);
      const rand = (): number => rng.float();
      const box = randomResizedCropBox(rand, H, W, global ? o.globalScale : o.localScale, o.ratio);
      cropResize(images, imgOff, C, H, W, box, S, img);
      if (rng.chance(o.flipP)) hflip(img, C, S, S);
      if (rng.chance(o.jitterP)) this.jitter(img, C, HW, rng);
      if (C === 3 && rng.chance(o.grayscaleP)) grayscale(img, C, HW);
      if (rng.chance(global ? o.globalBlurP[k] : o.localBlurP))
        gaussianBlur(img, C, S, S, rng.uniform(o.blurSigma[0], o.blurSigma[1]));
      if (global && rng.chance(o.globalSolarizeP[k])) solarize(img, C * HW);
      normalizeInto(img, C, HW, o.mean, o.std, outs[k], slot * C * HW);
    }
  }

  /** torchvision ColorJitter: factors drawn, then the four adjustments in a random order. */
  private jitter(img: Float32Array, C: number, HW: number, rng: Rng): void {
    const o = this.opts;
    const order = [0, 1, 2, 3];
    for (let i = 3; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const b = rng.uniform(Math.max(0, 1 - o.brightness), 1 + o.brightness);
    const c = rng.uniform(Math.max(0, 1 - o.contrast), 1 + o.contrast);
    const s = rng.uniform(Math.max(0, 1 - o.saturation), 1 + o.saturation);
    const h = rng.uniform(-o.hue, o.hue);
    for (const op of order) {
      if (op === 0 && o.brightness > 0) adjustBrightness(img, C * HW, b);
      else if (op === 1 && o.contrast > 0) adjustContrast(img, C, HW, c);
      else if (op === 2 && o.saturation > 0) adjustSaturation(img, C, HW, s);
      else if (op === 3 && o.hue > 0) adjustHue(img, C, HW, h);
    }
  }
}
