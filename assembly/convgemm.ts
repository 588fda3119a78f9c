// Convolution as implicit GEMM: the convolution's matrix product runs on matmul's MR×NR micro-kernel,
// but the column matrix (im2col) is never written out. Its entries are gathered straight from the
// image into the micro-kernel's small B panel (KC×NR, in L1), which every row panel then reuses.
//
// One description serves the forward pass and the input gradient. Output column q (an image b and a
// pixel (jy, jx) of an ny×nx grid) reads source element  src[so(q) + tab[e]]  for each reduction
// entry e, where so(q) = b·srcImg + jy·srcRow + jx·srcCol and tab[e] is the entry's offset in a
// zero-padded copy of the source (so no tap ever needs a bounds test). The weights come as a
// packed A matrix (convPackA) whose entry (r, e) is w[r·wRow + wtab[e]].
//   forward:     rows o, entries (c, ky, kx), source x padded, columns the output pixels.
//   input grad:  rows c, entries (o, ky, kx) of the taps that reach one phase of the input grid
//                (iy ≡ ry mod sh, ix ≡ rx mod sw), source dy padded; each phase is a stride-1
//                correlation, so no multiply is spent on the zeros a stride would insert.
// The weight gradient (convGradWeight) is the same product with the pixels as the reduction axis.
//
// Determinism: every output sums its entries (or pixels) in one fixed order, in blocks of KC whose
// boundaries do not depend on the thread split; threads only own disjoint outputs. So the split
// (convGemm's chunkPanels and chunks, from conv.chunksPerThread) is tuned per host at run time
// (src/backend/wasm/tuning.ts); KC stays a constant here because convPackA's and convPackDy's layouts
// are built in KC blocks (a boundary carries the f32 sums through memory exactly: it moves no sum).
//
// Taps that read only padding for every output (a 3x3 window on a 1x1 map) are left out of the
// entry tables by the JS side (src/backend/wasm/convgemm.ts), so they cost nothing.
// On maps of a few pixels the JS side also calls convGemm once per block of positions whose windows
// read the same taps inside the image (a 3x3 window on a 2x2 map: 4 of 9), each with only those taps.
//
// Measured: CPU ms per call (process CPU time, 1 thread, relaxed build; the 2-core host was shared
// with other trainings, so CPU time, not wall time), resnet_cpu's convolutions on the 128 global
// crops of a batch-64 step, old route (im2col + matmul; matmul + col2im; im2col + batched matmul +
// reduce) → these kernels:
//   layer                    forward       input grad     weight grad
//   1x28² → 16, 3x3 s1        3.7 → 2.0     (not needed)    7.6 → 4.5
//   16x28² → 16, 3x3 s1      49.9 → 12.3   171.1 → 14.0    55.5 → 16.8
//   16x28² → 32, 3x3 s2      16.0 → 7.8     70.2 → 10.5    15.7 → 11.1
//   32x14² → 32, 3x3 s1      33.4 → 11.8    84.5 → 12.3    30.0 → 14.3
//   64x7² → 64, 3x3 s1       23.2 → 12.1    43.7 → 12.2    23.3 → 12.6
//   128x4² → 128, 3x3 s1     20.6 → 13.3    27.2 → 13.2    31.5 → 13.7
//   all 11 (with s2 and 1x1) 181 → 78      483 → 91       200 → 93
// That is 30–45 GFLOP/s, about the packed matmul's rate at these shapes (60 at large square ones):
// small channel counts give each gathered B panel only O/4 micro-kernel calls. Stepping the column
// offsets instead of dividing per column took the 1-channel stem from 3.2 to 1.5 ms.
import { addr, LOAD, micro, MR, NR, transpose4, ZERO } from './microkernel';

const KC = 256;
/** Bytes of one thread's slot in convGemm: a KC×NR B panel, an MR×NR edge tile, NR+NR column offsets. */
const GEMM_SLOT = (KC * NR + MR * NR + 2 * NR) * 4;

/** Layout facts the JS side sizes buffers with: [MR, NR, KC, gemm slot bytes]. */
export function convBlocking(which: i32): i32 {
  switch (which) {
    case 0: return MR;
    case 1: return NR;
    case 2: return KC;
    default: return GEMM_SLOT;
  }
}

// @ts-ignore: decorator
@inline function ldi(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }

/**
 * dst [planes][Hp][Wp] = src [planes][H][W] placed at (top, left), zero elsewhere. One unit per
 * plane. The margins are what keeps the gathers free of bounds tests.
 * Rows are copied four floats at a time and the margins zeroed with plain stores: a bulk
 * memory.copy/fill per 28-float row cost more in call overhead than in bytes. resnet_cpu's 79 pads
 * of a batch-64 DINO step (idle 2-core host): 51.5 → 20.7 ms on 1 thread, 35.7 → 18.0 ms on 2.
 */
export function convPad(src: usize, dst: usize, H: i32, W: i32, top: i32, left: i32, Hp: i32, Wp: i32,
  start: i32, end: i32): void {
  const right = Wp - left - W;
  const W4 = W & ~3;
  for (let pl = start; pl < end; pl++) {
    const s = addr(src, pl * H * W);
    const d = addr(dst, pl * Hp * Wp);
    if (top > 0) memory.fill(d, 0, <usize>(top * Wp) << 2);
    let row = addr(d, top * Wp);
    let from = s;
    for (let y = 0; y < H; y++) {
      for (let i = 0; i < left; i++) store<f32>(addr(row, i), 0);
      const to = addr(row, left);
      let x = 0;
      for (; x < W4; x += 4) v128.store(addr(to, x), v128.load(addr(from, x)));
      for (; x < W; x++) store<f32>(addr(to, x), load<f32>(addr(from, x)));
      const r = addr(to, W);
      for (let i = 0; i < right; i++) store<f32>(addr(r, i), 0);
      row = addr(row, Wp);
      from = addr(from, W);
    }
    const done = (top + H) * Wp;
    if (done < Hp * Wp) memory.fill(addr(d, done), 0, <usize>(Hp * Wp - done) << 2);
  }
}

/**
 * Packs the weights as A: rows [0, rows) × entries [0, K) into blocks of KC entries, each block
 * [row panel][kc][MR] (zero past `rows`), block kb starting at kb·KC·rowsPadded. One unit per row panel.
 */
export function convPackA(w: usize, wtab: usize, apk: usize, rows: i32, K: i32, wRow: i32, start: i32, end: i32): void {
  const rowsPadded = ((rows + MR - 1) / MR) * MR;
  for (let rp = start; rp < end; rp++) {
    const r0 = rp * MR;
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      let d = addr(apk, k0 * rowsPadded + r0 * kc);
      for (let kk = 0; kk < kc; kk++) {
        const off = ldi(wtab, k0 + kk);
        for (let r = 0; r < MR; r++) {
          store<f32>(addr(d, r), r0 + r < rows ? load<f32>(addr(w, (r0 + r) * wRow + off)) : 0);
        }
        d += MR << 2;
      }
    }
  }
}

/**
 * For the four column offsets at so[h..h+3]: k in 1..4 when the first k are `step` apart (so[h] +
 * step·i) and the other 4 − k likewise among themselves (a run cut by a row end), else 0.
 */
// @ts-ignore: decorator
@inline function splitAt(so: usize, h: i32, step: i32): i32 {
  const a = ldi(so, h);
  let k = 1;
  while (k < 4 && ldi(so, h + k) == a + step * k) k++;
  if (k == 4) return 4;
  const b = ldi(so, h + k);
  for (let i = k + 1; i < 4; i++) if (ldi(so, h + i) != b + step * (i - k)) return 0;
  return k;
}

/** Lanes below k all ones, the others zero. */
// @ts-ignore: decorator
@inline function leadMask(k: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(k));
}

/** Floats 0, 2, 4, 6 at p, read as 0..3 and 3..6 (nothing past the last one). */
// @ts-ignore: decorator
@inline function even4(p: usize): v128 {
  return v128.shuffle<f32>(v128.load(p), v128.load(p, 12), 0, 2, 5, 7);
}

/**
 * The next chunk of [0, chunks) for this thread, or -1 when all are taken. A thread working from
 * the front takes them in order from 0, the others from the last one down, so with two threads each
 * keeps to its end of the columns (the images that BatchNorm and the padding, split statically,
 * give the same thread) and the boundary lands where their speeds put it. counters: i32 at +4
 * (tickets), +8 (front), +12 (back). Which thread computes a panel changes no number.
 * Why: the two cores of the benchmark host run at different speeds (the same 1-thread convolution
 * pinned with taskset: 11.2-12.2 ms on cpu 0, 14.0 ms on cpu 1), so equal static halves waited on
 * the slower core.
 */
// @ts-ignore: decorator
@inline function claimChunk(counters: usize, chunks: i32, front: bool): i32 {
  if (atomic.add<i32>(counters, 1, 4) >= chunks) return -1;
  return front ? atomic.add<i32>(counters, 1, 8) : chunks - 1 - atomic.add<i32>(counters, 1, 12);
}

/**
 * dst[r·dstPlane + do(q)] = Σ_e A[r, e]·src[so(q) + tab[e]] for all rows r, over the column panels
 * (NR columns each) of the Q = batch·ny·nx columns. do(q) = b·dstImg + dstBase + jy·dstRow +
 * jx·dstCol. K = 0 writes zeros. The panels are handed out in `chunks` chunks of `chunkPanels`
 * (claimChunk: the thread given unit 0 from the front, the others from the back); [start, end)
 * only says which end a thread works from. scratch: an i32 slot counter and claimChunk's three
 * counters (all zeroed by the caller), then GEMM_SLOT per thread.
 */
export function convGemm(apk: usize, tab: usize, src: usize, dst: usize, rows: i32, K: i32, Q: i32, nx: i32, nxy: i32,
  srcImg: i32, srcRow: i32, srcCol: i32, dstImg: i32, dstBase: i32, dstRow: i32, dstCol: i32, dstPlane: i32,
  scratch: usize, chunkPanels: i32, chunks: i32, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * GEMM_SLOT;
  const front = start == 0;
  const panels = (Q + NR - 1) / NR;
  const pb = slot;
  const tile = addr(slot, KC * NR);
  const so = addr(tile, MR * NR);
  const dof = addr(so, NR);
  const rowsPadded = ((rows + MR - 1) / MR) * MR;
  const ny = nxy / nx;
  for (;;) {
    const chunk = claimChunk(scratch, chunks, front);
    if (chunk < 0) break;
    const uEnd = min(panels, (chunk + 1) * chunkPanels);
    for (let u = chunk * chunkPanels; u < uEnd; u++) {
      const q0 = u * NR;
      const w = min(NR, Q - q0);
      // column offsets by stepping (b, jy, jx) from the panel's first column: divisions cost more
      // than a small layer's whole B-panel gather
      let b = q0 / nxy;
      const r = q0 % nxy;
      let jy = r / nx, jx = r % nx;
      for (let j = 0; j < NR; j++) {
        store<i32>(addr(so, j), b * srcImg + jy * srcRow + jx * srcCol);
        store<i32>(addr(dof, j), b * dstImg + dstBase + jy * dstRow + jx * dstCol);
        // columns past Q repeat the last one: their loads stay in bounds and they are never stored
        if (j + 1 < w && ++jx == nx) {
          jx = 0;
          if (++jy == ny) {
            jy = 0;
            b++;
          }
        }
      }
      const s0 = ldi(so, 0), s4 = ldi(so, 4), d0 = ldi(dof, 0);
      // two runs of four adjacent source pixels (a row of 28 splits a panel 4 | 4, a 4-wide row is one
      // run), or of four every other pixel (a stride-2 forward: element by element before, resnet_cpu's
      // 16x28² → 32 at batch 128 took 8.3 → 6.9 ms on 1 thread, 32x14² → 64 6.8 → 6.4, 64x7² → 128
      // 7.4 → 6.8; Intel Xeon host, CPU ms)
      let runs = w == NR, runs2 = w == NR, dstRun = w == NR;
      for (let j = 1; j < 4; j++) runs = runs && ldi(so, j) == s0 + j && ldi(so, 4 + j) == s4 + j;
      for (let j = 1; j < 4; j++) runs2 = runs2 && ldi(so, j) == s0 + 2 * j && ldi(so, 4 + j) == s4 + 2 * j;
      // or each half in two runs, its first k pixels at the end of one row and the rest at the start
      // of the next (rows of 7 or 14: the input gradient's stride phases, 7² and 14² maps; element by
      // element before: resnet_cpu's stride-2 input gradients at batch 128, 1 thread CPU ms,
      // 32x14² → 64 11.1 → 8.9, 16x28² → 32 8.6 → 8.0, 64x7² → 128 5.4 → 4.9, Intel Xeon host)
      let step = 1, kLo = splitAt(so, 0, 1), kHi = splitAt(so, 4, 1);
      if (kLo == 0 || kHi == 0) {
        // the same for every other pixel (a stride-2 forward whose 14-wide output rows cut its runs:
        // 16x28² → 32 6.6 → 6.3 ms, 32x14² → 64 6.1 → 5.9, 16x12² → 32 2.6 → 2.4; 1 thread CPU)
        step = 2;
        kLo = splitAt(so, 0, 2);
        kHi = splitAt(so, 4, 2);
      }
      const split = !runs && !runs2 && w == NR && kLo > 0 && kHi > 0;
      for (let j = 1; j < NR; j++) dstRun = dstRun && ldi(dof, j) == d0 + j;
      if (K == 0) {
        for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) store<f32>(addr(dst, r * dstPlane + ldi(dof, j)), 0);
        continue;
      }
      for (let k0 = 0; k0 < K; k0 += KC) {
        const kc = min(KC, K - k0);
        // gather the B panel [kc][NR]
        let d = pb;
        if (runs) {
          const lo = addr(src, s0), hi = addr(src, s4);
          for (let kk = 0; kk < kc; kk++) {
            const off = <usize>ldi(tab, k0 + kk) << 2;
            v128.store(d, v128.load(lo + off));
            v128.store(d, v128.load(hi + off), 16);
            d += NR << 2;
          }
        } else if (split) {
          // lanes below k from the first run, the others from the second, loaded k floats early so
          // that each lane lands in place (both loads stay inside the padded source: a split run
          // has a row after its first and one before its second)
          const aLo = addr(src, s0), bLo = kLo < 4 ? addr(src, ldi(so, kLo) - step * kLo) : aLo, mLo = leadMask(kLo);
          const aHi = addr(src, s4), bHi = kHi < 4 ? addr(src, ldi(so, 4 + kHi) - step * kHi) : aHi, mHi = leadMask(kHi);
          if (step == 1) {
            for (let kk = 0; kk < kc; kk++) {
              const off = <usize>ldi(tab, k0 + kk) << 2;
              v128.store(d, v128.bitselect(v128.load(aLo + off), v128.load(bLo + off), mLo));
              v128.store(d, v128.bitselect(v128.load(aHi + off), v128.load(bHi + off), mHi), 16);
              d += NR << 2;
            }
          } else {
            for (let kk = 0; kk < kc; kk++) {
              const off = <usize>ldi(tab, k0 + kk) << 2;
              v128.store(d, v128.bitselect(even4(aLo + off), even4(bLo + off), mLo));
              v128.store(d, v128.bitselect(even4(aHi + off), even4(bHi + off), mHi), 16);
              d += NR << 2;
            }
          }
        } else if (runs2) {
          // pixels 0, 2, 4, 6 of a run from two loads (0..3 and 3..6: nothing past the last one read)
          const lo = addr(src, s0), hi = addr(src, s4);
          for (let kk = 0; kk < kc; kk++) {
            const off = <usize>ldi(tab, k0 + kk) << 2;
            v128.store(d, even4(lo + off));
            v128.store(d, even4(hi + off), 16);
            d += NR << 2;
          }
        } else {
          for (let kk = 0; kk < kc; kk++) {
            const off = ldi(tab, k0 + kk);
            for (let j = 0; j < NR; j++) store<f32>(addr(d, j), load<f32>(addr(src, ldi(so, j) + off)));
            d += NR << 2;
          }
        }
        const mode = k0 > 0 ? LOAD : ZERO;
        const ablock = addr(apk, k0 * rowsPadded);
        for (let r0 = 0; r0 < rows; r0 += MR) {
          const h = min(MR, rows - r0);
          const pa = addr(ablock, r0 * kc);
          if (dstRun && h == MR) {
            micro(pa, pb, kc, addr(dst, r0 * dstPlane + d0), dstPlane, mode, 0);
            continue;
          }
          // scattered or partial columns: through the tile
          if (mode == LOAD) {
            for (let r = 0; r < h; r++) {
              for (let j = 0; j < w; j++) store<f32>(addr(tile, r * NR + j), load<f32>(addr(dst, (r0 + r) * dstPlane + ldi(dof, j))));
            }
          }
          micro(pa, pb, kc, tile, NR, mode, 0);
          for (let r = 0; r < h; r++) {
            for (let j = 0; j < w; j++) store<f32>(addr(dst, (r0 + r) * dstPlane + ldi(dof, j)), load<f32>(addr(tile, r * NR + j)));
          }
        }
      }
    }
  }
}

/** Bytes of one thread's slot in convGradWeight: an A panel, an edge tile, the block's pixel offsets. */
export function convGradWeightSlot(): i32 {
  return (KC * MR + MR * NR + KC) * 4;
}

/**
 * dy [batch][O][P] packed as the weight gradient's B operand: per block of KC pixels q = (b, p),
 * every O panel as [kc][NR] (zero past O), block q0 at packed + q0·oPadded floats. Packed once and
 * shared: each thread of convGradWeight packing it for itself cost a fifth of a small layer's time
 * on two threads. One unit per block. Full panels of eight channels go four pixels at a time
 * through two 4×4 transposes: resnet_cpu's 32 packs per step took 27.5 → 5.5 ms on 1 thread,
 * 15.8 → 5.7 ms on 2 (element-wise loads with a bounds test per element before).
 */
export function convPackDy(dy: usize, packed: usize, O: i32, Q: i32, P: i32, start: i32, end: i32): void {
  const oPanels = (O + NR - 1) / NR;
  const ps = <usize>P << 2;
  for (let u = start; u < end; u++) {
    const q0 = u * KC;
    const kc = min(KC, Q - q0);
    const block = addr(packed, q0 * oPanels * NR);
    for (let op = 0; op < oPanels; op++) {
      let d = addr(block, op * kc * NR);
      const o0 = op * NR;
      const full = o0 + NR <= O;
      let b = q0 / P, p = q0 % P;
      let kk = 0;
      while (kk < kc) {
        const base = addr(dy, b * O * P + p);
        if (full && kk + 4 <= kc && p + 4 <= P) {
          // four pixels of eight channels: two 4×4 transposes
          const c0 = base + <usize>o0 * ps;
          transpose4(v128.load(c0), v128.load(c0 + ps), v128.load(c0 + 2 * ps), v128.load(c0 + 3 * ps), d, NR << 2);
          const c4 = c0 + 4 * ps;
          transpose4(v128.load(c4), v128.load(c4 + ps), v128.load(c4 + 2 * ps), v128.load(c4 + 3 * ps), d + 16, NR << 2);
          d += NR << 4;
          kk += 4;
          p += 4;
        } else {
          for (let j = 0; j < NR; j++) store<f32>(addr(d, j), o0 + j < O ? load<f32>(base + (<usize>((o0 + j) * P) << 2)) : 0);
          d += NR << 2;
          kk++;
          p++;
        }
        if (p == P) {
          p = 0;
          b++;
        }
      }
    }
  }
}

/**
 * Weight gradient as dWᵀ [K][O] = Σ_q G[e, q]·dy[o, q] with G[e, q] = src[so(q) + tab[e]] (the
 * forward's gather) and dy[o, q] = dy[b·O·P + o·P + p] for q = (b, p), p = oy·outW + ox, read
 * from pdy as convPackDy packed it. Units are
 * row panels of MR entries; every thread runs all pixels in KC blocks in order, so each entry sums
 * its pixels in the same order whatever the split. acc [K][O] holds the running sums; after the
 * last block a thread writes its entries to dw [O][Kfull] at columns wtab[e]. scratch: slot
 * counter, then one slot each.
 */
export function convGradWeight(src: usize, tab: usize, wtab: usize, pdy: usize, acc: usize, dw: usize, K: i32, Kfull: i32, O: i32, Q: i32, nx: i32,
  nxy: i32, srcImg: i32, srcRow: i32, srcCol: i32, slotBytes: i32, scratch: usize, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * slotBytes;
  const oPanels = (O + NR - 1) / NR;
  const pa = slot;
  const tile = addr(pa, KC * MR);
  const so = addr(tile, MR * NR);
  // pixel offsets by stepping (b, jy, jx), as convGemm does: every thread computes them for every
  // block, so dividing per pixel was a serial share of the work (the 16x28² → 16 layer at batch
  // 128: 13.7 → 13.6 ms on 1 thread, 9.0 → 8.7 on 2; small, and the kernel still only scales 1.6x:
  // cutting the pixels into two halves summed apart, so each thread keeps to its own images, gained
  // no more in this kernel and changed the sums, so it was left out)
  const ny = nxy / nx;
  let b = 0, jy = 0, jx = 0;
  for (let q0 = 0; q0 < Q; q0 += KC) {
    const kc = min(KC, Q - q0);
    for (let kk = 0; kk < kc; kk++) {
      store<i32>(addr(so, kk), b * srcImg + jy * srcRow + jx * srcCol);
      if (++jx == nx) {
        jx = 0;
        if (++jy == ny) {
          jy = 0;
          b++;
        }
      }
    }
    const pbs = addr(pdy, q0 * oPanels * NR);
    const mode = q0 > 0 ? LOAD : ZERO;
    for (let rp = start; rp < end; rp++) {
      const e0 = rp * MR;
      const h = min(MR, K - e0);
      // A panel [kc][MR]: G rows e0..e0+3, four pixels at a time through a transpose where they are adjacent
      const t0 = ldi(tab, e0), t1 = ldi(tab, e0 + min(1, h - 1)), t2 = ldi(tab, e0 + min(2, h - 1)), t3 = ldi(tab, e0 + min(3, h - 1));
      let kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        const s = ldi(so, kk);
        if (ldi(so, kk + 3) == s + 3 && ldi(so, kk + 1) == s + 1 && ldi(so, kk + 2) == s + 2) {
          transpose4(v128.load(addr(src, s + t0)), v128.load(addr(src, s + t1)), v128.load(addr(src, s + t2)),
            v128.load(addr(src, s + t3)), addr(pa, kk * MR), MR << 2);
        } else if (ldi(so, kk + 3) == s + 6 && ldi(so, kk + 1) == s + 2 && ldi(so, kk + 2) == s + 4) {
          // every other pixel (a stride-2 layer): pixels 0, 2, 4, 6 of each tap from two loads (element
          // by element before: 16x28² → 32 at batch 128 10.4 → 8.7 ms, 32x14² → 64 6.7 → 6.0, 64x7² →
          // 128 7.7 → 6.8; 1 thread CPU, Intel Xeon host)
          transpose4(even4(addr(src, s + t0)), even4(addr(src, s + t1)), even4(addr(src, s + t2)), even4(addr(src, s + t3)),
            addr(pa, kk * MR), MR << 2);
        } else {
          for (let i = 0; i < 4; i++) {
            const si = ldi(so, kk + i);
            const d = addr(pa, (kk + i) * MR);
            store<f32>(d, load<f32>(addr(src, si + t0)));
            store<f32>(d, load<f32>(addr(src, si + t1)), 4);
            store<f32>(d, load<f32>(addr(src, si + t2)), 8);
            store<f32>(d, load<f32>(addr(src, si + t3)), 12);
          }
        }
      }
      for (; kk < kc; kk++) {
        const si = ldi(so, kk);
        const d = addr(pa, kk * MR);
        store<f32>(d, load<f32>(addr(src, si + t0)));
        store<f32>(d, load<f32>(addr(src, si + t1)), 4);
        store<f32>(d, load<f32>(addr(src, si + t2)), 8);
        store<f32>(d, load<f32>(addr(src, si + t3)), 12);
      }
      // rows past K hold copies of the last entry: computed into the tile, never stored
      for (let op = 0; op < oPanels; op++) {
        const o0 = op * NR;
        const w = min(NR, O - o0);
        const pb = addr(pbs, op * kc * NR);
        const c = addr(acc, e0 * O + o0);
        if (h == MR && w == NR) {
          micro(pa, pb, kc, c, O, mode, 0);
          continue;
        }
        if (mode == LOAD) {
          for (let r = 0; r < h; r++) for (let j = 0; j < w; j++) store<f32>(addr(tile, r * NR + j), load<f32>(addr(c, r * O + j)));
        }
        micro(pa, pb, kc, tile, NR, mode, 0);
        for (let r = 0; r < h; r++) for (let j = 0; j < w; j++) store<f32>(addr(c, r * O + j), load<f32>(addr(tile, r * NR + j)));
      }
    }
  }
  for (let rp = start; rp < end; rp++) {
    const e0 = rp * MR;
    const h = min(MR, K - e0);
    for (let r = 0; r < h; r++) {
      const col = ldi(wtab, e0 + r);
      for (let o = 0; o < O; o++) store<f32>(addr(dw, o * Kfull + col), load<f32>(addr(acc, (e0 + r) * O + o)));
    }
  }
}
