// Matmul: out[b] = act(op(A[b])·op(B[b]) + bias) or out[b] += op(A[b])·op(B[b]), BLIS-style; with
// GELU the pre-activation can be kept too (pre[b] = op(A[b])·op(B[b]) + bias), for autograd.
// The JS side first packs all of B (matmulPackB) into NR-column panels laid out [k][NR], zero-padded
// past n, so the micro-kernel streams B contiguously whatever the layout (transB is a packing
// order); a batch of small entries instead packs each entry's B in the chunk that uses it. Then matmulCompute's threads claim chunks of output rows (of one batch each); each thread
// packs MC×KC blocks of A into MR-row panels [kc][MR] (transA likewise) in its own scratch slot and
// runs the MR×NR register-tiled micro-kernel over them. Blocking: a KC×NR B panel (8 KiB at
// KC = 256) stays in L1 while the MC×KC A block (L2) streams past it. Each output sums k in the same order whatever
// the thread count, so results do not depend on it.
// The micro-kernel (and why it is 4×8) lives in microkernel.ts, shared with convgemm.ts.
// Around it (issue 15, on the 2-core Intel Xeon with AVX-512/AMX, 2026-12-05; relaxed build, 1
// thread, against the build before, alternating, 8 pairs, median; one-core peak 56.7 GFLOP/s):
//  - Edges: a partial row panel of h ≤ 2 rows (edgeRows) and a partial B panel of w ≤ 2 columns
//    (edgeCols) run kernels that do only the real rows or columns; before, each such tile ran the
//    whole padded 4×8 micro-kernel through a copy, so a 65 = 64 + 1 edge cost up to 8× its work.
//    Wider edges keep the padded tile: with edgeCols at w = 4 a 64 × (67×68×64) product ran 6–9%
//    slower (a first edgeCols of four one-column chains, each with its own B value), and edgeRows
//    at h = 3 was no faster (12 loads per 8 multiply-adds). edgeCols now runs eight chains sharing
//    B values: 1.05× on 128 × (50×50×16, B transposed) and 1.04× on 64 × (66×66×64) against that
//    first version, level on 65-wide Q·Kᵀ (4 pairs). Same bits: each output's chain is
//    c = madd(a, b, c) in k order from the same init (probe over 9856 cases: 20 odd shapes ×
//    transposes × batch 1/3/40 × bias, GELU, kept pre-activation, accumulate, row sums, shared B ×
//    both builds × 1 and 2 threads × two tunings: every output bit as before).
//  - A batch of entries that are one chunk each (attention) packs each entry's B in that chunk
//    (flag 32) instead of all entries up front, which had left L2 before use.
//  - The transposed-A pack reads four panels per k row (one 64-byte line), not one panel down k.
//  - Partial panels are zeroed with vector stores, then the real rows/columns copied.
//  Together: attn Q·Kᵀ 192×(65×65×64) 34.2 → 41.6 GFLOP/s (1.21×, 60% → 73% of peak), P·V
//  192×(65×64×65) 38.7 → 43.4 (1.12×, 68% → 76%), fc1 dW = dYᵀ·X 768×192×4160 44.2 → 45.6 (1.02×,
//  79% → 82%); the other shapes 1.005–1.026× (noise; 85–92%). 2 threads: Q·Kᵀ 1.21×, P·V 1.12×.
//  What is left on attention: cold operands (192 entries, 9 MiB: ~5%), the 65th row and column
//  (~6%), and k = 64 itself (one micro-kernel call per 64 k: a 64×64×64 entry with warm operands
//  runs at 82% of peak against 88% for the kernel over long k).
// Tuning (src/backend/wasm/tuning.ts): the rows per A block/chunk (mc, at most MC_MAX), the k block
// (kcBlock, at most KC_MAX) and the thread split are runtime arguments chosen per host on first use
// (defaults 128 and 256). None changes a number: every output's sum over k is one chain in k order,
// and at a k-block boundary the running f32 sums go to memory and come back exactly (LOAD mode), so
// where the blocks are cut only changes which values sit in L1/L2, not what is added in what order.
import { geluVec, madd } from './common';
import { addr, LOAD, BIAS, micro, MR, NR, transpose4, ZERO } from './microkernel';

/** The largest k block the JS side may ask for (kcBlock). */
const KC_MAX = 512;
/** The largest rows per A block the JS side may ask for (chunkRows); a multiple of MR. */
const MC_MAX = 256;
/** The widest partial B panel edgeCols takes; wider ones run the padded micro-kernel (edgeTile). */
const EDGE_COLS_MAX = 2;
/** The most rows of a partial A panel edgeRows takes; more run the padded micro-kernel (edgeTile). */
const EDGE_ROWS_MAX = 2;
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
    packPanel(addr(b, (u / panels) * strideB), addr(packed, u * k * NR), n, k, transB, (u % panels) * NR);
  }
}

/** Packs columns [j0, j0 + NR) of op(B) (one batch entry at src) into dst as [k][NR], zero past n. */
function packPanel(src: usize, dst: usize, n: i32, k: i32, transB: i32, j0: i32): void {
  const w = min(NR, n - j0);
  if (!transB && w == NR) {
    for (let kk = 0; kk < k; kk++) {
      const s = addr(src, kk * n + j0);
      v128.store(dst, v128.load(s));
      v128.store(dst, v128.load(s, 16), 16);
      dst += NR << 2;
    }
  } else if (!transB) {
    const zero = f32x4.splat(0);
    for (let kk = 0; kk < k; kk++) {
      const s = addr(src, kk * n + j0);
      v128.store(dst, zero);
      v128.store(dst, zero, 16);
      for (let j = 0; j < w; j++) store<f32>(addr(dst, j), load<f32>(addr(s, j)));
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
    // zeroed whole first, then the w columns copied (the last panel of a 65-wide product has one)
    const zero = f32x4.splat(0);
    for (let kk = 0; kk < k; kk++) {
      v128.store(addr(dst, kk * NR), zero);
      v128.store(addr(dst, kk * NR), zero, 16);
    }
    for (let j = 0; j < w; j++) {
      const s = addr(src, (j0 + j) * k);
      const d = addr(dst, j);
      for (let kk = 0; kk < k; kk++) store<f32>(d + (<usize>(kk * NR) << 2), load<f32>(addr(s, kk)));
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
  if (transA) {
    // A stored [k, m]: the MR values of one k are adjacent. Four panels (16 rows: one 64-byte line
    // of a k row) down k at a time, so each source line is read once; one panel at a time re-read
    // each line four times, from L2 when the block's k rows span more than L1 (m = 768, kc = 256:
    // 128 KiB). Not all panels per k row: their kc·16-byte spacing (4 KiB at kc = 256) maps every
    // store to one L1 set.
    const full = rows - rows % MR;
    const step = <usize>(kc * MR) << 2, ld = <usize>m << 2;
    let r0 = 0;
    for (; r0 + 4 * MR <= full; r0 += 4 * MR) {
      let s = addr(a, p0 * m + i0 + r0);
      let d = addr(dst, r0 * kc);
      for (let kk = 0; kk < kc; kk++) {
        v128.store(d, v128.load(s));
        v128.store(d + step, v128.load(s, 16));
        v128.store(d + 2 * step, v128.load(s, 32));
        v128.store(d + 3 * step, v128.load(s, 48));
        s += ld;
        d += MR << 2;
      }
    }
    for (; r0 < full; r0 += MR) {
      let s = addr(a, p0 * m + i0 + r0);
      let d = addr(dst, r0 * kc);
      for (let kk = 0; kk < kc; kk++) {
        v128.store(d, v128.load(s));
        s += ld;
        d += MR << 2;
      }
    }
  }
  for (let r0 = transA ? rows - rows % MR : 0; r0 < rows; r0 += MR) {
    const h = min(MR, rows - r0);
    const panel = addr(dst, r0 * kc);
    if (h == MR) {
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
      // The last, partial panel: zero rows past the edge (zeroed whole first, then the h rows copied:
      // a test per element cost as much as packing a full panel of 65-row attention products).
      const zero = f32x4.splat(0);
      for (let kk = 0; kk < kc; kk++) v128.store(addr(panel, kk * MR), zero);
      for (let r = 0; r < h; r++) {
        const d = addr(panel, r);
        if (transA) {
          const s = addr(a, p0 * m + i0 + r0 + r), ld = <usize>m << 2;
          for (let kk = 0; kk < kc; kk++) store<f32>(d + (<usize>(kk * MR) << 2), load<f32>(s + <usize>kk * ld));
        } else {
          const s = addr(a, (i0 + r0 + r) * k + p0);
          for (let kk = 0; kk < kc; kk++) store<f32>(d + (<usize>(kk * MR) << 2), load<f32>(addr(s, kk)));
        }
      }
    }
  }
}

/**
 * The last, partial row panel's h (< MR) rows against every full B panel. Units are (row, panel)
 * pairs, four at a time, each two f32x4 chains over its panel's NR columns: per k, 8 multiply-adds
 * for 32 outputs, as in the micro-kernel, where a padded MR-row tile spends MR/h times that. Each
 * output is still one chain in k order from the same init, c = madd(a, b, c), so its bits are those
 * of the padded tile. Units past the end repeat the last one; the repeat stores the same values.
 * pa: the partial panel's packed block; pb: panel 0's packed B at this k block; bStride: bytes
 * between B panels.
 */
function edgeRows(pa: usize, pb: usize, bStride: usize, kc: i32, c: usize, ldc: i32, mode: i32, bias: usize, h: i32,
  panels: i32): void {
  const units = h * panels;
  for (let u = 0; u < units; u += 4) {
    const u1 = min(u + 1, units - 1), u2 = min(u + 2, units - 1), u3 = min(u + 3, units - 1);
    const a0 = pa + (<usize>(u % h) << 2), a1 = pa + (<usize>(u1 % h) << 2);
    const a2 = pa + (<usize>(u2 % h) << 2), a3 = pa + (<usize>(u3 % h) << 2);
    const b0 = pb + <usize>(u / h) * bStride, b1 = pb + <usize>(u1 / h) * bStride;
    const b2 = pb + <usize>(u2 / h) * bStride, b3 = pb + <usize>(u3 / h) * bStride;
    const o0 = addr(c, (u % h) * ldc + (u / h) * NR), o1 = addr(c, (u1 % h) * ldc + (u1 / h) * NR);
    const o2 = addr(c, (u2 % h) * ldc + (u2 / h) * NR), o3 = addr(c, (u3 % h) * ldc + (u3 / h) * NR);
    let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128;
    if (mode == LOAD) {
      c00 = v128.load(o0); c01 = v128.load(o0, 16); c10 = v128.load(o1); c11 = v128.load(o1, 16);
      c20 = v128.load(o2); c21 = v128.load(o2, 16); c30 = v128.load(o3); c31 = v128.load(o3, 16);
    } else if (mode == BIAS) {
      const q0 = addr(bias, (u / h) * NR), q1 = addr(bias, (u1 / h) * NR);
      const q2 = addr(bias, (u2 / h) * NR), q3 = addr(bias, (u3 / h) * NR);
      c00 = v128.load(q0); c01 = v128.load(q0, 16); c10 = v128.load(q1); c11 = v128.load(q1, 16);
      c20 = v128.load(q2); c21 = v128.load(q2, 16); c30 = v128.load(q3); c31 = v128.load(q3, 16);
    } else {
      c00 = f32x4.splat(0); c01 = c00;
      c10 = c00; c11 = c00; c20 = c00; c21 = c00; c30 = c00; c31 = c00;
    }
    let oa: usize = 0, ob: usize = 0;
    for (let kk = 0; kk < kc; kk++) {
      let a = v128.load32_splat(a0 + oa);
      c00 = madd(a, v128.load(b0 + ob), c00); c01 = madd(a, v128.load(b0 + ob, 16), c01);
      a = v128.load32_splat(a1 + oa);
      c10 = madd(a, v128.load(b1 + ob), c10); c11 = madd(a, v128.load(b1 + ob, 16), c11);
      a = v128.load32_splat(a2 + oa);
      c20 = madd(a, v128.load(b2 + ob), c20); c21 = madd(a, v128.load(b2 + ob, 16), c21);
      a = v128.load32_splat(a3 + oa);
      c30 = madd(a, v128.load(b3 + ob), c30); c31 = madd(a, v128.load(b3 + ob, 16), c31);
      oa += MR << 2;
      ob += NR << 2;
    }
    v128.store(o0, c00); v128.store(o0, c01, 16); v128.store(o1, c10); v128.store(o1, c11, 16);
    v128.store(o2, c20); v128.store(o2, c21, 16); v128.store(o3, c30); v128.store(o3, c31, 16);
  }
}

/** c[r][j] (row stride ldc floats) into lane r of a vector, for the rows r < h; 0 in the others. */
// @ts-ignore: decorator
@inline function gatherColumn(c: usize, ldc: i32, h: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(c));
  if (h > 1) v = f32x4.replace_lane(v, 1, load<f32>(addr(c, ldc)));
  if (h > 2) v = f32x4.replace_lane(v, 2, load<f32>(addr(c, 2 * ldc)));
  if (h > 3) v = f32x4.replace_lane(v, 3, load<f32>(addr(c, 3 * ldc)));
  return v;
}

// @ts-ignore: decorator
@inline function scatterColumn(v: v128, c: usize, ldc: i32, h: i32): void {
  store<f32>(c, f32x4.extract_lane(v, 0));
  if (h > 1) store<f32>(addr(c, ldc), f32x4.extract_lane(v, 1));
  if (h > 2) store<f32>(addr(c, 2 * ldc), f32x4.extract_lane(v, 2));
  if (h > 3) store<f32>(addr(c, 3 * ldc), f32x4.extract_lane(v, 3));
}

/** A column-edge unit's starting sums: c's column (LOAD), the bias of its column, or zeros. */
// @ts-ignore: decorator
@inline function colInit(mode: i32, o: usize, ldc: i32, h: i32, bias: usize): v128 {
  if (mode == LOAD) return gatherColumn(o, ldc, h);
  if (mode == BIAS) return v128.load32_splat(bias);
  return f32x4.splat(0);
}

/**
 * The last, partial B panel's w (1 or 2) columns against every row panel of the packed A block
 * (rows rows), each (row panel, column) one f32x4 chain over the panel's MR rows: per k, one
 * multiply-add per MR outputs, where a padded NR-column tile spends NR/w times that (the 65th column
 * of a 65-wide product cost a whole 8-wide panel). Eight chains at a time, sharing the column's B
 * value (4 row panels × 2 columns, or 8 × 1): four chains with a B value each left the multiply-adds
 * waiting on their latency. Lane r of a chain computes c[r][j] = madd(a[r], b[j], c[r][j]) in k
 * order, the operands and order of the padded tile's lane j, so the bits are the same. Row panels
 * past the end repeat the last one (the repeat stores the same values). pb: the partial panel's
 * packed B at this k block; c and bias at its first column.
 */
function edgeCols(block: usize, pb: usize, kc: i32, rows: i32, c: usize, ldc: i32, mode: i32, bias: usize, w: i32): void {
  const rp = (rows + MR - 1) / MR;
  const pStride = <usize>(kc * MR) << 2;
  const ld4 = MR * ldc;
  if (w == 2) {
    for (let p = 0; p < rp; p += 4) {
      const p1 = min(p + 1, rp - 1), p2 = min(p + 2, rp - 1), p3 = min(p + 3, rp - 1);
      const a0 = block + <usize>p * pStride, a1 = block + <usize>p1 * pStride;
      const a2 = block + <usize>p2 * pStride, a3 = block + <usize>p3 * pStride;
      const h0 = min(MR, rows - p * MR), h1 = min(MR, rows - p1 * MR);
      const h2 = min(MR, rows - p2 * MR), h3 = min(MR, rows - p3 * MR);
      const o0 = addr(c, p * ld4), o1 = addr(c, p1 * ld4), o2 = addr(c, p2 * ld4), o3 = addr(c, p3 * ld4);
      let c00 = colInit(mode, o0, ldc, h0, bias), c01 = colInit(mode, o0 + 4, ldc, h0, bias + 4);
      let c10 = colInit(mode, o1, ldc, h1, bias), c11 = colInit(mode, o1 + 4, ldc, h1, bias + 4);
      let c20 = colInit(mode, o2, ldc, h2, bias), c21 = colInit(mode, o2 + 4, ldc, h2, bias + 4);
      let c30 = colInit(mode, o3, ldc, h3, bias), c31 = colInit(mode, o3 + 4, ldc, h3, bias + 4);
      let oa: usize = 0, ob: usize = 0;
      for (let kk = 0; kk < kc; kk++) {
        const b0 = v128.load32_splat(pb + ob), b1 = v128.load32_splat(pb + ob, 4);
        let a = v128.load(a0 + oa);
        c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
        a = v128.load(a1 + oa);
        c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
        a = v128.load(a2 + oa);
        c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
        a = v128.load(a3 + oa);
        c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
        oa += MR << 2;
        ob += NR << 2;
      }
      scatterColumn(c00, o0, ldc, h0); scatterColumn(c01, o0 + 4, ldc, h0);
      scatterColumn(c10, o1, ldc, h1); scatterColumn(c11, o1 + 4, ldc, h1);
      scatterColumn(c20, o2, ldc, h2); scatterColumn(c21, o2 + 4, ldc, h2);
      scatterColumn(c30, o3, ldc, h3); scatterColumn(c31, o3 + 4, ldc, h3);
    }
  } else {
    for (let p = 0; p < rp; p += 8) {
      const p1 = min(p + 1, rp - 1), p2 = min(p + 2, rp - 1), p3 = min(p + 3, rp - 1);
      const p4 = min(p + 4, rp - 1), p5 = min(p + 5, rp - 1), p6 = min(p + 6, rp - 1), p7 = min(p + 7, rp - 1);
      const a0 = block + <usize>p * pStride, a1 = block + <usize>p1 * pStride;
      const a2 = block + <usize>p2 * pStride, a3 = block + <usize>p3 * pStride;
      const a4 = block + <usize>p4 * pStride, a5 = block + <usize>p5 * pStride;
      const a6 = block + <usize>p6 * pStride, a7 = block + <usize>p7 * pStride;
      let c0 = colInit(mode, addr(c, p * ld4), ldc, min(MR, rows - p * MR), bias);
      let c1 = colInit(mode, addr(c, p1 * ld4), ldc, min(MR, rows - p1 * MR), bias);
      let c2 = colInit(mode, addr(c, p2 * ld4), ldc, min(MR, rows - p2 * MR), bias);
      let c3 = colInit(mode, addr(c, p3 * ld4), ldc, min(MR, rows - p3 * MR), bias);
      let c4 = colInit(mode, addr(c, p4 * ld4), ldc, min(MR, rows - p4 * MR), bias);
      let c5 = colInit(mode, addr(c, p5 * ld4), ldc, min(MR, rows - p5 * MR), bias);
      let c6 = colInit(mode, addr(c, p6 * ld4), ldc, min(MR, rows - p6 * MR), bias);
      let c7 = colInit(mode, addr(c, p7 * ld4), ldc, min(MR, rows - p7 * MR), bias);
      let oa: usize = 0, ob: usize = 0;
      for (let kk = 0; kk < kc; kk++) {
        const b = v128.load32_splat(pb + ob);
        c0 = madd(v128.load(a0 + oa), b, c0); c1 = madd(v128.load(a1 + oa), b, c1);
        c2 = madd(v128.load(a2 + oa), b, c2); c3 = madd(v128.load(a3 + oa), b, c3);
        c4 = madd(v128.load(a4 + oa), b, c4); c5 = madd(v128.load(a5 + oa), b, c5);
        c6 = madd(v128.load(a6 + oa), b, c6); c7 = madd(v128.load(a7 + oa), b, c7);
        oa += MR << 2;
        ob += NR << 2;
      }
      scatterColumn(c0, addr(c, p * ld4), ldc, min(MR, rows - p * MR));
      scatterColumn(c1, addr(c, p1 * ld4), ldc, min(MR, rows - p1 * MR));
      scatterColumn(c2, addr(c, p2 * ld4), ldc, min(MR, rows - p2 * MR));
      scatterColumn(c3, addr(c, p3 * ld4), ldc, min(MR, rows - p3 * MR));
      scatterColumn(c4, addr(c, p4 * ld4), ldc, min(MR, rows - p4 * MR));
      scatterColumn(c5, addr(c, p5 * ld4), ldc, min(MR, rows - p5 * MR));
      scatterColumn(c6, addr(c, p6 * ld4), ldc, min(MR, rows - p6 * MR));
      scatterColumn(c7, addr(c, p7 * ld4), ldc, min(MR, rows - p7 * MR));
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
 * B was packed by matmulPackB (shared by every batch when sharedB), or, with flag 32, `packed` is
 * B itself (batch entries strideB apart; flag 64 transB) and each chunk, its batch entry's only
 * one, packs that entry's B into the end of its slot's A area. scratch: i32 slot and chunk
 * counters, then one SLOT_BYTES slot per thread.
 */
export function matmulCompute(a: usize, packed: usize, out: usize, pre: usize, bias: usize, rowSums: usize, m: i32,
  n: i32, k: i32, transA: i32, strideA: i32, sharedB: i32, strideB: i32, flags: i32, scratch: usize, chunkRows: i32,
  kcBlock: i32, chunks: i32, claim: i32, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * SLOT_BYTES;
  const tile = addr(slot, MC_MAX * KC_MAX);
  const perBatch = (m + chunkRows - 1) / chunkRows;
  const panels = (n + NR - 1) / NR, fullPanels = n / NR;
  const accumulate = flags & 1, hasBias = flags & 2, act = flags & 4, sums = flags & 8, keep = flags & 16;
  const ownB = flags & 32, transB = (flags >> 6) & 1;
  // With ownB the chunk's B sits at the end of the slot's A area (the JS side checked that both fit).
  const ownPacked = addr(slot, MC_MAX * KC_MAX - panels * k * NR);
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
    const rows = min(chunkRows, m - i0), fullRows = rows - rows % MR;
    const ab = addr(a, bi * strideA);
    // The product (and bias) lands in pre when the pre-activation is kept; the epilogue then reads it
    // back while it is still in cache and writes GELU to out, in the same pass as without it.
    const ob = addr(out, (bi * m + i0) * n);
    const cb = keep ? addr(pre, (bi * m + i0) * n) : ob;
    let bb = sharedB ? packed : addr(packed, bi * panels * k * NR);
    if (ownB) {
      // packed is B itself: this chunk is its batch entry's only one, so the entry's B is packed
      // here, just before use, and is still in L1/L2 for it; packed all at once up front, a batch of
      // entries (192 × 65×64 attention products: 3.5 MiB) left L2 before the first was used.
      const src = addr(packed, bi * strideB);
      for (let jp = 0; jp < panels; jp++) packPanel(src, addr(ownPacked, jp * k * NR), n, k, transB, jp * NR);
      bb = ownPacked;
    }
    let p0 = 0;
    do {
      const kc = min(kcBlock, k - p0);
      packA(ab, slot, m, k, transA, i0, rows, p0, kc);
      if (sums) sumPacked(slot, kc, rows, addr(rowSums, i0), p0 > 0);
      const mode = p0 > 0 || accumulate ? LOAD : hasBias ? BIAS : ZERO;
      for (let jp = 0; jp < fullPanels; jp++) {
        const j0 = jp * NR;
        const pb = addr(bb, (jp * k + p0) * NR);
        for (let r0 = 0; r0 < fullRows; r0 += MR) micro(addr(slot, r0 * kc), pb, kc, addr(cb, r0 * n + j0), n, mode,
          addr(bias, j0));
      }
      if (fullRows < rows && fullPanels > 0) {
        const h = rows - fullRows, pa = addr(slot, fullRows * kc), c = addr(cb, fullRows * n);
        if (h <= EDGE_ROWS_MAX) edgeRows(pa, addr(bb, p0 * NR), <usize>(k * NR) << 2, kc, c, n, mode, bias, h, fullPanels);
        else {
          for (let jp = 0; jp < fullPanels; jp++) {
            const j0 = jp * NR;
            edgeTile(pa, addr(bb, (jp * k + p0) * NR), kc, addr(c, j0), n, mode, addr(bias, j0), h, NR, tile);
          }
        }
      }
      if (fullPanels < panels) {
        const j0 = fullPanels * NR, w = n - j0;
        const pb = addr(bb, (fullPanels * k + p0) * NR);
        if (w <= EDGE_COLS_MAX) edgeCols(slot, pb, kc, rows, addr(cb, j0), n, mode, addr(bias, j0), w);
        else {
          for (let r0 = 0; r0 < rows; r0 += MR) {
            edgeTile(addr(slot, r0 * kc), pb, kc, addr(cb, r0 * n + j0), n, mode, addr(bias, j0), min(MR, rows - r0), w,
              tile);
          }
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
