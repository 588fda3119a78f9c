// Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks"): each 4×4 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, where d is the
// 6×6 input patch and g the 3×3 filter, so the 36 products of the 36 transformed "frequencies" ξ
// replace 144 multiply-adds per tile and channel pair: the convolution becomes 36 independent
// matrix products M_ξ [O × N] = U_ξ [O × C] · V_ξ [C × N] (N = tiles), which src/tensor/ops/conv.ts
// runs as one batched matmul between these three kernels:
//   winogradWeights  U [36][R][S]   from w [O][C][3][3]  (R = O, S = C; or, for the input gradient,
//                                   the filter rotated by 180° with R = C, S = O)
//   winogradInput    V [36][C][Np]  from x [B][C][H][W]  (Np = N rounded up to 4; tile q = (b, ty, tx))
//   winogradOutput   y [B][O][oh][ow] from M [36][O][Np]
// Why: a 3×3 convolution at small channel counts runs at the 4×8 micro-kernel's rate at best
// (assembly/convgemm.ts); 128-bit wasm SIMD caps that rate, and F(4,3) needs 2.25 multiplies per
// output and tap pair instead of 9.
// The transforms work on four tiles at once, one tile per lane, and a unit is a block of 16 tiles
// (four such groups) of one channel. Each tile's values are gathered (bounds-tested, padding reads
// zero) into its lane of 36 v128 slots in the thread's scratch, the row pass and the column pass run
// in place there, and the block goes out as one 64-byte line per ξ (the input transform; the output
// transform reads its block the same way). Why the scratch and the blocks: the 36 planes of V and M
// sit C·np·4 bytes apart, very often a multiple of 4096, so the 36 slots of a tile fall in one L1
// set; transforming in place in V cost 520 ns per tile and channel (16×28² layer, batch 128: 52 ms
// against 3.7 ms for its products), touching each line once in a burst fixes that.
// Each value is computed in one fixed order, whatever the thread split.
import { ldf, stf } from './common';

/** Tiles per unit (np is a multiple of it) and bytes of one thread's scratch slot. */
export const BLOCK = 16;
const SLOT = BLOCK * 36 * 16;

/** Layout facts the JS side sizes buffers with: [tiles per block, slot bytes]. */
export function winogradBlocking(which: i32): i32 {
  return which == 0 ? BLOCK : SLOT;
}

/** This thread's scratch slot: scratch holds an i32 slot counter (zeroed by the caller), then one slot per thread. */
// @ts-ignore: decorator
@inline function claimSlot(scratch: usize): usize {
  return scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * SLOT;
}

// @ts-ignore: decorator
@inline function two(): v128 { return f32x4.splat(2); }
// @ts-ignore: decorator
@inline function four(): v128 { return f32x4.splat(4); }

/**
 * u[ξ][r][s] = (G g Gᵀ)[ξ] for each pair (r, s): g = w[r][s] (flip 0, R = O, S = C) or the 180°
 * rotation of w[s][r] (flip 1, R = C, S = O: the input gradient's filter). One unit per r; each
 * block of 16 filters is staged in the scratch slot as [ξ][16] and written out as one line per ξ
 * (the 36 planes are R·S·4 bytes apart, a multiple of 4096 at 128 channels: writing each value in
 * place cost 300 ns per filter there). scratch: see claimSlot.
 */
export function winogradWeights(w: usize, u: usize, R: i32, S: i32, flip: i32, scratch: usize, start: i32, end: i32): void {
  const slot = claimSlot(scratch);
  const plane = <usize>(R * S) << 2;
  for (let r = start; r < end; r++) {
    for (let s0 = 0; s0 < S; s0 += BLOCK) {
      const cnt = min(BLOCK, S - s0);
      for (let t = 0; t < cnt; t++) {
        const s = s0 + t;
        const g = flip ? (s * R + r) * 9 : (r * S + s) * 9;
        // g[ky][kx], rotated: g[2 - ky][2 - kx]
        const g00 = ldf(w, g + (flip ? 8 : 0)), g01 = ldf(w, g + (flip ? 7 : 1)), g02 = ldf(w, g + (flip ? 6 : 2));
        const g10 = ldf(w, g + (flip ? 5 : 3)), g11 = ldf(w, g + 4), g12 = ldf(w, g + (flip ? 3 : 5));
        const g20 = ldf(w, g + (flip ? 2 : 6)), g21 = ldf(w, g + (flip ? 1 : 7)), g22 = ldf(w, g + (flip ? 0 : 8));
        // t = G g column by column, then row i of t Gᵀ
        const lane = slot + (<usize>t << 2);
        for (let i = 0; i < 6; i++) {
          const t0 = gRow(i, g00, g10, g20), t1 = gRow(i, g01, g11, g21), t2 = gRow(i, g02, g12, g22);
          const o = lane + (<usize>(i * 6) << 6);
          store<f32>(o, gRow(0, t0, t1, t2));
          store<f32>(o, gRow(1, t0, t1, t2), 64);
          store<f32>(o, gRow(2, t0, t1, t2), 128);
          store<f32>(o, gRow(3, t0, t1, t2), 192);
          store<f32>(o, gRow(4, t0, t1, t2), 256);
          store<f32>(o, gRow(5, t0, t1, t2), 320);
        }
      }
      const out = u + (<usize>(r * S + s0) << 2);
      for (let e = 0; e < 36; e++) {
        const o = out + <usize>e * plane, sl = slot + (<usize>e << 6);
        if (cnt == BLOCK) {
          v128.store(o, v128.load(sl));
          v128.store(o, v128.load(sl, 16), 16);
          v128.store(o, v128.load(sl, 32), 32);
          v128.store(o, v128.load(sl, 48), 48);
        } else {
          for (let t = 0; t < cnt; t++) store<f32>(o + (<usize>t << 2), load<f32>(sl + (<usize>t << 2)));
        }
      }
    }
  }
}

/** Row i of G applied to (g0, g1, g2). */
// @ts-ignore: decorator
@inline function gRow(i: i32, g0: f32, g1: f32, g2: f32): f32 {
  if (i == 0) return g0 * 0.25;
  if (i == 1) return (g0 + g1 + g2) * (-1.0 / 6.0);
  if (i == 2) return (g0 - g1 + g2) * (-1.0 / 6.0);
  if (i == 3) return (g0 + 2 * g1 + 4 * g2) * (1.0 / 24.0);
  if (i == 4) return (g0 - 2 * g1 + 4 * g2) * (1.0 / 24.0);
  return g2;
}

/** Bᵀ over six slots p + k·step (k = 0..5), four lanes at once, in place. */
// @ts-ignore: decorator
@inline function inputPass(p: usize, step: usize): void {
  const z0 = v128.load(p), z1 = v128.load(p + step), z2 = v128.load(p + 2 * step);
  const z3 = v128.load(p + 3 * step), z4 = v128.load(p + 4 * step), z5 = v128.load(p + 5 * step);
  const s12 = f32x4.add(z1, z2), d12 = f32x4.sub(z1, z2);
  const a = f32x4.sub(z4, z2), b = f32x4.sub(z3, z1);
  v128.store(p, f32x4.add(f32x4.sub(f32x4.mul(four(), z0), f32x4.mul(f32x4.splat(5), z2)), z4));
  v128.store(p + step, f32x4.sub(f32x4.add(z4, z3), f32x4.mul(four(), s12)));
  v128.store(p + 2 * step, f32x4.add(f32x4.sub(z4, z3), f32x4.mul(four(), d12)));
  v128.store(p + 3 * step, f32x4.add(a, f32x4.mul(two(), b)));
  v128.store(p + 4 * step, f32x4.sub(a, f32x4.mul(two(), b)));
  v128.store(p + 5 * step, f32x4.add(f32x4.sub(f32x4.mul(four(), z1), f32x4.mul(f32x4.splat(5), z3)), z5));
}

/** x[o + ix0 + k] when row offset o ≥ 0 and column ix0 + k lies in [0, W), else 0 (padding, or no tile). */
// @ts-ignore: decorator
@inline function tap(x: usize, o: i32, ix0: i32, k: i32, W: i32): f32 {
  const ix = ix0 + k;
  return o >= 0 && ix >= 0 && ix < W ? ldf(x, o + ix) : 0;
}

/** Offset of row iy0 + r (column 0) in x for image row base img, or -1 outside the image or past the tiles. */
// @ts-ignore: decorator
@inline function rowAt(img: i32, iy0: i32, r: i32, H: i32, W: i32): i32 {
  const iy = iy0 + r;
  return img < 0 || iy < 0 || iy >= H ? -1 : (img + iy) * W;
}

/** Bᵀ of (z0..z5), stored at p + k·step. */
// @ts-ignore: decorator
@inline export function inputRow(p: usize, step: usize, z0: v128, z1: v128, z2: v128, z3: v128, z4: v128, z5: v128): void {
  const s12 = f32x4.add(z1, z2), d12 = f32x4.sub(z1, z2);
  const a = f32x4.sub(z4, z2), b = f32x4.sub(z3, z1);
  v128.store(p, f32x4.add(f32x4.sub(f32x4.mul(four(), z0), f32x4.mul(f32x4.splat(5), z2)), z4));
  v128.store(p + step, f32x4.sub(f32x4.add(z4, z3), f32x4.mul(four(), s12)));
  v128.store(p + 2 * step, f32x4.add(f32x4.sub(z4, z3), f32x4.mul(four(), d12)));
  v128.store(p + 3 * step, f32x4.add(a, f32x4.mul(two(), b)));
  v128.store(p + 4 * step, f32x4.sub(a, f32x4.mul(two(), b)));
  v128.store(p + 5 * step, f32x4.add(f32x4.sub(f32x4.mul(four(), z1), f32x4.mul(f32x4.splat(5), z3)), z5));
}

/**
 * v[ξ][c][j] = (Bᵀ d B)[ξ] of tile q = first + j's 6×6 patch of channel c: rows 4·ty − padH + (0..5),
 * columns 4·tx − padW + (0..5), zero outside the image; zero for j ≥ N. Units are (c, block of 16 tiles),
 * c-major, over C·Np/16. Each patch row of four tiles is gathered into registers and goes through
 * the row pass there: writing the lanes one by one and reading them back as vectors stalled on
 * store forwarding (6.3 → ms for the 16×28² layer at batch 128, 1 thread). scratch: see claimSlot.
 */
export function winogradInput(x: usize, v: usize, C: i32, H: i32, W: i32, padH: i32, padW: i32, th: i32, tw: i32,
  first: i32, N: i32, Np: i32, scratch: usize, start: i32, end: i32): void {
  const slot = claimSlot(scratch);
  const blocks = Np / BLOCK;
  const plane = <usize>C * <usize>Np << 2; // bytes between two ξ
  const tiles = th * tw;
  for (let u = start; u < end; u++) {
    const c = u / blocks;
    const q0 = (u % blocks) * BLOCK;
    // tile (b, ty, tx) of q0, then stepped: a division per tile cost more than its gather
    const qf = first + q0;
    let b = qf / tiles, ty = (qf % tiles) / tw, tx = qf % tw;
    for (let g = 0; g < BLOCK >> 2; g++) {
      // the group's four tiles: image row base (-1 past N), top row, left column
      const qa = q0 + 4 * g;
      let i0 = -1, i1 = -1, i2 = -1, i3 = -1, y0 = 0, y1 = 0, y2 = 0, y3 = 0, x0 = 0, x1 = 0, x2 = 0, x3 = 0;
      for (let t = 0; t < 4; t++) {
        if (qa + t >= N) break;
        const iy0 = ty * 4 - padH, ix0 = tx * 4 - padW, img = (b * C + c) * H;
        if (++tx == tw) {
          tx = 0;
          if (++ty == th) {
            ty = 0;
            b++;
          }
        }
        if (t == 0) { i0 = img; y0 = iy0; x0 = ix0; }
        else if (t == 1) { i1 = img; y1 = iy0; x1 = ix0; }
        else if (t == 2) { i2 = img; y2 = iy0; x2 = ix0; }
        else { i3 = img; y3 = iy0; x3 = ix0; }
      }
      const p = slot + <usize>(g * 36 * 16);
      // every column of every tile inside the image: no column tests
      const inside = i3 >= 0 && min(min(x0, x1), min(x2, x3)) >= 0 && max(max(x0, x1), max(x2, x3)) + 6 <= W;
      for (let r = 0; r < 6; r++) {
        const o0 = rowAt(i0, y0, r, H, W), o1 = rowAt(i1, y1, r, H, W);
        const o2 = rowAt(i2, y2, r, H, W), o3 = rowAt(i3, y3, r, H, W);
        const dst = p + (<usize>(r * 6) << 4);
        if (inside && min(min(o0, o1), min(o2, o3)) >= 0) {
          const a0 = o0 + x0, a1 = o1 + x1, a2 = o2 + x2, a3 = o3 + x3;
          inputRow(dst, 16,
            f32x4(ldf(x, a0), ldf(x, a1), ldf(x, a2), ldf(x, a3)),
            f32x4(ldf(x, a0 + 1), ldf(x, a1 + 1), ldf(x, a2 + 1), ldf(x, a3 + 1)),
            f32x4(ldf(x, a0 + 2), ldf(x, a1 + 2), ldf(x, a2 + 2), ldf(x, a3 + 2)),
            f32x4(ldf(x, a0 + 3), ldf(x, a1 + 3), ldf(x, a2 + 3), ldf(x, a3 + 3)),
            f32x4(ldf(x, a0 + 4), ldf(x, a1 + 4), ldf(x, a2 + 4), ldf(x, a3 + 4)),
            f32x4(ldf(x, a0 + 5), ldf(x, a1 + 5), ldf(x, a2 + 5), ldf(x, a3 + 5)));
        } else {
          inputRow(dst, 16,
            f32x4(tap(x, o0, x0, 0, W), tap(x, o1, x1, 0, W), tap(x, o2, x2, 0, W), tap(x, o3, x3, 0, W)),
            f32x4(tap(x, o0, x0, 1, W), tap(x, o1, x1, 1, W), tap(x, o2, x2, 1, W), tap(x, o3, x3, 1, W)),
            f32x4(tap(x, o0, x0, 2, W), tap(x, o1, x1, 2, W), tap(x, o2, x2, 2, W), tap(x, o3, x3, 2, W)),
            f32x4(tap(x, o0, x0, 3, W), tap(x, o1, x1, 3, W), tap(x, o2, x2, 3, W), tap(x, o3, x3, 3, W)),
            f32x4(tap(x, o0, x0, 4, W), tap(x, o1, x1, 4, W), tap(x, o2, x2, 4, W), tap(x, o3, x3, 4, W)),
            f32x4(tap(x, o0, x0, 5, W), tap(x, o1, x1, 5, W), tap(x, o2, x2, 5, W), tap(x, o3, x3, 5, W)));
        }
      }
      // columns (r varies)
      for (let k = 0; k < 6; k++) inputPass(p + (<usize>k << 4), 96);
    }
    const out = v + ((<usize>c * <usize>Np + <usize>q0) << 2);
    for (let e = 0; e < 36; e++) {
      const o = out + <usize>e * plane, s = slot + (<usize>e << 4);
      v128.store(o, v128.load(s));
      v128.store(o, v128.load(s, 576), 16);
      v128.store(o, v128.load(s, 1152), 32);
      v128.store(o, v128.load(s, 1728), 48);
    }
  }
}

/** Aᵀ over six slots p + k·step, four lanes at once: the four results go to the first four slots. */
// @ts-ignore: decorator
@inline function outputPass(p: usize, step: usize): void {
  outputRow(p, step, v128.load(p), v128.load(p + step), v128.load(p + 2 * step), v128.load(p + 3 * step),
    v128.load(p + 4 * step), v128.load(p + 5 * step));
}

/** Aᵀ of (z0..z5), four results stored at p + k·step (winograd-fused.ts runs it on values straight from M). */
// @ts-ignore: decorator
@inline export function outputRow(p: usize, step: usize, z0: v128, z1: v128, z2: v128, z3: v128, z4: v128, z5: v128): void {
  const a = f32x4.add(z1, z2), b = f32x4.sub(z1, z2), c = f32x4.add(z3, z4), d = f32x4.sub(z3, z4);
  v128.store(p, f32x4.add(f32x4.add(z0, a), c));
  v128.store(p + step, f32x4.add(b, f32x4.mul(two(), d)));
  v128.store(p + 2 * step, f32x4.add(a, f32x4.mul(four(), c)));
  v128.store(p + 3 * step, f32x4.add(f32x4.add(b, f32x4.mul(f32x4.splat(8), d)), z5));
}

/**
 * y[b][o][4·ty + i][4·tx + j] = (Aᵀ m A)[i][j] of tile q = first + c's 36 values m[ξ][o][c]
 * (c < N), for the outputs inside oh × ow. Units are (o, block of 16 tiles), o-major, over O·Np/16. scratch: see claimSlot.
 */
export function winogradOutput(m: usize, y: usize, O: i32, oh: i32, ow: i32, th: i32, tw: i32, first: i32, N: i32,
  Np: i32, scratch: usize, start: i32, end: i32): void {
  const slot = claimSlot(scratch);
  const blocks = Np / BLOCK;
  const plane = <usize>O * <usize>Np << 2;
  const tiles = th * tw;
  for (let u = start; u < end; u++) {
    const o = u / blocks;
    const q0 = (u % blocks) * BLOCK;
    if (q0 >= N) continue;
    const src = m + ((<usize>o * <usize>Np + <usize>q0) << 2);
    for (let e = 0; e < 36; e++) {
      const i = src + <usize>e * plane, s = slot + (<usize>e << 4);
      v128.store(s, v128.load(i));
      v128.store(s, v128.load(i, 16), 576);
      v128.store(s, v128.load(i, 32), 1152);
      v128.store(s, v128.load(i, 48), 1728);
    }
    for (let g = 0; g < BLOCK >> 2; g++) {
      const p = slot + <usize>(g * 36 * 16);
      for (let r = 0; r < 6; r++) outputPass(p + (<usize>(r * 6) << 4), 16);
      for (let j = 0; j < 4; j++) outputPass(p + (<usize>j << 4), 96);
    }
    const tEnd = min(BLOCK, N - q0);
    for (let t = 0; t < tEnd; t++) {
      const q = first + q0 + t;
      const lane = slot + <usize>((t >> 2) * 36 * 16 + ((t & 3) << 2));
      const b = q / tiles, rem = q % tiles;
      const oy0 = (rem / tw) * 4, ox0 = (rem % tw) * 4;
      const img = (b * O + o) * oh;
      const iEnd = min(4, oh - oy0), jEnd = min(4, ow - ox0);
      for (let i = 0; i < iEnd; i++) {
        const row = (img + oy0 + i) * ow + ox0;
        const li = lane + (<usize>(i * 6) << 4);
        if (jEnd == 4) {
          stf(y, row, load<f32>(li));
          stf(y, row + 1, load<f32>(li, 16));
          stf(y, row + 2, load<f32>(li, 32));
          stf(y, row + 3, load<f32>(li, 48));
        } else {
          for (let j = 0; j < jEnd; j++) stf(y, row + j, load<f32>(li + (<usize>j << 4)));
        }
      }
    }
  }
}

// ---- weight gradient: dU_ξ = dM_ξ · V_ξᵀ between the adjoints of the output and filter transforms ----

/** A over z0..z3 (the adjoint of Aᵀ), six results stored at p + k·step. */
// @ts-ignore: decorator
@inline export function adjointRow(p: usize, step: usize, z0: v128, z1: v128, z2: v128, z3: v128): void {
  const e = f32x4.add(z0, z2), o = f32x4.add(z1, z3);
  const e4 = f32x4.add(z0, f32x4.mul(four(), z2)), o2 = f32x4.add(f32x4.mul(two(), z1), f32x4.mul(f32x4.splat(8), z3));
  v128.store(p, z0);
  v128.store(p + step, f32x4.add(e, o));
  v128.store(p + 2 * step, f32x4.sub(e, o));
  v128.store(p + 3 * step, f32x4.add(e4, o2));
  v128.store(p + 4 * step, f32x4.sub(e4, o2));
  v128.store(p + 5 * step, z3);
}

/** dy[b][o][4·ty + i][4·tx + k] when inside oh × ow and the tile exists (img ≥ 0), else 0. */
// @ts-ignore: decorator
@inline function dyAt(dy: usize, img: i32, oy: i32, ox: i32, oh: i32, ow: i32): f32 {
  return img >= 0 && oy < oh && ox < ow ? ldf(dy, (img + oy) * ow + ox) : 0;
}

/**
 * dm[ξ][o][j] = (A dY Aᵀ)[ξ] of tile q = first + j's 4×4 block of dy (outputs outside oh × ow read
 * zero; zero for j ≥ N): the adjoint of winogradOutput, for the weight gradient. Units are
 * (o, block of 16 tiles), o-major, over O·Np/16. scratch: see claimSlot.
 */
export function winogradOutputGrad(dy: usize, dm: usize, O: i32, oh: i32, ow: i32, th: i32, tw: i32, first: i32,
  N: i32, Np: i32, scratch: usize, start: i32, end: i32): void {
  const slot = claimSlot(scratch);
  const blocks = Np / BLOCK;
  const plane = <usize>O * <usize>Np << 2;
  const tiles = th * tw;
  for (let u = start; u < end; u++) {
    const o = u / blocks;
    const q0 = (u % blocks) * BLOCK;
    const qf = first + q0;
    let b = qf / tiles, ty = (qf % tiles) / tw, tx = qf % tw;
    for (let g = 0; g < BLOCK >> 2; g++) {
      const qa = q0 + 4 * g;
      let i0 = -1, i1 = -1, i2 = -1, i3 = -1, y0 = 0, y1 = 0, y2 = 0, y3 = 0, x0 = 0, x1 = 0, x2 = 0, x3 = 0;
      for (let t = 0; t < 4; t++) {
        if (qa + t >= N) break;
        const oy0 = ty * 4, ox0 = tx * 4, img = (b * O + o) * oh;
        if (++tx == tw) {
          tx = 0;
          if (++ty == th) {
            ty = 0;
            b++;
          }
        }
        if (t == 0) { i0 = img; y0 = oy0; x0 = ox0; }
        else if (t == 1) { i1 = img; y1 = oy0; x1 = ox0; }
        else if (t == 2) { i2 = img; y2 = oy0; x2 = ox0; }
        else { i3 = img; y3 = oy0; x3 = ox0; }
      }
      const p = slot + <usize>(g * 36 * 16);
      // rows i = 0..3 of dY through A into slots i·6 + (0..5); rows 4, 5 of the 6×6 are then filled by the column pass
      for (let i = 0; i < 4; i++) {
        adjointRow(p + (<usize>(i * 6) << 4), 16,
          f32x4(dyAt(dy, i0, y0 + i, x0, oh, ow), dyAt(dy, i1, y1 + i, x1, oh, ow), dyAt(dy, i2, y2 + i, x2, oh, ow), dyAt(dy, i3, y3 + i, x3, oh, ow)),
          f32x4(dyAt(dy, i0, y0 + i, x0 + 1, oh, ow), dyAt(dy, i1, y1 + i, x1 + 1, oh, ow), dyAt(dy, i2, y2 + i, x2 + 1, oh, ow), dyAt(dy, i3, y3 + i, x3 + 1, oh, ow)),
          f32x4(dyAt(dy, i0, y0 + i, x0 + 2, oh, ow), dyAt(dy, i1, y1 + i, x1 + 2, oh, ow), dyAt(dy, i2, y2 + i, x2 + 2, oh, ow), dyAt(dy, i3, y3 + i, x3 + 2, oh, ow)),
          f32x4(dyAt(dy, i0, y0 + i, x0 + 3, oh, ow), dyAt(dy, i1, y1 + i, x1 + 3, oh, ow), dyAt(dy, i2, y2 + i, x2 + 3, oh, ow), dyAt(dy, i3, y3 + i, x3 + 3, oh, ow)));
      }
      // columns k: A over the four rows
      for (let k = 0; k < 6; k++) {
        const c = p + (<usize>k << 4);
        adjointRow(c, 96, v128.load(c), v128.load(c, 96), v128.load(c, 192), v128.load(c, 288));
      }
    }
    const out = dm + ((<usize>o * <usize>Np + <usize>q0) << 2);
    for (let e = 0; e < 36; e++) {
      const d = out + <usize>e * plane, s = slot + (<usize>e << 4);
      v128.store(d, v128.load(s));
      v128.store(d, v128.load(s, 576), 16);
      v128.store(d, v128.load(s, 1152), 32);
      v128.store(d, v128.load(s, 1728), 48);
    }
  }
}

/** Gᵀ over z0..z5 (the adjoint of G), three results. */
// @ts-ignore: decorator
@inline function gAdjoint(z0: v128, z1: v128, z2: v128, z3: v128, z4: v128, z5: v128, k: i32): v128 {
  const s12 = f32x4.add(z1, z2), d12 = f32x4.sub(z2, z1), s34 = f32x4.add(z3, z4), d34 = f32x4.sub(z3, z4);
  if (k == 0) {
    return f32x4.add(f32x4.sub(f32x4.mul(z0, f32x4.splat(0.25)), f32x4.mul(s12, f32x4.splat(1.0 / 6.0))),
      f32x4.mul(s34, f32x4.splat(1.0 / 24.0)));
  }
  if (k == 1) return f32x4.add(f32x4.mul(d12, f32x4.splat(1.0 / 6.0)), f32x4.mul(d34, f32x4.splat(1.0 / 12.0)));
  return f32x4.add(f32x4.mul(f32x4.sub(s34, s12), f32x4.splat(1.0 / 6.0)), z5);
}

/**
 * dw[r][s][ky][kx] = (Gᵀ dU G)[ky][kx] of du[ξ][r][s] (R = O, S = C), overwriting dw: the adjoint of
 * winogradWeights (flip 0). One unit per r; four filters s at once, one per lane, sixteen staged
 * in the scratch slot as for winogradWeights. scratch: see claimSlot.
 */
export function winogradWeightsGrad(du: usize, dw: usize, R: i32, S: i32, scratch: usize, start: i32, end: i32): void {
  const slot = claimSlot(scratch);
  const plane = <usize>(R * S) << 2;
  for (let r = start; r < end; r++) {
    for (let s0 = 0; s0 < S; s0 += BLOCK) {
      const cnt = min(BLOCK, S - s0);
      const src = du + (<usize>(r * S + s0) << 2);
      // slot [ξ][16 filters]: one line per ξ
      for (let e = 0; e < 36; e++) {
        const i = src + <usize>e * plane, sl = slot + (<usize>e << 6);
        if (cnt == BLOCK) {
          v128.store(sl, v128.load(i));
          v128.store(sl, v128.load(i, 16), 16);
          v128.store(sl, v128.load(i, 32), 32);
          v128.store(sl, v128.load(i, 48), 48);
        } else {
          for (let t = 0; t < BLOCK; t++) store<f32>(sl + (<usize>t << 2), t < cnt ? load<f32>(i + (<usize>t << 2)) : 0);
        }
      }
      for (let g = 0; g < BLOCK >> 2 && g * 4 < cnt; g++) {
        const p = slot + (<usize>g << 4);
        // t[i][kx] = Σ_j dU[i][j] G[j][kx]  (rows i = 0..5), then dw[ky][kx] = Σ_i G[i][ky] t[i][kx]
        let t00 = v128.splat<f32>(0), t01 = t00, t02 = t00, t10 = t00, t11 = t00, t12 = t00, t20 = t00, t21 = t00, t22 = t00;
        let t30 = t00, t31 = t00, t32 = t00, t40 = t00, t41 = t00, t42 = t00, t50 = t00, t51 = t00, t52 = t00;
        for (let i = 0; i < 6; i++) {
          const q = p + (<usize>(i * 6) << 6);
          const z0 = v128.load(q), z1 = v128.load(q, 64), z2 = v128.load(q, 128);
          const z3 = v128.load(q, 192), z4 = v128.load(q, 256), z5 = v128.load(q, 320);
          const a = gAdjoint(z0, z1, z2, z3, z4, z5, 0), b = gAdjoint(z0, z1, z2, z3, z4, z5, 1), c = gAdjoint(z0, z1, z2, z3, z4, z5, 2);
          if (i == 0) { t00 = a; t01 = b; t02 = c; }
          else if (i == 1) { t10 = a; t11 = b; t12 = c; }
          else if (i == 2) { t20 = a; t21 = b; t22 = c; }
          else if (i == 3) { t30 = a; t31 = b; t32 = c; }
          else if (i == 4) { t40 = a; t41 = b; t42 = c; }
          else { t50 = a; t51 = b; t52 = c; }
        }
        for (let ky = 0; ky < 3; ky++) {
          const d0 = gAdjoint(t00, t10, t20, t30, t40, t50, ky);
          const d1 = gAdjoint(t01, t11, t21, t31, t41, t51, ky);
          const d2 = gAdjoint(t02, t12, t22, t32, t42, t52, ky);
          for (let l = 0; l < 4; l++) {
            const s = s0 + g * 4 + l;
            if (s >= S) break;
            const o = (r * S + s) * 9 + ky * 3;
            stf(dw, o, laneOf(d0, l));
            stf(dw, o + 1, laneOf(d1, l));
            stf(dw, o + 2, laneOf(d2, l));
          }
        }
      }
    }
  }
}

/** Lane l (0..3) of v. */
// @ts-ignore: decorator
@inline function laneOf(v: v128, l: i32): f32 {
  if (l == 0) return f32x4.extract_lane(v, 0);
  if (l == 1) return f32x4.extract_lane(v, 1);
  if (l == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}
