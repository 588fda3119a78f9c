// Naive float64 bicubic resize, written from PyTorch's upsample_bicubic2d CPU kernel (tests only):
// every output pixel sums its 4×4 neighbourhood directly, independent of the separable matrices.

const A = -0.75;

function coeffs(t: number): number[] {
  const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
}

/** area_pixel_compute_source_index (cubic) + guard_index_and_lambda. */
function source(o: number, inSize: number, outSize: number, align: boolean, scale?: number): [number, number] {
  let s: number;
  if (align) s = outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  else s = scale && scale > 0 ? 1 / scale : inSize / outSize;
  const real = align ? s * o : s * (o + 0.5) - 0.5;
  const idx = Math.min(Math.floor(real), inSize - 1);
  return [idx, Math.min(Math.max(real - idx, 0), 1)];
}

/** x [planes, h, w] → [planes, outH, outW]. */
export function bicubicRef(
  x: ArrayLike<number>,
  planes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
  align = false,
  scales?: [number, number],
): Float64Array {
  const out = new Float64Array(planes * outH * outW);
  const clamp = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < outH; oy++) {
      const [iy, ty] = source(oy, h, outH, align, scales?.[0]);
      const wy = coeffs(ty);
      for (let ox = 0; ox < outW; ox++) {
        const [ix, tx] = source(ox, w, outW, align, scales?.[1]);
        const wx = coeffs(tx);
        let s = 0;
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 4; j++) {
            s += wy[i] * wx[j] * x[(p * h + clamp(iy - 1 + i, h)) * w + clamp(ix - 1 + j, w)];
          }
        }
        out[(p * outH + oy) * outW + ox] = s;
      }
    }
  }
  return out;
}
