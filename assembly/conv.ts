// Convolution helpers over NCHW images: im2col / col2im and 2-D pooling with its gradient.
// Column matrix: [batch, outH·outW, C·kh·kw], columns ordered c, then ky, then kx, so a PyTorch weight
// [O, C, kh, kw] flattened to [O, C·kh·kw] multiplies it directly. Every backward kernel is written
// as a gather (each input pixel sums what read it, in a fixed order): no scatter races between
// threads, and results do not depend on the thread count.
import { ldf, stf, ldi, sti } from './common';

/** Smallest o ≥ 0 with o·s ≥ t (t may be negative). */
// @ts-ignore: decorator
@inline function ceilDiv(t: i32, s: i32): i32 {
  return t <= 0 ? 0 : (t + s - 1) / s;
}

/** One row per (b, output pixel): writes its C·kh·kw column entries. */
export function im2col(x: usize, out: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  ph: i32, pw: i32, outH: i32, outW: i32, start: i32, end: i32): void {
  const P = outH * outW;
  const K = C * kh * kw;
  for (let r = start; r < end; r++) {
    const b = r / P;
    const p = r % P;
    const iy0 = (p / outW) * sh - ph;
    const ix0 = (p % outW) * sw - pw;
    // kx range whose ix lies inside the image; outside it the entries are zero padding
    const kx0 = max(0, -ix0);
    const kx1 = min(kw, W - ix0);
    let o = r * K;
    for (let c = 0; c < C; c++) {
      const plane = (b * C + c) * H;
      for (let ky = 0; ky < kh; ky++) {
        const iy = iy0 + ky;
        if (iy < 0 || iy >= H || kx0 >= kx1) {
          for (let kx = 0; kx < kw; kx++) stf(out, o + kx, 0);
        } else {
          const row = (plane + iy) * W + ix0;
          for (let kx = 0; kx < kx0; kx++) stf(out, o + kx, 0);
          for (let kx = kx0; kx < kx1; kx++) stf(out, o + kx, ldf(x, row + kx));
          for (let kx = kx1; kx < kw; kx++) stf(out, o + kx, 0);
        }
        o += kw;
      }
    }
  }
}

/** One row per (b, c, iy): each pixel sums the column entries that read it, ky then kx ascending. */
export function col2im(col: usize, dx: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  ph: i32, pw: i32, outH: i32, outW: i32, start: i32, end: i32): void {
  const P = outH * outW;
  const K = C * kh * kw;
  for (let r = start; r < end; r++) {
    const iy = r % H;
    const bc = r / H;
    const c = bc % C;
    const b = bc / C;
    const base = b * P;
    for (let ix = 0; ix < W; ix++) {
      let acc: f32 = 0;
      for (let ky = 0; ky < kh; ky++) {
        const ty = iy + ph - ky;
        if (ty < 0 || ty % sh != 0) continue;
        const oy = ty / sh;
        if (oy >= outH) continue;
        for (let kx = 0; kx < kw; kx++) {
          const tx = ix + pw - kx;
          if (tx < 0 || tx % sw != 0) continue;
          const ox = tx / sw;
          if (ox >= outW) continue;
          acc += ldf(col, (base + oy * outW + ox) * K + (c * kh + ky) * kw + kx);
        }
      }
      stf(dx, r * W + ix, acc);
    }
  }
}

/**
 * One row per (b, c, oy). op 0 max: padding never wins, the first maximum wins ties, argmax is the
 * flat index iy·W + ix in the plane (-1 only for a window with no pixel in it). op 1 avg: the sum
 * over the window divided by kh·kw (padding counts, PyTorch's count_include_pad=True).
 */
export function pool2d(x: usize, out: usize, argmax: usize, op: i32, H: i32, W: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32, start: i32, end: i32): void {
  const area = <f32>(kh * kw);
  for (let r = start; r < end; r++) {
    const oy = r % outH;
    const plane = (r / outH) * H * W;
    const y0 = oy * sh - ph;
    const ky0 = max(0, -y0), ky1 = min(kh, H - y0);
    for (let ox = 0; ox < outW; ox++) {
      const x0 = ox * sw - pw;
      const kx0 = max(0, -x0), kx1 = min(kw, W - x0);
      const o = r * outW + ox;
      if (op == 0) {
        let best: f32 = -Infinity;
        let bi = -1;
        for (let ky = ky0; ky < ky1; ky++) {
          for (let kx = kx0; kx < kx1; kx++) {
            const idx = (y0 + ky) * W + x0 + kx;
            const v = ldf(x, plane + idx);
            if (bi < 0 || v > best) {
              best = v;
              bi = idx;
            }
          }
        }
        stf(out, o, best);
        if (argmax) sti(argmax, o, bi);
      } else {
        let acc: f32 = 0;
        for (let ky = ky0; ky < ky1; ky++) {
          for (let kx = kx0; kx < kx1; kx++) acc += ldf(x, plane + (y0 + ky) * W + x0 + kx);
        }
        stf(out, o, acc / area);
      }
    }
  }
}

/** One row per (b, c, iy): each pixel sums the gradients of the windows that took it, oy then ox ascending. */
export function pool2dGrad(dy: usize, argmax: usize, dx: usize, op: i32, H: i32, W: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, outH: i32, outW: i32, start: i32, end: i32): void {
  const inv: f32 = 1.0 / <f32>(kh * kw);
  for (let r = start; r < end; r++) {
    const iy = r % H;
    const bc = r / H;
    const oplane = bc * outH * outW;
    // windows oy with oy·sh − ph ≤ iy ≤ oy·sh − ph + kh − 1
    const oy0 = ceilDiv(iy + ph - kh + 1, sh);
    const oy1 = min(outH - 1, (iy + ph) / sh);
    for (let ix = 0; ix < W; ix++) {
      const ox0 = ceilDiv(ix + pw - kw + 1, sw);
      const ox1 = min(outW - 1, (ix + pw) / sw);
      const self = iy * W + ix;
      let acc: f32 = 0;
      for (let oy = oy0; oy <= oy1; oy++) {
        for (let ox = ox0; ox <= ox1; ox++) {
          const o = oplane + oy * outW + ox;
          if (op == 0) {
            if (ldi(argmax, o) == self) acc += ldf(dy, o);
          } else {
            acc += ldf(dy, o);
          }
        }
      }
      stf(dx, r * W + ix, op == 0 ? acc : acc * inv);
    }
  }
}
