// Winograd F(4×4, 3×3) convolution with the transforms and the 36 products fused per block of 16
// tiles: winogradInput → the batched matmul M_ξ = U_ξ·V_ξ → winogradOutput of src/tensor/ops/conv.ts,
// done for one block at a time inside one thread's scratch slot (V and M together 72 KiB at 16
// channels: L2, never memory), so a convolution is one fork-join instead of three per chunk of
// tiles, and no transformed value leaves the core. The products run on the same 4×8 micro-kernel
// as matmul, each output one fma chain over the channels in order from zero, and the transforms do
// the same arithmetic as winograd.ts's: the results are bit for bit those of the three-kernel
// composition (test/conformance/winograd.test.ts).
// Unlike winograd.ts the input comes zero-padded (the JS side pads it with convPad) so that every
// tile's 6×6 patch is inside the buffer: each patch row is two vector loads, and four tiles' rows
// become the transform's six lane vectors through shuffles, with no bounds test. Outputs leave as
// one vector per tile row after a 4×4 transpose.
// Measured, 16×28² → 16 at batch 128, 1 thread, CPU ms (Intel Xeon host, 2026-12-05): the first
// version, with winograd.ts's gathers (bounds-tested lane by lane where a tile touches the border,
// which at 28² is 5 groups of four tiles in 7) and V and M copied through the staging slot, 10.2
// (input transform 4.1, products 2.7, output transform 3.2); this one 6.4-6.7. Against the
// implicit GEMM (12.6-14.0) and the three-kernel composition (12.6-13.3).
import { BLOCK, inputRow, outputRow } from './winograd';
import { addr, micro, MR, NR, transpose4, ZERO } from './microkernel';

/** Bytes of the slot's head: one group's 36 lane vectors, the output transpose, the block's tile tables. */
const HEAD = 36 * 16 + 4 * 64 + 3 * BLOCK * 4;

/**
 * The row pass of Bᵀ d B for four tiles whose 6×6 patches start at a0..a3 (rows rowX bytes apart,
 * two floats of slack after each row's sixth): slot r·6 + k at p + (r·6 + k)·16 holds row r's k-th
 * result, lane t for tile t. Each patch row is two vector loads, and the four tiles' rows become
 * the six lane vectors through a 4×4 transpose and half of another.
 */
// @ts-ignore: decorator
@inline export function inputRows(a0: usize, a1: usize, a2: usize, a3: usize, rowX: usize, p: usize): void {
  for (let r = 0; r < 6; r++) {
    const o = <usize>r * rowX;
    const f0 = v128.load(a0 + o), f1 = v128.load(a1 + o), f2 = v128.load(a2 + o), f3 = v128.load(a3 + o);
    const s0 = v128.load(a0 + o, 16), s1 = v128.load(a1 + o, 16), s2 = v128.load(a2 + o, 16), s3 = v128.load(a3 + o, 16);
    const t0 = v128.shuffle<f32>(f0, f1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(f0, f1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(f2, f3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(f2, f3, 2, 6, 3, 7);
    const w0 = v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), w1 = v128.shuffle<f32>(s2, s3, 0, 4, 1, 5);
    inputRow(p + <usize>(r * 96), 16,
      v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), v128.shuffle<f32>(t0, t2, 2, 3, 6, 7),
      v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), v128.shuffle<f32>(t1, t3, 2, 3, 6, 7),
      v128.shuffle<f32>(w0, w1, 0, 1, 4, 5), v128.shuffle<f32>(w0, w1, 2, 3, 6, 7));
  }
}

/**
 * Packs u [36][O][C] (winogradWeights' layout) as the micro-kernel's A operand: per ξ, row panels
 * of MR output channels laid out [C][MR], zero past O; plane ξ starts at ξ·oPad·C floats, oPad = O
 * rounded up to MR. One unit per ξ.
 */
export function winogradPackU(u: usize, upk: usize, O: i32, C: i32, start: i32, end: i32): void {
  const oPad = ((O + MR - 1) / MR) * MR;
  for (let e = start; e < end; e++) {
    const src = addr(u, e * O * C);
    let d = addr(upk, e * oPad * C);
    for (let r0 = 0; r0 < oPad; r0 += MR) {
      for (let c = 0; c < C; c++) {
        for (let r = 0; r < MR; r++) store<f32>(addr(d, r), r0 + r < O ? load<f32>(addr(src, (r0 + r) * C + c)) : 0);
        d += MR << 2;
      }
    }
  }
}

/** Bytes of one thread's slot in winogradFused: the head, V [36][2][C][NR], M [36][O][16], an edge tile. */
export function winogradFusedSlot(C: i32, O: i32): i32 {
  return HEAD + 36 * 2 * C * NR * 4 + 36 * O * BLOCK * 4 + MR * NR * 4;
}

/**
 * y [B][O][oh][ow] at the outputs of tiles [first, first + N) = the Winograd convolution with the
 * filters packed by winogradPackU of the input xp, zero-padded as [B][C][Hp][Wp] (tile (ty, tx)'s
 * patch at rows 4·ty + 0..5, columns 4·tx + 0..5; 8 floats of slack after the last plane), with
 * y's images counted from xp's first. Units are blocks of 16 tiles. Per block: every channel's
 * tiles through Bᵀ d B into V (two NR-column halves per ξ, each a B panel [C][NR]), the 36 products
 * M_ξ [O × 16] = U_ξ·V_ξ, then every output channel through Aᵀ m A into y.
 * scratch: an i32 slot counter (zeroed by the caller), then slotBytes per thread.
 */
export function winogradFused(xp: usize, upk: usize, y: usize, C: i32, O: i32, Hp: i32, Wp: i32, oh: i32, ow: i32,
  th: i32, tw: i32, first: i32, N: i32, slotBytes: i32, scratch: usize, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * <usize>slotBytes;
  const half = <usize>(C * NR) << 2; // bytes of one B panel
  const vPlane = half << 1;
  const mPlane = <usize>(O * BLOCK) << 2;
  const p = slot; // one group of four tiles: 36 lane vectors, ξ = r·6 + k at p + ξ·16
  const tmp = p + 36 * 16; // the output transpose: row i of tile t at tmp + i·64 + t·16
  const xoff = tmp + 4 * 64, yoff = xoff + BLOCK * 4, lim = yoff + BLOCK * 4;
  const v = slot + HEAD;
  const m = v + 36 * vPlane;
  const tile = m + 36 * mPlane;
  const oPad = ((O + MR - 1) / MR) * MR;
  const tiles = th * tw, planeX = Hp * Wp, rowX = <usize>Wp << 2;
  for (let u = start; u < end; u++) {
    const q0 = u * BLOCK;
    // the block's tiles: patch origin in xp (channel 0), output origin in y (channel 0), rows | cols
    // inside; tiles past N repeat the last one (their columns of M are never written out)
    const qf = first + q0;
    let b = qf / tiles, ty = (qf % tiles) / tw, tx = qf % tw;
    for (let t = 0; t < BLOCK; t++) {
      store<i32>(xoff + (<usize>t << 2), (b * C * Hp + 4 * ty) * Wp + 4 * tx);
      store<i32>(yoff + (<usize>t << 2), (b * O * oh + 4 * ty) * ow + 4 * tx);
      store<i32>(lim + (<usize>t << 2), min(4, oh - 4 * ty) | (min(4, ow - 4 * tx) << 8));
      if (q0 + t + 1 < N && ++tx == tw) {
        tx = 0;
        if (++ty == th) {
          ty = 0;
          b++;
        }
      }
    }
    for (let c = 0; c < C; c++) {
      const xc = addr(xp, c * planeX);
      for (let g = 0; g < BLOCK >> 2; g++) {
        const a0 = addr(xc, load<i32>(xoff + (<usize>(4 * g) << 2))), a1 = addr(xc, load<i32>(xoff + (<usize>(4 * g + 1) << 2)));
        const a2 = addr(xc, load<i32>(xoff + (<usize>(4 * g + 2) << 2))), a3 = addr(xc, load<i32>(xoff + (<usize>(4 * g + 3) << 2)));
        inputRows(a0, a1, a2, a3, rowX, p);
        // column k through Bᵀ straight into V: ξ = i·6 + k, tiles 4g..4g+3 of row c of panel g >> 1
        const vb = v + (<usize>(c * NR) << 2) + <usize>(g >> 1) * half + (<usize>(g & 1) << 4);
        for (let k = 0; k < 6; k++) {
          const q = p + (<usize>k << 4);
          inputRow(vb + <usize>k * vPlane, 6 * vPlane, v128.load(q), v128.load(q, 96), v128.load(q, 192),
            v128.load(q, 288), v128.load(q, 384), v128.load(q, 480));
        }
      }
    }
    for (let e = 0; e < 36; e++) {
      const ue = addr(upk, e * oPad * C), ve = v + <usize>e * vPlane, me = m + <usize>e * mPlane;
      for (let r0 = 0; r0 < O; r0 += MR) {
        const h = min(MR, O - r0);
        const pa = addr(ue, r0 * C);
        for (let j = 0; j < 2; j++) {
          const pb = ve + <usize>j * half, cc = addr(me, r0 * BLOCK + j * NR);
          if (h == MR) {
            micro(pa, pb, C, cc, BLOCK, ZERO, 0);
          } else {
            micro(pa, pb, C, tile, NR, ZERO, 0);
            for (let r = 0; r < h; r++) {
              v128.store(addr(cc, r * BLOCK), v128.load(addr(tile, r * NR)));
              v128.store(addr(cc, r * BLOCK), v128.load(addr(tile, r * NR), 16), 16);
            }
          }
        }
      }
    }
    const tEnd = min(BLOCK, N - q0);
    for (let o = 0; o < O; o++) {
      const plane = o * oh * ow;
      for (let g = 0; g < BLOCK >> 2 && 4 * g < tEnd; g++) {
        // rows r of M (ξ = r·6 + k) through Aᵀ into slots r·6 + (0..3), then columns j in place
        const mb = m + (<usize>(o * BLOCK + 4 * g) << 2);
        for (let r = 0; r < 6; r++) {
          const s = mb + <usize>(r * 6) * mPlane;
          outputRow(p + <usize>(r * 96), 16, v128.load(s), v128.load(s + mPlane), v128.load(s + 2 * mPlane),
            v128.load(s + 3 * mPlane), v128.load(s + 4 * mPlane), v128.load(s + 5 * mPlane));
        }
        for (let j = 0; j < 4; j++) {
          const q = p + (<usize>j << 4);
          outputRow(q, 96, v128.load(q), v128.load(q, 96), v128.load(q, 192), v128.load(q, 288), v128.load(q, 384),
            v128.load(q, 480));
        }
        for (let i = 0; i < 4; i++) {
          const q = p + <usize>(i * 96);
          transpose4(v128.load(q), v128.load(q, 16), v128.load(q, 32), v128.load(q, 48), tmp + (<usize>i << 6), 16);
        }
        for (let t = 0; t < 4 && 4 * g + t < tEnd; t++) {
          const tt = 4 * g + t;
          const lt = load<i32>(lim + (<usize>tt << 2));
          const iEnd = lt & 255, jEnd = lt >> 8;
          let row = addr(y, load<i32>(yoff + (<usize>tt << 2)) + plane);
          const src = tmp + (<usize>t << 4);
          for (let i = 0; i < iEnd; i++) {
            const si = src + (<usize>i << 6);
            if (jEnd == 4) v128.store(row, v128.load(si));
            else for (let jj = 0; jj < jEnd; jj++) store<f32>(row + (<usize>jj << 2), load<f32>(si + (<usize>jj << 2)));
            row += <usize>ow << 2;
          }
        }
      }
    }
  }
}
