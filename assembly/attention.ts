// Multi-head self-attention in one pass per (image, head), for the short sequences of small ViTs
// (50 tokens of 16 dims at vit_cpu): QKᵀ, softmax and ·V as separate batched products paid for
// packing, edge tiles and three round trips through memory, and the head split/merge as copies.
// Here q, k, v are read in place from the qkv projection's output [batch, tokens, 3, heads, dh]
// and the output is written as [batch, tokens, heads, dh], the layout the output projection reads.
// A unit of work is one (image, head); threads split units, and a unit's result does not depend
// on the thread count. Within a unit every product goes through one 4×8 register-tiled kernel
// (as in matmul.ts) that reads its left operand as scalars at any two strides, so rows, columns
// and transposes of q, k, v, the probabilities and dS are all read in place; only Kᵀ (or Vᵀ) is
// packed, [dh][tokens rounded up to 8], so a row of scores is 8 keys per step.
import { madd } from './common';
import { softmaxRow } from './softmax';

// @ts-ignore: decorator
@inline function addr(p: usize, i: i32): usize { return p + (<usize>i << 2); }

// @ts-ignore: decorator
@inline function round8(n: i32): i32 { return (n + 7) & ~7; }

/** Floats of one thread's scratch slot: packed Kᵀ/Vᵀ [dh][tp], a score block (4 rows forward, dS's T backward) of tp and a 4×8 tile. */
export function attentionSlotFloats(tokens: i32, dh: i32): i32 {
  const tp = round8(tokens);
  return dh * tp + max(4, tokens) * tp + 32;
}

/**
 * tile[r][0..8) = Σ_{t<n} A[r][t]·B[t][0..8) for r < 4, where A[r][t] is the float at ar[r] + t·at
 * and B[t] the 8 contiguous floats at b + t·bt (strides in floats).
 */
// @ts-ignore: decorator
@inline function kernel4x8(a0: usize, a1: usize, a2: usize, a3: usize, at: i32, b: usize, bt: i32, n: i32, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const sa = <usize>at << 2, sb = <usize>bt << 2;
  let pa: usize = 0, pb = b;
  for (let t = 0; t < n; t++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let x = v128.load32_splat(a0 + pa);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1 + pa);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2 + pa);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3 + pa);
    c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
    pa += sa;
    pb += sb;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
}

/** kernel4x8 for 4 columns. */
// @ts-ignore: decorator
@inline function kernel4x4(a0: usize, a1: usize, a2: usize, a3: usize, at: i32, b: usize, bt: i32, n: i32, tile: usize): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const sa = <usize>at << 2, sb = <usize>bt << 2;
  let pa: usize = 0, pb = b;
  for (let t = 0; t < n; t++) {
    const b0 = v128.load(pb);
    c0 = madd(v128.load32_splat(a0 + pa), b0, c0);
    c1 = madd(v128.load32_splat(a1 + pa), b0, c1);
    c2 = madd(v128.load32_splat(a2 + pa), b0, c2);
    c3 = madd(v128.load32_splat(a3 + pa), b0, c3);
    pa += sa;
    pb += sb;
  }
  v128.store(tile, c0); v128.store(tile, c1, 32); v128.store(tile, c2, 64); v128.store(tile, c3, 96);
}

/**
 * D[r][c] = s·Σ_{t<n} A[r][t]·B[t][c] for r < rows (1…4) and c < cols, with A[r][t] at
 * a + r·ar + t·at, B[t][c] at b + t·bt + c and D[r][c] at d + r·dr + c (floats). Rows past `rows`
 * reread row 0 (never stored) so the kernels need no branches.
 */
function block(a: usize, ar: i32, at: i32, rows: i32, b: usize, bt: i32, cols: i32, n: i32, d: usize, dr: i32, s: f32,
  tile: usize): void {
  const a0 = a, a1 = addr(a, rows > 1 ? ar : 0), a2 = addr(a, rows > 2 ? 2 * ar : 0), a3 = addr(a, rows > 3 ? 3 * ar : 0);
  let c0 = 0;
  for (; c0 + 8 <= cols; c0 += 8) {
    kernel4x8(a0, a1, a2, a3, at, addr(b, c0), bt, n, tile);
    for (let r = 0; r < rows; r++) {
      const dst = addr(d, r * dr + c0), src = addr(tile, r * 8);
      v128.store(dst, f32x4.mul(v128.load(src), f32x4.splat(s)));
      v128.store(dst, f32x4.mul(v128.load(src, 16), f32x4.splat(s)), 16);
    }
  }
  for (; c0 + 4 <= cols; c0 += 4) {
    kernel4x4(a0, a1, a2, a3, at, addr(b, c0), bt, n, tile);
    for (let r = 0; r < rows; r++) v128.store(addr(d, r * dr + c0), f32x4.mul(v128.load(addr(tile, r * 8)), f32x4.splat(s)));
  }
  for (; c0 < cols; c0++) {
    for (let r = 0; r < rows; r++) {
      let acc: f32 = 0;
      for (let t = 0; t < n; t++) acc += load<f32>(addr(a, r * ar + t * at)) * load<f32>(addr(b, t * bt + c0));
      store<f32>(addr(d, r * dr + c0), s * acc);
    }
  }
}

/** Packs the [tokens, dh] rows at src (row stride `stride` floats) transposed into dst [dh][tp], zero-padded. */
function packT(src: usize, stride: i32, tokens: i32, dh: i32, tp: i32, dst: usize): void {
  for (let c = 0; c < dh; c++) {
    const row = addr(dst, c * tp);
    for (let j = 0; j < tokens; j++) store<f32>(addr(row, j), load<f32>(addr(src, j * stride + c)));
    for (let j = tokens; j < tp; j++) store<f32>(addr(row, j), 0);
  }
}

/** A thread's scratch slot, claimed once per call from the counter at scratch[0]. */
// @ts-ignore: decorator
@inline function claimSlot(scratch: usize, tokens: i32, dh: i32): usize {
  return scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * (<usize>attentionSlotFloats(tokens, dh) << 2);
}

/**
 * probs[b, h, i, :] = softmax_j(scale · q_i·k_j) and out[b, i, h, :] = Σ_j probs[b, h, i, j]·v_j
 * for units u = b·heads + h in [start, end). scratch: an i32 slot counter, then one slot per thread.
 */
export function attention(qkv: usize, out: usize, probs: usize, tokens: i32, heads: i32, dh: i32, scale: f32,
  scratch: usize, start: i32, end: i32): void {
  const tp = round8(tokens);
  const slot = claimSlot(scratch, tokens, dh);
  const kT = slot, sc = addr(slot, dh * tp), tile = addr(sc, max(4, tokens) * tp);
  const dim = heads * dh, ts = 3 * dim;
  for (let u = start; u < end; u++) {
    const b = u / heads, h = u % heads;
    const q = addr(qkv, b * tokens * ts + h * dh), k = addr(q, dim), v = addr(q, 2 * dim);
    packT(k, ts, tokens, dh, tp, kT);
    for (let i0 = 0; i0 < tokens; i0 += 4) {
      const rows = min(4, tokens - i0);
      block(addr(q, i0 * ts), ts, 1, rows, kT, tp, tp, dh, sc, tp, scale, tile);
      // The probabilities go straight to probs, and the weighted sum of values reads them there.
      const pr = addr(probs, (u * tokens + i0) * tokens);
      for (let r = 0; r < rows; r++) softmaxRow(addr(sc, r * tp), addr(pr, r * tokens), tokens);
      block(pr, tokens, 1, rows, v, ts, dh, tokens, addr(out, ((b * tokens + i0) * heads + h) * dh), dim, 1, tile);
    }
  }
}

/**
 * Gradients of attention for units [start, end): with dP = dO·Vᵀ and dS = P ⊙ (dP − rowsum(P ⊙ dP)),
 * dq_i = scale·Σ_j dS_ij k_j, dk_j = scale·Σ_i dS_ij q_i, dv_j = Σ_i P_ij dO_i, written into dqkv
 * (same layout as qkv; every element of a unit's q, k and v is overwritten).
 */
export function attentionGrad(qkv: usize, probs: usize, dout: usize, dqkv: usize, tokens: i32, heads: i32, dh: i32,
  scale: f32, scratch: usize, start: i32, end: i32): void {
  const tp = round8(tokens);
  const slot = claimSlot(scratch, tokens, dh);
  const vT = slot, ds = addr(slot, dh * tp), tile = addr(ds, max(4, tokens) * tp);
  const dim = heads * dh, ts = 3 * dim;
  for (let u = start; u < end; u++) {
    const b = u / heads, h = u % heads;
    const q = addr(qkv, b * tokens * ts + h * dh), k = addr(q, dim), v = addr(q, 2 * dim);
    const dq = addr(dqkv, b * tokens * ts + h * dh), dk = addr(dq, dim), dv = addr(dq, 2 * dim);
    const dO = addr(dout, b * tokens * dim + h * dh);
    const p = addr(probs, u * tokens * tokens);
    packT(v, ts, tokens, dh, tp, vT);
    for (let i0 = 0; i0 < tokens; i0 += 4) {
      const rows = min(4, tokens - i0);
      block(addr(dO, i0 * dim), dim, 1, rows, vT, tp, tp, dh, addr(ds, i0 * tp), tp, 1, tile); // dP
      for (let r = 0; r < rows; r++) {
        const pr = addr(p, (i0 + r) * tokens), dr = addr(ds, (i0 + r) * tp);
        let dot: f32 = 0;
        for (let j = 0; j < tokens; j++) dot += load<f32>(addr(pr, j)) * load<f32>(addr(dr, j));
        for (let j = 0; j < tokens; j++) store<f32>(addr(dr, j), load<f32>(addr(pr, j)) * (load<f32>(addr(dr, j)) - dot));
      }
      block(addr(ds, i0 * tp), tp, 1, rows, k, ts, dh, tokens, addr(dq, i0 * ts), ts, scale, tile);
    }
    for (let j0 = 0; j0 < tokens; j0 += 4) {
      const rows = min(4, tokens - j0);
      block(addr(ds, j0), 1, tp, rows, q, ts, dh, tokens, addr(dk, j0 * ts), ts, scale, tile);
      block(addr(p, j0), 1, tokens, rows, dO, dim, dh, tokens, addr(dv, j0 * ts), ts, 1, tile);
    }
  }
}
