// Matmul: out[b] = act(op(A[b])·op(B[b]) + bias) or out[b] += op(A[b])·op(B[b]), BLIS-style; with
// GELU the pre-activation can be kept too (pre[b] = op(A[b])·op(B[b]) + bias), for autograd.
// The JS side first packs all of B (matmulPackB) into NR-column panels laid out [k][NR], zero-padded
// past n, so the micro-kernel streams B contiguously whatever the layout (transB is a packing
// order). Then matmulCompute's threads claim chunks of output rows (of one batch each); each thread
// packs MC×KC blocks of A into MR-row panels [kc][MR] (transA likewise) in its own scratch slot and
// runs the MR×NR register-tiled micro-kernel over them. Blocking: a KC×NR B panel (8 KiB at
// KC = 256) stays in L1 while the MC×KC A block (L2) streams past it. Each output sums k in the same order whatever
// the thread count, so results do not depend on it.
// The micro-kernel (and why it is 4×8) lives in microkernel.ts, shared with convgemm.ts.
// Tuning (src/backend/wasm/tuning.ts): the rows per A block/chunk (mc, at most MC_MAX), the k block
// (kcBlock, at most KC_MAX) and the thread split are runtime arguments chosen per host on first use
// (defaults 128 and 256). None changes a number: every output's sum over k is one chain in k order,
// and at a k-block boundary the running f32 sums go to memory and come back exactly (LOAD mode), so
// where the blocks are cut only changes which values sit in L1/L2, not what is added in what order.
import { geluVec } from './common';
import { addr, LOAD, BIAS, micro, MR, NR, transpose4, ZERO } from './microkernel';

/** The largest k block the JS side may ask for (kcBlock). */
const KC_MAX = 512;
/** The largest rows per A block the JS side may ask for (chunkRows); a multiple of MR. */
const MC_MAX = 256;
/** Bytes of one thread's slot: the packed A block (up to MC_MAX × KC_MAX) and an MR×NR tile for edge tiles. */
const SLOT_BYTES = (MC_MAX * KC_MAX + MR * NR) * 4;

/** Layout facts the JS side sizes buffers with: [MR, NR, KC_MAX, MC_MAX, slot bytes]. */
export function matmulBlocking(which: i32): i32 {
  switch (which) {
    case 0: return MR;
    case 1: return NR;
    case 2: return KC_MAX;
    case 3: return MC_MAX;
    default: return SLOT_BYTES;
  }
}

/**
 * Packs B of each batch into panels of NR columns, each [k][NR] (zero past n). Units are
 * (batch, panel) pairs; the panel of unit u starts at packed + u·k·NR floats.
 */
export function matmulPackB(b: usize, packed: usize, n: i32, k: i32, transB: i32, strideB: i32, panels: i32,
  start: i32, end: i32): void {
  for (let u = start; u < end; u++) {
    const bb = u / panels;
    const j0 = (u % panels) * NR;
    const src = addr(b, bb * strideB);
    let dst = addr(packed, u * k * NR);
    const w = min(NR, n - j0);
    if (!transB && w == NR) {
      for (let kk = 0; kk < k; kk++) {
        const s = addr(src, kk * n + j0);
        v128.store(dst, v128.load(s));
        v128.store(dst, v128.load(s, 16), 16);
        dst += NR << 2;
      }
    } else if (!transB) {
      for (let kk = 0; kk < k; kk++) {
        const s = addr(src, kk * n + j0);
        for (let j = 0; j < NR; j++) store<f32>(addr(dst, j), j < w ? load<f32>(addr(s, j)) : 0);
        dst += NR << 2;
      }
    } else if (w == NR) {
      // B stored [n, k]: the panel's NR rows are read 4 k at a time and transposed in registers.
      const s0 = addr(src, j0 * k), ld = <usize>k << 2;
      let kk = 0;
      for (; kk + 4 <= k; kk += 4) {
        const o = <usize>kk << 2;
        const s4 = s0 + 4 * ld;
        transpose4(v128.load(s0 + o), v128.load(s0 + ld + o), v128.load(s0 + 2 * ld + o), v128.load(s0 + 3 * ld + o),
          dst, NR << 2);
        transpose4(v128.load(s4 + o), v128.load(s4 + ld + o), v128.load(s4 + 2 * ld + o), v128.load(s4 + 3 * ld + o),
          dst + 16, NR << 2);
        dst += 4 * NR << 2;
      }
      for (; kk < k; kk++) {
        for (let j = 0; j < NR; j++) store<f32>(addr(dst, j), load<f32>(s0 + <usize>j * ld + (<usize>kk << 2)));
        dst += NR << 2;
      }
    } else {
      for (let j = 0; j < NR; j++) {
        const s = addr(src, (j0 + j) * k);
        const d = addr(dst, j);
        if (j < w) for (let kk = 0; kk < k; kk++) store<f32>(d + (<usize>(kk * NR) << 2), load<f32>(addr(s, kk)));
        else for (let kk = 0; kk < k; kk++) store<f32>(d + (<usize>(kk * NR) << 2), 0);
      }
    }
  }
}

/**
 * dst[r] (+)= Σ_kk of row r of a packed A block (rows × kc in MR-row panels), one lane per row, k in
 * order; `add` continues the running sums of earlier k blocks.
 */
function sumPacked(block: usize, kc: i32, rows: i32, dst: usize, add: bool): void {
  for (let r0 = 0; r0 < rows; r0 += MR) {
    const panel = addr(block, r0 * kc);
    const h = min(MR, rows - r0);
    let acc = f32x4.splat(0);
    if (add && h == MR) acc = v128.load(addr(dst, r0));
    else if (add) {
      // a partial panel (h < MR): lanes past h stay 0 and are never stored
      acc = f32x4.replace_lane(acc, 0, load<f32>(addr(dst, r0)));
      if (h > 1) acc = f32x4.replace_lane(acc, 1, load<f32>(addr(dst, r0 + 1)));
      if (h > 2) acc = f32x4.replace_lane(acc, 2, load<f32>(addr(dst, r0 + 2)));
    }
    for (let kk = 0; kk < kc; kk++) acc = f32x4.add(acc, v128.load(addr(panel, kk * MR)));
    if (h == MR) v128.store(addr(dst, r0), acc);
    else {
      store<f32>(addr(dst, r0), f32x4.extract_lane(acc, 0));
      if (h > 1) store<f32>(addr(dst, r0 + 1), f32x4.extract_lane(acc, 1));
      if (h > 2) store<f32>(addr(dst, r0 + 2), f32x4.extract_lane(acc, 2));
    }
  }
}

/** Packs rows [i0, i0+rows) × cols [p0, p0+kc) of op(A) into MR-row panels [kc][MR], zero past rows. */
function packA(a: usize, dst: usize, m: i32, k: i32, transA: i32, i0: i32, rows: i32, p0: i32, kc: i32): void {
  for (let r0 = 0; r0 < rows; r0 += MR) {
    const h = min(MR, rows - r0);
    const panel = addr(dst, r0 * kc);
    if (h == MR && transA) {
      // A stored [k, m]: the MR values of one k are adjacent.
      let s = addr(a, p0 * m + i0 + r0);
      for (let kk = 0; kk < kc; kk++) {
        v128.store(addr(panel, kk * MR), v128.load(s));
        s += <usize>m << 2;
      }
    } else if (h == MR) {
      const s0 = addr(a, (i0 + r0) * k + p0), ld = <usize>k << 2;
      let kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        const o = <usize>kk << 2;
        transpose4(v128.load(s0 + o), v128.load(s0 + ld + o), v128.load(s0 + 2 * ld + o), v128.load(s0 + 3 * ld + o),
          addr(panel, kk * MR), MR << 2);
      }
      for (; kk < kc; kk++) {
        for (let r = 0; r < MR; r++) store<f32>(addr(panel, kk * MR + r), load<f32>(s0 + <usize>r * ld + (<usize>kk << 2)));
      }
    } else {
      // The last, partial panel: zero rows past the edge.
      for (let kk = 0; kk < kc; kk++) {
        for (let r = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < h) v = transA ? load<f32>(addr(a, (p0 + kk) * m + i0 + r0 + r)) : load<f32>(addr(a, (i0 + r0 + r) * k + p0 + kk));
          store<f32>(addr(panel, kk * MR + r), v);
        }
      }
    }
  }
}

/** A partial tile (h rows, w columns) through the slot's MR×NR buffer, so the kernel never reads
 *  or writes past the edges of out or bias. */
function edgeTile(pa: usize, pb: usize, kc: i32, c: usize, ldc: i32, mode: i32, bias: usize, h: i32, w: i32,
  tile: usize): void {
  if (mode != ZERO) {
    for (let r = 0; r < MR; r++) {
      for (let j = 0; j < NR; j++) {
        let v: f32 = 0;
        if (j < w && (mode == BIAS || r < h)) v = mode == BIAS ? load<f32>(addr(bias, j)) : load<f32>(addr(c, r * ldc + j));
        store<f32>(addr(tile, r * NR + j), v);
      }
    }
  }
  micro(pa, pb, kc, tile, NR, mode == ZERO ? ZERO : LOAD, 0);
  for (let r = 0; r < h; r++) {
    for (let j = 0; j < w; j++) store<f32>(addr(c, r * ldc + j), load<f32>(addr(tile, r * NR + j)));
  }
}

/**
 * Work is handed out in chunks of `chunkRows` output rows (a multiple of MR, at most MC_MAX) of one
 * batch, claimed from a shared counter rather than by the thread's [start, end): a thread that is
 * descheduled (a loaded machine) or slow to wake leaves its chunks to the others. A thread claims
 * `claim` consecutive chunks at a time: one atomic per tiny chunk (the attention products of short
 * sequences) made the counter's cache line bounce between cores for longer than the work. The JS side runs
 * this over `chunks` units only to pick how many threads join. flags: 1 accumulate, 2 bias, 4 gelu,
 * 8 row sums: rowSums[i] = Σ_k op(A)[i, k] (batch 1), summed in k order from the packed blocks, so
 * a linear layer's bias gradient comes with its weight gradient instead of another pass over dY.
 * 16 (with 4) keep the pre-activation: the product and bias go to `pre` and GELU of it to `out`, so a
 * training step's fc1 needs no separate GELU pass over its [rows, 4·D] output (autograd's backward
 * reads the pre-activation). Level with the product then the GELU pass in CPU time (6400x256x64,
 * bench fusions: 7.00 against 7.04 ms on 1 thread): the GELU's arithmetic is the cost either way.
 * k runs in blocks of kcBlock (≤ KC_MAX), each packed into the slot and run over every B panel.
 * B was packed by matmulPackB (shared by every batch when sharedB). scratch: i32 slot and chunk
 * counters, then one SLOT_BYTES slot per thread.
 */
export function matmulCompute(a: usize, packed: usize, out: usize, pre: usize, bias: usize, rowSums: usize, m: i32,
  n: i32, k: i32, transA: i32, strideA: i32, sharedB: i32, flags: i32, scratch: usize, chunkRows: i32, kcBlock: i32,
  chunks: i32,
  claim: i32, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * SLOT_BYTES;
  const tile = addr(slot, MC_MAX * KC_MAX);
  const perBatch = (m + chunkRows - 1) / chunkRows;
  const panels = (n + NR - 1) / NR;
  const accumulate = flags & 1, hasBias = flags & 2, act = flags & 4, sums = flags & 8, keep = flags & 16;
  let chunk = 0, claimed = 0;
  for (;;) {
    if (claimed == 0) {
      chunk = atomic.add<i32>(scratch, claim, 4);
      claimed = claim;
    } else chunk++;
    claimed--;
    if (chunk >= chunks) break;
    const bi = chunk / perBatch;
    const i0 = (chunk % perBatch) * chunkRows;
    const rows = min(chunkRows, m - i0);
    const ab = addr(a, bi * strideA);
    // The product (and bias) lands in pre when the pre-activation is kept; the epilogue then reads it
    // back while it is still in cache and writes GELU to out, in the same pass as without it.
    const ob = addr(out, (bi * m + i0) * n);
    const cb = keep ? addr(pre, (bi * m + i0) * n) : ob;
    const bb = sharedB ? packed : addr(packed, bi * panels * k * NR);
    let p0 = 0;
    do {
      const kc = min(kcBlock, k - p0);
      packA(ab, slot, m, k, transA, i0, rows, p0, kc);
      if (sums) sumPacked(slot, kc, rows, addr(rowSums, i0), p0 > 0);
      const mode = p0 > 0 || accumulate ? LOAD : hasBias ? BIAS : ZERO;
      for (let jp = 0; jp < panels; jp++) {
        const j0 = jp * NR;
        const w = min(NR, n - j0);
        const pb = addr(bb, (jp * k + p0) * NR);
        for (let r0 = 0; r0 < rows; r0 += MR) {
          const h = min(MR, rows - r0);
          const pa = addr(slot, r0 * kc);
          const c = addr(cb, r0 * n + j0);
          if (h == MR && w == NR) micro(pa, pb, kc, c, n, mode, addr(bias, j0));
          else edgeTile(pa, pb, kc, c, n, mode, addr(bias, j0), h, w, tile);
        }
      }
      p0 += kc;
    } while (p0 < k);
    if (act) {
      const len = rows * n;
      let i = 0;
      // two vectors per iteration, as in the elementwise GELU, to overlap the long chains
      for (; i + 8 <= len; i += 8) {
        const g0 = geluVec(v128.load(addr(cb, i))), g1 = geluVec(v128.load(addr(cb, i), 16));
        v128.store(addr(ob, i), g0);
        v128.store(addr(ob, i), g1, 16);
      }
      for (; i + 4 <= len; i += 4) v128.store(addr(ob, i), geluVec(v128.load(addr(cb, i))));
      for (; i < len; i++) store<f32>(addr(ob, i), f32x4.extract_lane(geluVec(f32x4.splat(load<f32>(addr(cb, i)))), 0));
    }
  }
}
