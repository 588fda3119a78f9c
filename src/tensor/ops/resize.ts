// Bicubic resize with PyTorch's semantics (F.interpolate(mode='bicubic'): a = -0.75, border
// clamping, align_corners false by default), as DINO uses to fit its position embeddings to a new
// patch grid. Separable: y = Wh · x · Wwᵀ with interpolation matrices built on the host in float64,
// applied with matmul, so the backward is matmul's.
import { ShapeError, Tensor } from '../tensor.js';
import { tensor } from '../create.js';
import { assertDType, numel } from '../shape.js';
import { matmul } from './matmul.js';
import { reshape } from './view.js';

export interface ResizeOptions {
  /** Corner pixels' centres map onto each other (PyTorch align_corners=True). */
  alignCorners?: boolean;
  /** PyTorch's scale_factor (h, w) when the size came from one: the source coordinates then use
   *  1/scale instead of in/out (DINO's interpolate_pos_encoding passes one). */
  scales?: [number, number];
}

const A = -0.75;
const cubic1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| ≤ 1
const cubic2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2

/** Row-major [outSize, inSize] matrix whose row o holds the four bicubic taps of output o. */
export function bicubicMatrix(inSize: number, outSize: number, alignCorners: boolean, scale?: number): Float64Array {
  const w = new Float64Array(outSize * inSize);
  let s: number;
  if (alignCorners) s = outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  else s = scale !== undefined && scale > 0 ? 1 / scale : inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    // No clamp at 0 for cubic (area_pixel_compute_source_index); index and t as guard_index_and_lambda.
    const src = alignCorners ? s * o : s * (o + 0.5) - 0.5;
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const t = Math.min(Math.max(src - i0, 0), 1);
    const taps = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
    for (let j = 0; j < 4; j++) {
      const idx = Math.min(Math.max(i0 - 1 + j, 0), inSize - 1);
      w[o * inSize + idx] += taps[j];
    }
  }
  return w;
}

/** Resizes the last two dims of x ([..., H, W], e.g. NCHW) to [outH, outW]. */
export function resizeBicubic(x: Tensor, size: [number, number], opts: ResizeOptions = {}): Tensor {
  assertDType('resizeBicubic', x, 'f32');
  if (x.rank < 2) throw new ShapeError('resizeBicubic', `needs at least 2 dims [..., H, W], got [${x.shape}]`);
  const [outH, outW] = size;
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new ShapeError('resizeBicubic', `output size must be two positive integers, got [${size}]`);
  }
  const [h, w] = x.shape.slice(-2);
  if (h < 1 || w < 1) throw new ShapeError('resizeBicubic', `cannot resize an empty image [${x.shape}]`);
  const lead = x.shape.slice(0, -2);
  const align = opts.alignCorners ?? false;
  const wh = tensor(bicubicMatrix(h, outH, align, opts.scales?.[0]), [outH, h], x.backend);
  const ww = tensor(bicubicMatrix(w, outW, align, opts.scales?.[1]), [outW, w], x.backend);
  // Columns first ([N·H, W]·Wwᵀ), then rows with Wh shared across the batch.
  const flat = reshape(x, [numel(lead) * h, w]);
  const cols = matmul(flat, ww, { transB: true });
  const stacked = reshape(cols, [numel(lead), h, outW]);
  const rows = matmul(wh, stacked);
  const out = reshape(rows, [...lead, outH, outW]);
  // Without a graph nothing reads the intermediates again; with one, the enclosing tidy frees them.
  if (!out.node) for (const t of [wh, ww, flat, cols, stacked, rows]) t.dispose();
  return out;
}
