// Naive float64 references for the layout ops (tests only): plain index loops, no strides tricks.

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** Calls f(coords, flat) for every multi-index of shape in row-major order. */
function each(shape: readonly number[], f: (c: number[], flat: number) => void): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const c = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    f(c, i);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

export function permuteRef(x: Float64Array, shape: number[], perm: number[]): Float64Array {
  const outShape = perm.map((p) => shape[p]);
  const xs = stridesOf(shape);
  const out = new Float64Array(x.length);
  each(outShape, (c, i) => {
    let src = 0;
    c.forEach((v, d) => (src += v * xs[perm[d]]));
    out[i] = x[src];
  });
  return out;
}

export function sliceRef(x: Float64Array, shape: number[], begin: number[], size: number[]): Float64Array {
  const xs = stridesOf(shape);
  const out = new Float64Array(size.reduce((a, b) => a * b, 1));
  each(size, (c, i) => {
    let src = 0;
    c.forEach((v, d) => (src += (v + begin[d]) * xs[d]));
    out[i] = x[src];
  });
  return out;
}

export function concatRef(xs: Float64Array[], shapes: number[][], axis: number): Float64Array {
  const outShape = [...shapes[0]];
  outShape[axis] = shapes.reduce((a, s) => a + s[axis], 0);
  const out = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  each(outShape, (c, i) => {
    let k = 0;
    let at = c[axis];
    while (at >= shapes[k][axis]) at -= shapes[k++][axis];
    const ss = stridesOf(shapes[k]);
    let src = 0;
    c.forEach((v, d) => (src += (d === axis ? at : v) * ss[d]));
    out[i] = xs[k][src];
  });
  return out;
}

export function gatherRowsRef(x: Float64Array, cols: number, idx: ArrayLike<number>): Float64Array {
  const out = new Float64Array(idx.length * cols);
  for (let i = 0; i < idx.length; i++) for (let c = 0; c < cols; c++) out[i * cols + c] = x[idx[i] * cols + c];
  return out;
}

export function scatterAddRowsRef(
  dy: ArrayLike<number>,
  idx: ArrayLike<number>,
  rows: number,
  cols: number,
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let i = 0; i < idx.length; i++) for (let c = 0; c < cols; c++) dx[idx[i] * cols + c] += dy[i * cols + c];
  return dx;
}

/** [B, C, H, W] → [B, (H/p)(W/p), C·p·p], patch features ordered (c, i, j). */
export function patchifyRef(x: Float64Array, b: number, c: number, h: number, w: number, p: number): Float64Array {
  const nh = h / p,
    nw = w / p;
  const out = new Float64Array(x.length);
  let o = 0;
  for (let n = 0; n < b; n++) {
    for (let ph = 0; ph < nh; ph++) {
      for (let pw = 0; pw < nw; pw++) {
        for (let ch = 0; ch < c; ch++) {
          for (let i = 0; i < p; i++) {
            for (let j = 0; j < p; j++) out[o++] = x[((n * c + ch) * h + ph * p + i) * w + pw * p + j];
          }
        }
      }
    }
  }
  return out;
}

export function unpatchifyRef(x: Float64Array, b: number, c: number, h: number, w: number, p: number): Float64Array {
  const fwd = patchifyRef(Float64Array.from(x.keys()), b, c, h, w, p);
  const out = new Float64Array(x.length);
  fwd.forEach((src, i) => (out[src] = x[i]));
  return out;
}
