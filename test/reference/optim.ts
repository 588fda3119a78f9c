// Naive float64 references for the optimiser family (tests only), written from PyTorch's
// torch.optim.AdamW (single-tensor path), clip_grad_norm_ and facebookresearch/dino's clip_gradients.

export interface AdamWRefParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/** One AdamW step in place on p, m, v. */
export function adamwRef(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  h: AdamWRefParams,
): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    const mHat = m[i] / bc1;
    const vHat = v[i] / bc2;
    p[i] -= (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

export function emaRef(target: Float64Array, source: ArrayLike<number>, momentum: number): void {
  for (let i = 0; i < target.length; i++) target[i] = momentum * target[i] + (1 - momentum) * source[i];
}

export function l2(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** clip_grad_norm_: returns [total norm, clipped grads]. */
export function clipGradNormRef(grads: Float64Array[], maxNorm: number): [number, Float64Array[]] {
  const total = Math.sqrt(grads.reduce((acc, g) => acc + l2(g) ** 2, 0));
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  return [total, grads.map((g) => g.map((x) => x * coef))];
}

/** dino clip_gradients: returns [per-parameter norms, clipped grads]. */
export function clipGradientsRef(grads: Float64Array[], clip: number): [number[], Float64Array[]] {
  const norms = grads.map(l2);
  return [
    norms,
    grads.map((g, i) => {
      const coef = clip / (norms[i] + 1e-6);
      return coef < 1 ? g.map((x) => x * coef) : Float64Array.from(g);
    }),
  ];
}
