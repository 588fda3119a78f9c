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
