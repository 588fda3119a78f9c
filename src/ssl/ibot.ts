// iBOT's masked image modelling loss (Zhou et al., ICLR 2022) on top of DINO: the student sees its
// global crops with blocks of patches replaced by a learnable mask token and predicts, at each masked
// patch, the teacher's centred, sharpened distribution over the K prototypes for the unmasked crop.
// The head is shared with the CLS objective (iBOT's --shared_head); the patch center is its own.
import { ShapeError, noGrad, type Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { mul, sub } from '../tensor/ops/elementwise.js';
import { mean, sum } from '../tensor/ops/reduce.js';
import { crossEntropy, softmax } from '../tensor/ops/softmax.js';
import { emaUpdate } from '../tensor/ops/optim.js';
import { mulberry32 } from '../util/mulberry32.js';

/** The masks' generator (mulberry32): masks depend only on (seed, step, micro-batch), so resume is exact. */
export function maskRng(seed: number, step: number, micro: number): () => number {
  return mulberry32(
    Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(micro + 7, 0x27d4eb2f),
  );
}

export interface MaskOptions {
  /** Probability that a crop is masked at all. */
  prob: number;
  /** The target masked fraction is uniform in [min, max]. */
  ratio: [number, number];
}

/**
 * Blockwise masking as iBOT's (BEiT's) MaskingGenerator: rectangles of area uniform in
 * [max((min(H, W)/3)², 1), remaining budget] and aspect ratio log-uniform in [0.3, 1/0.3] are placed
 * at random until the target fraction of the H×W grid is covered; a placement is kept when it adds
 * at least one and at most `remaining` new patches; after 10 failed placements the crop stops short.
 * Returns one [H·W] 0/1 mask (1 = masked, row-major).
 */
export function blockMask(rng: () => number, H: number, W: number, ratio: number): Uint8Array {
  const mask = new Uint8Array(H * W);
  const target = Math.round(ratio * H * W);
  const minArea = Math.max(1, Math.floor(Math.min(H, W) / 3) ** 2);
  const logAspect = [Math.log(0.3), Math.log(1 / 0.3)];
  let count = 0;
  while (count < target) {
    const budget = target - count;
    let delta = 0;
    for (let attempt = 0; attempt < 10 && delta === 0; attempt++) {
      const area = minArea + rng() * Math.max(0, budget - minArea);
      const aspect = Math.exp(logAspect[0] + rng() * (logAspect[1] - logAspect[0]));
      const h = Math.max(1, Math.round(Math.sqrt(area * aspect)));
      const w = Math.max(1, Math.round(Math.sqrt(area / aspect)));
      if (h > H || w > W) continue;
      const top = Math.floor(rng() * (H - h + 1)),
        left = Math.floor(rng() * (W - w + 1));
      let fresh = 0;
      for (let i = top; i < top + h; i++) for (let j = left; j < left + w; j++) fresh += 1 - mask[i * W + j];
      if (fresh === 0 || fresh > budget) continue;
      for (let i = top; i < top + h; i++) for (let j = left; j < left + w; j++) mask[i * W + j] = 1;
      delta = fresh;
    }
    if (delta === 0) break;
    count += delta;
  }
  return mask;
}

/**
 * Masks for `crops` crops of an H×W patch grid, concatenated [crops·H·W]: each crop is masked with
 * probability opts.prob, at a fraction drawn uniformly from opts.ratio.
 */
export function cropMasks(rng: () => number, crops: number, H: number, W: number, opts: MaskOptions): Uint8Array {
  const out = new Uint8Array(crops * H * W);
  for (let c = 0; c < crops; c++) {
    const masked = rng() < opts.prob;
    const r = opts.ratio[0] + rng() * (opts.ratio[1] - opts.ratio[0]);
    if (masked) out.set(blockMask(rng, H, W, r), c * H * W);
  }
  return out;
}

/**
 * Per-patch weights that turn Σ w·CE into iBOT's patch loss: for each crop (an image's view),
 * the CE summed over its masked patches over max(1, #masked), averaged over the B images of a view,
 * then over the 2 views. masks: [2B·N] crop-major.
 */
export function patchLossWeights(masks: Uint8Array, crops: number, N: number, views = 2): Float32Array {
  if (masks.length !== crops * N)
    throw new ShapeError('patchLossWeights', `${masks.length} mask values are not ${crops} crops of ${N} patches`);
  const B = crops / views;
  const w = new Float32Array(masks.length);
  for (let c = 0; c < crops; c++) {
    let n = 0;
    for (let i = 0; i < N; i++) n += masks[c * N + i];
    const scale = 1 / (Math.max(1, n) * B * views);
    for (let i = 0; i < N; i++) w[c * N + i] = masks[c * N + i] * scale;
  }
  return w;
}

export interface IbotLossOptions {
  studentTemp: number;
  teacherTemp: number;
}

/**
 * iBOT's masked patch loss. studentPatch, teacherPatch: [2B·N, K] logits (crop-major, the student's
 * on masked crops, the teacher's on the same crops unmasked); center2: [1, K]; masks: [2B·N] 0/1.
 */
export function ibotPatchLoss(
  studentPatch: Tensor,
  teacherPatch: Tensor,
  center2: Tensor,
  masks: Uint8Array,
  N: number,
  opts: IbotLossOptions,
): Tensor {
  const [R, K] = studentPatch.shape;
  if (
    studentPatch.rank !== 2 ||
    teacherPatch.rank !== 2 ||
    teacherPatch.shape[0] !== R ||
    teacherPatch.shape[1] !== K ||
    R !== masks.length
  ) {
    throw new ShapeError(
      'ibotPatchLoss',
      `student [${studentPatch.shape}], teacher [${teacherPatch.shape}] and ${masks.length} mask values disagree`,
    );
  }
  const targets = noGrad(() => softmax(mul(sub(teacherPatch, center2), 1 / opts.teacherTemp), -1));
  const ce = crossEntropy(targets, mul(studentPatch, 1 / opts.studentTemp), -1); // [2B·N]
  const w = tensor(patchLossWeights(masks, R / N, N), [R], studentPatch.backend);
  return sum(mul(ce, w));
}

/** center2 ← m·center2 + (1 − m)·mean of the teacher's patch logits over every patch and crop. */
export function updatePatchCenter(center2: Tensor, teacherPatch: Tensor, momentum: number): void {
  noGrad(() => {
    const batchCenter = mean(teacherPatch, 0, true);
    emaUpdate([center2], [batchCenter], momentum);
    batchCenter.dispose();
  });
}
