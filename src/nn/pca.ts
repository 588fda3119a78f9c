// A fixed PCA projection of the pixels (the frozen-representation experiments' cheap backbone):
// fitted once on the training images by subspace iteration with the engine's matmul.
import type { Backend } from '../backend/backend.js';
import { Module } from './module.js';
import { ShapeError, noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { sub } from '../tensor/ops/elementwise.js';
import { matmul } from '../tensor/ops/matmul.js';
import { reshape } from '../tensor/ops/view.js';

export class PCAProjection extends Module {
  readonly mean: Tensor;
  readonly components: Tensor;
  constructor(
    be: Backend,
    readonly inputDim: number,
    readonly dim: number,
  ) {
    super(be);
    if (dim > inputDim)
      throw new ShapeError('PCAProjection', `cannot project ${inputDim} inputs to ${dim} > ${inputDim} dimensions`);
    this.mean = this.addBuffer('mean', tensor(new Float32Array(inputDim), [inputDim], be));
    this.components = this.addBuffer('components', tensor(new Float32Array(dim * inputDim), [dim, inputDim], be));
  }

  /**
   * Fits the top `dim` principal directions of `data` ([n, inputDim] rows): covariance on the device,
   * then orthogonal (subspace) iteration with Gram-Schmidt on the host.
   */
  async fit(data: Float32Array, n: number, iterations = 30): Promise<void> {
    const D = this.inputDim,
      k = this.dim;
    const mean = new Float64Array(D);
    for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) mean[j] += data[i * D + j];
    for (let j = 0; j < D; j++) mean[j] /= n;
    const cov = noGrad(() =>
      tidy(() => {
        const x = tensor(data.subarray(0, n * D), [n, D], this.backend);
        const xc = sub(x, tensor(Float32Array.from(mean), [D], this.backend));
        return matmul(xc, xc, { transA: true }); // [D, D], unnormalised
      }),
    );
    const c = Float64Array.from(await cov.data());
    cov.dispose();
    // Deterministic start: a fixed pseudo-random basis.
    let q = new Float64Array(D * k);
    let s = 12345;
    for (let i = 0; i < q.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      q[i] = s / 4294967296 - 0.5;
    }
    orthonormalize(q, D, k);
    for (let it = 0; it < iterations; it++) {
      const next = new Float64Array(D * k);
      // next[r, i] = Σ_j c[i, j] q[r, j], summed in j order: both rows are read contiguously (an r-inner
      // loop strided by D ran ~10× slower), and the sums are the same as before, bit for bit.
      // Four rows of q share each load of c's row.
      let r = 0;
      for (; r + 4 <= k; r += 4) {
        const q0 = r * D,
          q1 = q0 + D,
          q2 = q1 + D,
          q3 = q2 + D;
        for (let i = 0; i < D; i++) {
          const ci = i * D;
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0;
          for (let j = 0; j < D; j++) {
            const cij = c[ci + j];
            if (cij === 0) continue;
            a0 += cij * q[q0 + j];
            a1 += cij * q[q1 + j];
            a2 += cij * q[q2 + j];
            a3 += cij * q[q3 + j];
          }
          next[q0 + i] = a0;
          next[q1 + i] = a1;
          next[q2 + i] = a2;
          next[q3 + i] = a3;
        }
      }
      for (; r < k; r++) {
        const qr = r * D;
        for (let i = 0; i < D; i++) {
          const ci = i * D;
          let acc = 0;
          for (let j = 0; j < D; j++) {
            const cij = c[ci + j];
            if (cij !== 0) acc += cij * q[qr + j];
          }
          next[qr + i] = acc;
        }
      }
      orthonormalize(next, D, k);
      q = next;
    }
    this.backend.upload(this.mean.storage, Float32Array.from(mean));
    this.backend.upload(this.components.storage, Float32Array.from(q));
  }

  /** [B, C, H, W] (or [B, D]) → [B, dim]. */
  forward(x: Tensor): Tensor {
    const flat = reshape(x, [x.shape[0], -1]);
    if (flat.shape[1] !== this.inputDim) {
      throw new ShapeError('PCAProjection', `expects ${this.inputDim} values per sample, got [${x.shape}]`);
    }
    return matmul(sub(flat, this.mean), this.components, { transB: true });
  }
}

/** Modified Gram-Schmidt on k row vectors of length D stored row-major. */
function orthonormalize(q: Float64Array, D: number, k: number): void {
  for (let r = 0; r < k; r++) {
    for (let p = 0; p < r; p++) {
      let dot = 0;
      for (let i = 0; i < D; i++) dot += q[r * D + i] * q[p * D + i];
      for (let i = 0; i < D; i++) q[r * D + i] -= dot * q[p * D + i];
    }
    let norm = 0;
    for (let i = 0; i < D; i++) norm += q[r * D + i] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < D; i++) q[r * D + i] /= norm;
  }
}
