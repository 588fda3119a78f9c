// Naive float64 references for the matmul family (tests only).
import { gelu } from './elementwise.js';

export interface MatmulRefParams {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Elements between batch matrices; 0 shares one matrix. Defaults to contiguous. */
  strideA?: number;
  strideB?: number;
  bias?: ArrayLike<number>;
  gelu?: boolean;
  /** Initial output (the result is added to it), for accumulate. */
  init?: ArrayLike<number>;
}

/** out[b, i, j] = act(init + Σ_q op(A)[i, q]·op(B)[q, j] + bias[j]), as [batch, m, n]. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, p: MatmulRefParams): Float64Array {
  const { batch, m, n, k } = p;
  const sa = p.strideA ?? m * k,
    sb = p.strideB ?? k * n;
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = a[t * sa + (p.transA ? q * m + i : i * k + q)];
          const bv = b[t * sb + (p.transB ? j * k + q : q * n + j)];
          s += av * bv;
        }
        const o = (t * m + i) * n + j;
        if (p.init) s += p.init[o];
        if (p.bias) s += p.bias[j];
        out[o] = p.gelu ? gelu(s) : s;
      }
    }
  }
  return out;
}

/** y = act(x·Wᵀ + b) with W [out, in], x [rows, in]. */
export function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  rows: number,
  inF: number,
  outF: number,
  act: boolean,
): Float64Array {
  return matmulRef(x, w, { batch: 1, m: rows, n: outF, k: inF, transB: true, bias, gelu: act });
}
