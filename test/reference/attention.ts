// Naive f64 multi-head self-attention on a fused qkv [B, T, 3, H, dh] → [B, T, H, dh].
export function attentionRef(
  qkv: Float64Array,
  B: number,
  T: number,
  H: number,
  dh: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(B * T * H * dh);
  const at = (b: number, t: number, part: number, h: number, c: number) =>
    qkv[(((b * T + t) * 3 + part) * H + h) * dh + c];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T);
        let m = -Infinity;
        for (let j = 0; j < T; j++) {
          let d = 0;
          for (let c = 0; c < dh; c++) d += at(b, i, 0, h, c) * at(b, j, 1, h, c);
          s[j] = scale * d;
          m = Math.max(m, s[j]);
        }
        let z = 0;
        for (let j = 0; j < T; j++) z += s[j] = Math.exp(s[j] - m);
        for (let c = 0; c < dh; c++) {
          let o = 0;
          for (let j = 0; j < T; j++) o += (s[j] / z) * at(b, j, 2, h, c);
          out[((b * T + i) * H + h) * dh + c] = o;
        }
      }
    }
  }
  return out;
}

/** Naive f64 softmax(scale·q·kᵀ) per head of a fused qkv [B, T, 3, H, dh] → [B, H, T, T]. */
export function attentionProbsRef(
  qkv: Float64Array,
  B: number,
  T: number,
  H: number,
  dh: number,
  scale: number,
): Float64Array {
  const probs = new Float64Array(B * H * T * T);
  const at = (b: number, t: number, part: number, h: number, c: number) =>
    qkv[(((b * T + t) * 3 + part) * H + h) * dh + c];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const row = ((b * H + h) * T + i) * T;
        let m = -Infinity;
        for (let j = 0; j < T; j++) {
          let d = 0;
          for (let c = 0; c < dh; c++) d += at(b, i, 0, h, c) * at(b, j, 1, h, c);
          probs[row + j] = scale * d;
          m = Math.max(m, probs[row + j]);
        }
        let z = 0;
        for (let j = 0; j < T; j++) z += probs[row + j] = Math.exp(probs[row + j] - m);
        for (let j = 0; j < T; j++) probs[row + j] /= z;
      }
    }
  }
  return probs;
}

/**
 * Naive f64 gradient of attention with respect to qkv, given dout [B, T, H, dh]: dV = Pᵀ·dO,
 * dS = P ⊙ (dO·Vᵀ − rowsum(P ⊙ dO·Vᵀ)), dQ = scale·dS·K, dK = scale·dSᵀ·Q, in qkv's layout.
 */
export function attentionGradRef(
  qkv: Float64Array,
  dout: Float64Array,
  B: number,
  T: number,
  H: number,
  dh: number,
  scale: number,
): Float64Array {
  const probs = attentionProbsRef(qkv, B, T, H, dh, scale);
  const dqkv = new Float64Array(qkv.length);
  const ix = (b: number, t: number, part: number, h: number) => (((b * T + t) * 3 + part) * H + h) * dh;
  const ox = (b: number, t: number, h: number) => ((b * T + t) * H + h) * dh;
  const ds = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const row = ((b * H + h) * T + i) * T;
        let dot = 0;
        for (let j = 0; j < T; j++) {
          let dp = 0;
          for (let c = 0; c < dh; c++) dp += dout[ox(b, i, h) + c] * qkv[ix(b, j, 2, h) + c];
          ds[j] = dp;
          dot += probs[row + j] * dp;
        }
        for (let j = 0; j < T; j++) {
          const p = probs[row + j];
          const s = p * (ds[j] - dot);
          for (let c = 0; c < dh; c++) {
            dqkv[ix(b, i, 0, h) + c] += scale * s * qkv[ix(b, j, 1, h) + c];
            dqkv[ix(b, j, 1, h) + c] += scale * s * qkv[ix(b, i, 0, h) + c];
            dqkv[ix(b, j, 2, h) + c] += p * dout[ox(b, i, h) + c];
          }
        }
      }
    }
  }
  return dqkv;
}
