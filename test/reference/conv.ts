// Naive float64 references for the conv family (tests only). Backward references scatter (the
// textbook adjoint), while the kernels gather: two formulations that must agree.
export interface Geom {
  batch: number;
  channels: number;
  height: number;
  width: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

export function geom(shape: number[], k: [number, number], s: [number, number], p: [number, number]): Geom {
  const [batch, channels, height, width] = shape;
  return {
    batch,
    channels,
    height,
    width,
    kernelH: k[0],
    kernelW: k[1],
    strideH: s[0],
    strideW: s[1],
    padH: p[0],
    padW: p[1],
    outH: Math.floor((height + 2 * p[0] - k[0]) / s[0]) + 1,
    outW: Math.floor((width + 2 * p[1] - k[1]) / s[1]) + 1,
  };
}

/** Calls f(b, c, oy, ox, ky, kx, iy, ix, inside) for every window tap, in column order. */
function taps(
  g: Geom,
  f: (b: number, c: number, oy: number, ox: number, ky: number, kx: number, xi: number, inside: boolean) => void,
): void {
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++) {
        for (let c = 0; c < g.channels; c++) {
          for (let ky = 0; ky < g.kernelH; ky++) {
            for (let kx = 0; kx < g.kernelW; kx++) {
              const iy = oy * g.strideH - g.padH + ky;
              const ix = ox * g.strideW - g.padW + kx;
              const inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
              f(b, c, oy, ox, ky, kx, inside ? ((b * g.channels + c) * g.height + iy) * g.width + ix : -1, inside);
            }
          }
        }
      }
    }
  }
}

function colIndex(g: Geom, b: number, c: number, oy: number, ox: number, ky: number, kx: number): number {
  const K = g.channels * g.kernelH * g.kernelW;
  return (b * g.outH * g.outW + oy * g.outW + ox) * K + (c * g.kernelH + ky) * g.kernelW + kx;
}

export function im2colRef(x: ArrayLike<number>, g: Geom): Float64Array {
  const out = new Float64Array(g.batch * g.outH * g.outW * g.channels * g.kernelH * g.kernelW);
  taps(g, (b, c, oy, ox, ky, kx, xi, inside) => {
    out[colIndex(g, b, c, oy, ox, ky, kx)] = inside ? x[xi] : 0;
  });
  return out;
}

export function col2imRef(col: ArrayLike<number>, g: Geom): Float64Array {
  const dx = new Float64Array(g.batch * g.channels * g.height * g.width);
  taps(g, (b, c, oy, ox, ky, kx, xi, inside) => {
    if (inside) dx[xi] += col[colIndex(g, b, c, oy, ox, ky, kx)];
  });
  return dx;
}

/** Direct convolution: x [B, C, H, W], w [O, C, kh, kw], bias [O] or null → [B, O, outH, outW]. */
export function conv2dRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  g: Geom,
  O: number,
): Float64Array {
  const out = new Float64Array(g.batch * O * g.outH * g.outW);
  const P = g.outH * g.outW;
  for (let b = 0; b < g.batch; b++) {
    for (let o = 0; o < O; o++) for (let p = 0; p < P; p++) out[(b * O + o) * P + p] = bias ? bias[o] : 0;
  }
  taps(g, (b, c, oy, ox, ky, kx, xi, inside) => {
    if (!inside) return;
    for (let o = 0; o < O; o++) {
      out[(b * O + o) * P + oy * g.outW + ox] += x[xi] * w[((o * g.channels + c) * g.kernelH + ky) * g.kernelW + kx];
    }
  });
  return out;
}

/** Max (first maximum, padding never wins) or average (count_include_pad) pooling, with argmax. */
export function poolRef(op: 'max' | 'avg', x: ArrayLike<number>, g: Geom): { out: Float64Array; argmax: Int32Array } {
  const n = g.batch * g.channels * g.outH * g.outW;
  const out = new Float64Array(n).fill(op === 'max' ? -Infinity : 0);
  const argmax = new Int32Array(n).fill(-1);
  taps(g, (b, c, oy, ox, _ky, _kx, xi, inside) => {
    const o = ((b * g.channels + c) * g.outH + oy) * g.outW + ox;
    if (!inside) return;
    if (op === 'avg') out[o] += x[xi] / (g.kernelH * g.kernelW);
    else if (x[xi] > out[o]) {
      out[o] = x[xi];
      argmax[o] = xi % (g.height * g.width);
    }
  });
  return { out, argmax };
}

export function poolGradRef(
  op: 'max' | 'avg',
  dy: ArrayLike<number>,
  argmax: ArrayLike<number>,
  g: Geom,
): Float64Array {
  const dx = new Float64Array(g.batch * g.channels * g.height * g.width);
  taps(g, (b, c, oy, ox, _ky, _kx, xi, inside) => {
    const o = ((b * g.channels + c) * g.outH + oy) * g.outW + ox;
    if (!inside) return;
    if (op === 'avg') dx[xi] += dy[o] / (g.kernelH * g.kernelW);
    else if (argmax[o] === xi % (g.height * g.width)) dx[xi] += dy[o];
  });
  return dx;
}

/** conv2d's input gradient by scattering dy through every tap (the adjoint of conv2dRef in x). */
export function conv2dGradInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, g: Geom, O: number): Float64Array {
  const dx = new Float64Array(g.batch * g.channels * g.height * g.width);
  const P = g.outH * g.outW;
  taps(g, (b, c, oy, ox, ky, kx, xi, inside) => {
    if (!inside) return;
    for (let o = 0; o < O; o++) {
      dx[xi] += dy[(b * O + o) * P + oy * g.outW + ox] * w[((o * g.channels + c) * g.kernelH + ky) * g.kernelW + kx];
    }
  });
  return dx;
}

/** conv2d's weight gradient summed over the batch: dw [O, C, kh, kw]. */
export function conv2dGradWeightRef(x: ArrayLike<number>, dy: ArrayLike<number>, g: Geom, O: number): Float64Array {
  const dw = new Float64Array(O * g.channels * g.kernelH * g.kernelW);
  const P = g.outH * g.outW;
  taps(g, (b, c, oy, ox, ky, kx, xi, inside) => {
    if (!inside) return;
    for (let o = 0; o < O; o++) {
      dw[((o * g.channels + c) * g.kernelH + ky) * g.kernelW + kx] += x[xi] * dy[(b * O + o) * P + oy * g.outW + ox];
    }
  });
  return dw;
}
