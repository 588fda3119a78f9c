// Separable triangle-filter resampling (PIL's "bilinear" resize): plain bilinear when enlarging, and
// when shrinking the filter widens with the scale so every source pixel contributes (no aliasing).

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  width: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(1, scale);
  const width = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * width);
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize, Math.ceil(center + support));
    let sum = 0;
    let k = 0;
    for (let i = lo; i < hi && k < width; i++, k++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - center) / support));
      weights[x * width + k] = w;
      sum += w;
    }
    for (let j = 0; j < k; j++) weights[x * width + j] /= sum;
    start[x] = lo;
    count[x] = k;
  }
  return { start, count, weights, width };
}

/**
 * Resizes a CHW image (u8 or float) to outH x outW into `out`. A u8 `out` gets rounded, clamped
 * values; a float one gets the filtered values as they are.
 */
export function resizeChw(
  src: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  outH: number,
  outW: number,
  out: Uint8Array | Float32Array,
): void {
  const tx = taps(W, outW);
  const ty = taps(H, outH);
  const tmp = new Float32Array(H * outW);
  const round = out instanceof Uint8Array;
  for (let c = 0; c < C; c++) {
    const base = c * H * W;
    for (let y = 0; y < H; y++) {
      const row = base + y * W;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const st = tx.start[x];
        const wo = x * tx.width;
        for (let k = 0; k < tx.count[x]; k++) s += src[row + st + k] * tx.weights[wo + k];
        tmp[y * outW + x] = s;
      }
    }
    const obase = c * outH * outW;
    for (let y = 0; y < outH; y++) {
      const st = ty.start[y];
      const wo = y * ty.width;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let k = 0; k < ty.count[y]; k++) s += tmp[(st + k) * outW + x] * ty.weights[wo + k];
        out[obase + y * outW + x] = round ? Math.min(255, Math.max(0, Math.round(s))) : s;
      }
    }
  }
}
