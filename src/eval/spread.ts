// How spread the prototypes are, as a picture can show it: the unit prototypes projected onto their
// top two principal axes, and the histogram of the angles between every pair of them. A head
// collapsed into a few tight groups puts a large share of its pairs near 0° and its projection into a
// few dense spots; a healthy one in D dimensions has its pairs spread around 90°.
//
// The K(K − 1)/2 cosines are computed as matmul tiles of at most maxTileElements, each read back and
// binned before the next, so memory stays O(tile + K·D) for any K. The PCA is a D × D covariance on
// the host and two-vector orthogonal iteration on it.
import { noGrad, ShapeError, type Tensor } from '../tensor/tensor.js';
import { l2Normalize } from '../tensor/ops/norm.js';
import { slice } from '../tensor/ops/layout.js';
import { matmul } from '../tensor/ops/matmul.js';
import type { Backend } from '../backend/backend.js';
import { asMatrix, positiveInt, type HostMatrix } from './common.js';

export interface PrototypeSpreadOptions {
  /** Runs a host matrix on this backend. */
  backend?: Backend;
  /** Angle bins over [0°, 180°] (default 90: 2° each). */
  bins?: number;
  /** Most cosines computed and read back at once (default 2^22). */
  maxTileElements?: number;
}

export interface PrototypeSpread {
  prototypes: number;
  dim: number;
  /**
   * Each unit prototype, less their mean, on the two principal axes (largest variance first; each
   * axis signed so its largest-magnitude entry is positive), and the share of the total variance
   * along each axis.
   */
  projection: { x: Float32Array; y: Float32Array; explained: [number, number] };
  /** Every unordered pair's angle in degrees: counts per bin, bins edges[b] ≤ θ < edges[b + 1]. */
  angles: { edges: Float64Array; counts: Float64Array; pairs: number };
}

export async function prototypeSpread(
  prototypes: Tensor | HostMatrix,
  opts: PrototypeSpreadOptions = {},
): Promise<PrototypeSpread> {
  const op = 'prototypeSpread';
  const bins = positiveInt(op, 'bins', opts.bins ?? 90);
  const maxTile = positiveInt(op, 'maxTileElements', opts.maxTileElements ?? 1 << 22);
  const { t: raw, owned } = asMatrix(op, prototypes, opts.backend);
  const [K, D] = raw.shape;
  const toFree: Tensor[] = owned ? [raw] : [];
  try {
    if (K < 2) throw new ShapeError(op, `needs at least two prototypes, got ${K}`);
    const x = noGrad(() => l2Normalize(raw, 1));
    toFree.push(x);
    const unit = (await x.data()) as Float32Array;
    const edges = Float64Array.from({ length: bins + 1 }, (_, b) => (180 * b) / bins);
    const counts = new Float64Array(bins);
    const perDegree = bins / 180,
      toDegrees = 180 / Math.PI;
    const B = Math.max(1, Math.min(256, Math.floor(Math.sqrt(maxTile)))),
      C = Math.max(B, Math.floor(maxTile / B));
    for (let b0 = 0; b0 < K; b0 += B) {
      const rows = Math.min(B, K - b0);
      const xr = noGrad(() => slice(x, [b0, 0], [rows, D]));
      try {
        // Only columns j > i of row i: from the block's own first row on.
        for (let c0 = b0; c0 < K; c0 += C) {
          const cols = Math.min(C, K - c0);
          const tileT = noGrad(() => {
            const xc = slice(x, [c0, 0], [cols, D]);
            const m = matmul(xr, xc, { transB: true });
            xc.dispose();
            return m;
          });
          let tile: Float32Array;
          try {
            tile = (await tileT.data()) as Float32Array;
          } finally {
            tileT.dispose();
          }
          for (let r = 0; r < rows; r++) {
            const i = b0 + r,
              off = r * cols;
            for (let jj = Math.max(0, i + 1 - c0); jj < cols; jj++) {
              const c = Math.min(1, Math.max(-1, tile[off + jj]));
              counts[Math.min(bins - 1, Math.floor(Math.acos(c) * toDegrees * perDegree))]++;
            }
          }
        }
      } finally {
        xr.dispose();
      }
    }
    return {
      prototypes: K,
      dim: D,
      projection: principalPlane(unit, K, D),
      angles: { edges, counts, pairs: (K * (K - 1)) / 2 },
    };
  } finally {
    for (const t of toFree) t.dispose();
  }
}

/** The rows of `u` [K, D], centred, on their top two principal axes. */
export function principalPlane(u: Float32Array, K: number, D: number): PrototypeSpread['projection'] {
  const mean = new Float64Array(D);
  for (let k = 0; k < K; k++) for (let d = 0; d < D; d++) mean[d] += u[k * D + d];
  for (let d = 0; d < D; d++) mean[d] /= K;
  const cov = new Float64Array(D * D);
  const row = new Float64Array(D);
  for (let k = 0; k < K; k++) {
    for (let d = 0; d < D; d++) row[d] = u[k * D + d] - mean[d];
    for (let a = 0; a < D; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      const o = a * D;
      for (let b = a; b < D; b++) cov[o + b] += ra * row[b];
    }
  }
  let trace = 0;
  for (let a = 0; a < D; a++) {
    for (let b = a; b < D; b++) cov[b * D + a] = cov[a * D + b] /= K;
    trace += cov[a * D + a];
  }
  const [v1, v2, l1, l2] = topTwo(cov, D);
  const x = new Float32Array(K),
    y = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let p = 0,
      q = 0;
    for (let d = 0; d < D; d++) {
      const c = u[k * D + d] - mean[d];
      p += c * v1[d];
      q += c * v2[d];
    }
    x[k] = p;
    y[k] = q;
  }
  return { x, y, explained: trace > 0 ? [l1 / trace, l2 / trace] : [0, 0] };
}

const MAX_ITERATIONS = 1000;

/**
 * The two leading eigenpairs of the symmetric D × D matrix `a`: orthogonal iteration on two vectors
 * from a fixed start, then the 2 × 2 Rayleigh–Ritz step that orders and separates them. Near-equal
 * eigenvalues converge slowly, but then any vector of their span shows the same spread.
 */
function topTwo(a: Float64Array, D: number): [Float64Array, Float64Array, number, number] {
  if (D === 1) return [Float64Array.of(1), Float64Array.of(0), a[0], 0];
  // A fixed start with no special direction, so no eigenvector is missed by symmetry.
  let v: Float64Array[] = [new Float64Array(D), new Float64Array(D)];
  for (let d = 0; d < D; d++) {
    v[0][d] = Math.sin(1.3 * d + 0.7) + 0.01;
    v[1][d] = Math.cos(2.9 * d + 0.3);
  }
  orthonormalize(v[0], v[1]);
  let prev = [NaN, NaN];
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    const w = v.map((x) => apply(a, x, D));
    const rq = [dot(v[0], w[0]), dot(v[1], w[1])];
    orthonormalize(w[0], w[1]);
    v = w;
    const scale = Math.max(Math.abs(rq[0]), 1e-300);
    if (Math.abs(rq[0] - prev[0]) <= 1e-13 * scale && Math.abs(rq[1] - prev[1]) <= 1e-13 * scale) break;
    prev = rq;
  }
  const av = v.map((x) => apply(a, x, D));
  const h00 = dot(v[0], av[0]),
    h01 = dot(v[0], av[1]),
    h11 = dot(v[1], av[1]);
  // Eigenvectors of [[h00, h01], [h01, h11]]: the rotation by θ with tan 2θ = 2 h01 / (h00 − h11).
  const theta = 0.5 * Math.atan2(2 * h01, h00 - h11);
  const c = Math.cos(theta),
    s = Math.sin(theta);
  const e1 = new Float64Array(D),
    e2 = new Float64Array(D);
  for (let d = 0; d < D; d++) {
    e1[d] = c * v[0][d] + s * v[1][d];
    e2[d] = -s * v[0][d] + c * v[1][d];
  }
  const l1 = c * c * h00 + 2 * c * s * h01 + s * s * h11,
    l2 = s * s * h00 - 2 * c * s * h01 + c * c * h11;
  const out: [Float64Array, Float64Array, number, number] = l1 >= l2 ? [e1, e2, l1, l2] : [e2, e1, l2, l1];
  signByLargest(out[0]);
  signByLargest(out[1]);
  return out;
}

function apply(a: Float64Array, x: Float64Array, D: number): Float64Array {
  const y = new Float64Array(D);
  for (let r = 0; r < D; r++) {
    let s = 0;
    const o = r * D;
    for (let c = 0; c < D; c++) s += a[o + c] * x[c];
    y[r] = s;
  }
  return y;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Gram–Schmidt on two vectors in place; a vector that vanishes (a matrix of rank below two) is
 * replaced by a unit vector orthogonal to the other, so the pair stays a basis.
 */
function orthonormalize(a: Float64Array, b: Float64Array): void {
  if (!normalize(a)) {
    a.fill(0);
    a[0] = 1;
  }
  const p = dot(a, b);
  for (let i = 0; i < b.length; i++) b[i] -= p * a[i];
  if (normalize(b)) return;
  // The coordinate axis least along `a`, made orthogonal to it.
  let m = 0;
  for (let i = 1; i < a.length; i++) if (Math.abs(a[i]) < Math.abs(a[m])) m = i;
  b.fill(0);
  b[m] = 1;
  const q = a[m];
  for (let i = 0; i < b.length; i++) b[i] -= q * a[i];
  normalize(b);
}

function normalize(a: Float64Array): boolean {
  const n = Math.sqrt(dot(a, a));
  if (!(n > 1e-150)) return false;
  for (let i = 0; i < a.length; i++) a[i] /= n;
  return true;
}

function signByLargest(a: Float64Array): void {
  let m = 0;
  for (let i = 1; i < a.length; i++) if (Math.abs(a[i]) > Math.abs(a[m])) m = i;
  if (a[m] < 0) for (let i = 0; i < a.length; i++) a[i] = -a[i];
}
