// Nearest neighbours of a set of rows among themselves (KoLeo-proto's K prototypes), keeping each
// row's m best candidates, and the search restricted to such cached candidates.
//
// The score matrix is symmetric, so nnSelfTop computes each pair once: the rows, packed by nnPack
// into panels of 8 ([d][8]), serve both as the 4-row register tiles (half a panel) and as the
// 8-column panels, and block (I, J ≥ I) updates rows of panel I and, when J > I, rows of panel J.
// Every score is the same madd chain over l = 0..d-1 as nnSearch's, and a·b = b·a exactly, so
// the scores, and the neighbours chosen, are bit-identical to the one-sided search.
//
// Each row keeps a list of its m best (value descending, then index ascending); a cheap vector
// test against the list's last entry (the threshold) lets almost every tile skip the scalar
// insertion. Threads claim column chunks (an L2-sized run of panels) from a shared counter and
// each writes into its own slot; nnSelfMerge then merges the slots' lists per row. "Better" is a
// total order on (value, index), so the result does not depend on which thread saw which pair,
// nor on how many threads ran.
import { ldf, ldi, madd, stf, sti } from './common';

const PANEL = 8;
const NONE: i32 = 0x7fffffff; // the index of an empty list entry: every real index beats it

// @ts-ignore: decorator
@inline function better(v: f32, id: i32, w: f32, wid: i32): bool {
  return v > w || (v == w && id < wid);
}

/** Bytes of one slot for k rows (padded to whole panels) with m candidates each; slots stay
 *  64-byte aligned so the threshold vectors never straddle a cache line. */
// @ts-ignore: decorator
@inline function slotBytes(k: i32, m: i32): usize {
  const kp = (k + PANEL - 1) / PANEL * PANEL;
  return ((<usize>kp * 2 + <usize>k * m * 2 + 32) << 2) + 63 & ~<usize>63;
}

export function nnSelfSlotBytes(k: i32, m: i32): i32 {
  return <i32>slotBytes(k, m);
}

/**
 * Slot layout (f32 / i32 elements): thrV [kp], thrI [kp], lists' values [k·m], lists' indices
 * [k·m], a 4 × 8 tile. Padding rows get an infinite threshold so the vector test never fires
 * for them.
 */
function initSlot(slot: usize, k: i32, m: i32): void {
  const kp = (k + PANEL - 1) / PANEL * PANEL;
  const thrI = slot + (<usize>kp << 2);
  const lv = thrI + (<usize>kp << 2);
  const li = lv + (<usize>k * m << 2);
  for (let i = 0; i < kp; i++) {
    stf(slot, i, i < k ? -Infinity : Infinity);
    sti(thrI, i, NONE);
  }
  for (let e = 0; e < k * m; e++) {
    stf(lv, e, -Infinity);
    sti(li, e, NONE);
  }
}

/** Row `row` takes candidate (v, id), which beats its threshold. */
function insert(slot: usize, kp: i32, k: i32, m: i32, row: i32, v: f32, id: i32): void {
  const thrI = slot + (<usize>kp << 2);
  const lv = thrI + (<usize>kp << 2) + (<usize>row * m << 2);
  const li = lv + (<usize>k * m << 2);
  let pos = m - 1;
  while (pos > 0 && better(v, id, ldf(lv, pos - 1), ldi(li, pos - 1))) {
    stf(lv, pos, ldf(lv, pos - 1));
    sti(li, pos, ldi(li, pos - 1));
    pos--;
  }
  stf(lv, pos, v);
  sti(li, pos, id);
  stf(slot, row, ldf(lv, m - 1));
  sti(thrI, row, ldi(li, m - 1));
}

/**
 * Thread entry: claims a slot, then column chunks of `chunkPanels` panels, last (largest) first
 * so the tail of the work is small chunks. counters: i32 slot counter, i32 chunk counter. start/end
 * are unused (the JS side runs this over one unit per thread it wants).
 */
export function nnSelfTop(packed: usize, slots: usize, counters: usize, k: i32, d: i32, m: i32, excludeSelf: i32,
  chunkPanels: i32, start: i32, end: i32): void {
  const slot = slots + <usize>atomic.add<i32>(counters, 1) * slotBytes(k, m);
  initSlot(slot, k, m);
  const panels = (k + PANEL - 1) / PANEL;
  const chunks = (panels + chunkPanels - 1) / chunkPanels;
  for (;;) {
    const c = chunks - 1 - atomic.add<i32>(counters, 1, 4);
    if (c < 0) break;
    const j0 = c * chunkPanels;
    const j1 = min(panels, j0 + chunkPanels);
    for (let pi = 0; pi < j1; pi++) {
      for (let pj = max(pi, j0); pj < j1; pj++) {
        tile(packed, slot, k, d, m, excludeSelf != 0, pi, pj, 0);
        if (pi * PANEL + 4 < k) tile(packed, slot, k, d, m, excludeSelf != 0, pi, pj, 1);
      }
    }
  }
}

/** Rows 8·pi + 4·half .. + 3 against the 8 rows of panel pj. */
function tile(packed: usize, slot: usize, k: i32, d: i32, m: i32, excl: bool, pi: i32, pj: i32, half: i32): void {
  const panelBytes = <usize>d * PANEL << 2;
  let pa = packed + <usize>pi * panelBytes + (<usize>half << 4);
  let pb = packed + <usize>pj * panelBytes;
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (let l = 0; l < d; l++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    pa += PANEL << 2;
    pb += PANEL << 2;
  }
  const i0 = pi * PANEL + half * 4;
  const j0 = pj * PANEL;
  // A candidate can only enter a list if it is at least that list's threshold. Bit 8r + q of
  // `bits` marks score (r, q) as worth the scalar check, for its row's list or its column's.
  const rows = slot + (<usize>i0 << 2);
  const diagonal = pi == pj;
  let q0 = f32x4.splat(Infinity), q1 = q0;
  if (!diagonal) {
    const cols = slot + (<usize>j0 << 2);
    q0 = v128.load(cols);
    q1 = v128.load(cols, 16);
  }
  let t = v128.load32_splat(rows);
  let bits = flags(c00, c01, t, q0, q1);
  t = v128.load32_splat(rows, 4);
  bits |= flags(c10, c11, t, q0, q1) << 8;
  t = v128.load32_splat(rows, 8);
  bits |= flags(c20, c21, t, q0, q1) << 16;
  t = v128.load32_splat(rows, 12);
  bits |= flags(c30, c31, t, q0, q1) << 24;
  if (bits == 0) return;
  const kp = (k + PANEL - 1) / PANEL * PANEL;
  const thrI = slot + (<usize>kp << 2);
  const buf = thrI + (<usize>kp << 2) + (<usize>k * m << 3);
  v128.store(buf, c00); v128.store(buf, c01, 16);
  v128.store(buf, c10, 32); v128.store(buf, c11, 48);
  v128.store(buf, c20, 64); v128.store(buf, c21, 80);
  v128.store(buf, c30, 96); v128.store(buf, c31, 112);
  // Set bits in increasing (r, q) order, as the full scan would visit them.
  while (bits != 0) {
    const e = <i32>ctz(bits);
    bits &= bits - 1;
    const i = i0 + (e >> 3);
    const j = j0 + (e & 7);
    if (i >= k || j >= k || (excl && i == j)) continue;
    const v = ldf(buf, e);
    if (better(v, j, ldf(slot, i), ldi(thrI, i))) insert(slot, kp, k, m, i, v, j);
    if (!diagonal && better(v, i, ldf(slot, j), ldi(thrI, j))) insert(slot, kp, k, m, j, v, i);
  }
}

/** 8 bits for one tile row: lane q set where score q reaches the row's threshold t or column q's. */
// @ts-ignore: decorator
@inline function flags(lo: v128, hi: v128, t: v128, q0: v128, q1: v128): u32 {
  const a = v128.or(f32x4.ge(lo, t), f32x4.ge(lo, q0));
  const b = v128.or(f32x4.ge(hi, t), f32x4.ge(hi, q1));
  return <u32>i32x4.bitmask(a) | <u32>i32x4.bitmask(b) << 4;
}

/**
 * Row r's final list: slot 0's list with every other slot's entries inserted (each pair sits in
 * exactly one slot, so there are no duplicates; rows are disjoint across threads, so slot 0 is
 * updated in place). outVal/outIdx get the best (-inf / -1 when the best is -inf or missing, as
 * nnSearch); cand (when not 0) gets the m indices, -1 for missing entries.
 */
export function nnSelfMerge(slots: usize, nslots: i32, k: i32, m: i32, outVal: usize, outIdx: usize, cand: usize,
  start: i32, end: i32): void {
  const kp = (k + PANEL - 1) / PANEL * PANEL;
  const sb = slotBytes(k, m);
  const thrI = slots + (<usize>kp << 2);
  for (let r = start; r < end; r++) {
    const off = (<usize>kp << 3) + (<usize>r * m << 2);
    for (let s = 1; s < nslots; s++) {
      const lv = slots + <usize>s * sb + off;
      const li = lv + (<usize>k * m << 2);
      for (let c = 0; c < m; c++) {
        const v = ldf(lv, c), id = ldi(li, c);
        if (!better(v, id, ldf(slots, r), ldi(thrI, r))) break; // the rest of a sorted list is worse
        insert(slots, kp, k, m, r, v, id);
      }
    }
    const lv = slots + off;
    const li = lv + (<usize>k * m << 2);
    const v = ldf(lv, 0), id = ldi(li, 0);
    const none = id == NONE || v == -Infinity;
    stf(outVal, r, none ? -Infinity : v);
    sti(outIdx, r, none ? -1 : id);
    if (cand) {
      for (let c = 0; c < m; c++) {
        const e = ldi(li, c);
        sti(cand, r * m + c, e == NONE ? -1 : e);
      }
    }
  }
}

/**
 * Each row's best among its cached candidates cand[r·m .. r·m + m) (indices into the same rows, -1
 * for none): the same madd chain per score as the full search, so where the true neighbour is
 * among the candidates the result is bit-identical to it. Four candidates share a vector; their
 * rows are read 4 features at a time and transposed in registers.
 */
export function nnCandidates(x: usize, cand: usize, outVal: usize, outIdx: usize, k: i32, d: i32, m: i32,
  start: i32, end: i32): void {
  const rowBytes = <usize>d << 2;
  for (let r = start; r < end; r++) {
    const xr = x + <usize>r * rowBytes;
    let bv: f32 = -Infinity, bi = NONE;
    for (let c0 = 0; c0 < m; c0 += 4) {
      const ids = cand + (<usize>(r * m + c0) << 2);
      const n = min(4, m - c0);
      const j0 = ldi(ids, 0), j1 = n > 1 ? ldi(ids, 1) : -1, j2 = n > 2 ? ldi(ids, 2) : -1, j3 = n > 3 ? ldi(ids, 3) : -1;
      // Missing candidates read row r itself; their lanes are ignored below.
      const p0 = x + <usize>(j0 < 0 ? r : j0) * rowBytes, p1 = x + <usize>(j1 < 0 ? r : j1) * rowBytes;
      const p2 = x + <usize>(j2 < 0 ? r : j2) * rowBytes, p3 = x + <usize>(j3 < 0 ? r : j3) * rowBytes;
      let acc = f32x4.splat(0);
      let l = 0;
      for (; l + 4 <= d; l += 4) {
        const o = <usize>l << 2;
        const r0 = v128.load(p0 + o), r1 = v128.load(p1 + o), r2 = v128.load(p2 + o), r3 = v128.load(p3 + o);
        const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
        acc = madd(v128.load32_splat(xr + o), f32x4.shuffle(t0, t2, 0, 1, 4, 5), acc);
        acc = madd(v128.load32_splat(xr + o, 4), f32x4.shuffle(t0, t2, 2, 3, 6, 7), acc);
        acc = madd(v128.load32_splat(xr + o, 8), f32x4.shuffle(t1, t3, 0, 1, 4, 5), acc);
        acc = madd(v128.load32_splat(xr + o, 12), f32x4.shuffle(t1, t3, 2, 3, 6, 7), acc);
      }
      for (; l < d; l++) {
        const o = <usize>l << 2;
        let b = f32x4.splat(load<f32>(p0 + o));
        b = f32x4.replace_lane(b, 1, load<f32>(p1 + o));
        b = f32x4.replace_lane(b, 2, load<f32>(p2 + o));
        b = f32x4.replace_lane(b, 3, load<f32>(p3 + o));
        acc = madd(v128.load32_splat(xr + o), b, acc);
      }
      let v = f32x4.extract_lane(acc, 0);
      if (j0 >= 0 && better(v, j0, bv, bi)) { bv = v; bi = j0; }
      v = f32x4.extract_lane(acc, 1);
      if (j1 >= 0 && better(v, j1, bv, bi)) { bv = v; bi = j1; }
      v = f32x4.extract_lane(acc, 2);
      if (j2 >= 0 && better(v, j2, bv, bi)) { bv = v; bi = j2; }
      v = f32x4.extract_lane(acc, 3);
      if (j3 >= 0 && better(v, j3, bv, bi)) { bv = v; bi = j3; }
    }
    const none = bi == NONE || bv == -Infinity;
    stf(outVal, r, none ? -Infinity : bv);
    sti(outIdx, r, none ? -1 : bi);
  }
}
