// Naive float64 references for the norm family (tests only), row-wise over [rows, cols].

export interface LayerNormRef {
  out: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

export function layerNormRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  rows: number,
  cols: number,
  eps: number,
): LayerNormRef {
  const out = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[r * cols + c];
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      out[i] = (x[i] - mu) * rs * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
    }
  }
  return { out, mean, rstd };
}

/** Gradients of layer norm for output gradient dy, from first principles (not the kernels' formula). */
export function layerNormGradRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number> | null,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { mean, rstd } = layerNormRef(x, null, null, rows, cols, eps);
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const mu = mean[r],
      rs = rstd[r];
    const g = Array.from({ length: cols }, (_, c) => dy[r * cols + c] * (gamma ? gamma[c] : 1));
    const xh = Array.from({ length: cols }, (_, c) => (x[r * cols + c] - mu) * rs);
    // ∂x̂_c/∂x_j = rs (δ_cj − 1/n − x̂_c x̂_j / n)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += g[c] * rs * ((c === j ? 1 : 0) - 1 / cols - (xh[c] * xh[j]) / cols);
      dx[r * cols + j] = s;
    }
    for (let c = 0; c < cols; c++) {
      dgamma[c] += dy[r * cols + c] * xh[c];
      dbeta[c] += dy[r * cols + c];
    }
  }
  return { dx, dgamma, dbeta };
}

/** x / max(‖x‖₂, eps) over the last axis. */
export function l2NormalizeRef(x: ArrayLike<number>, rows: number, cols: number, eps = 1e-12): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[r * cols + c] ** 2;
    const d = Math.max(Math.sqrt(s), eps);
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] / d;
  }
  return out;
}

/** w = g · v / ‖v‖ with the norm over each row of v [rows, cols] (torch weight_norm, dim = 0). */
export function weightNormRef(v: ArrayLike<number>, g: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const w = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += v[r * cols + c] ** 2;
    const k = g[r] / Math.sqrt(s);
    for (let c = 0; c < cols; c++) w[r * cols + c] = v[r * cols + c] * k;
  }
  return w;
}

/** sum = x + a (a's aRows rows repeated down x's rows) and the layer norm of sum. */
export function addLayerNormRef(
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  aRows: number,
  gamma: ArrayLike<number> | null,
  beta: ArrayLike<number> | null,
  rows: number,
  cols: number,
  eps: number,
): LayerNormRef & { sum: Float64Array } {
  const sum = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) sum[r * cols + c] = x[r * cols + c] + a[(r % aRows) * cols + c];
  return { sum, ...layerNormRef(sum, gamma, beta, rows, cols, eps) };
}
