// Naive float64 references for the softmax family (tests only), row-wise over [rows, cols].

export function softmaxRef(x: ArrayLike<number>, rows: number, cols: number, log = false): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    const lse = m + Math.log(s);
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c] - lse;
      out[r * cols + c] = log ? v : Math.exp(v);
    }
  }
  return out;
}

/** The vector-Jacobian product of (log-)softmax at y = (log-)softmax(x), for output gradient dy. */
export function softmaxGradRef(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  log = false,
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += log ? dy[r * cols + c] : dy[r * cols + c] * y[r * cols + c];
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      dx[i] = log ? dy[i] - Math.exp(y[i]) * s : y[i] * (dy[i] - s);
    }
  }
  return dx;
}

/** −Σ_c p · log_softmax(z) per row. */
export function crossEntropyRef(p: ArrayLike<number>, z: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const ls = softmaxRef(z, rows, cols, true);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s -= p[r * cols + c] * ls[r * cols + c];
    out[r] = s;
  }
  return out;
}
