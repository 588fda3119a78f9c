// Nearest neighbour by inner product and per-row top-k.
//
// nearestNeighbor never materialises the m × k score matrix. nnPack copies y into panels of 8
// rows stored [d][8] (one f32x4 load gives 4 rows' values at one feature). nnSearch then walks the
// panels in blocks that fit in L2; within a block every x tile of 4 rows runs a 4 × 8 register
// tile over each panel — each score is one madd chain over l = 0..d-1, identical for every pair,
// so exact ties compare equal — and folds the scores into a per-lane running max/argmax. Per-lane
// maxima see their indices in increasing order and keep the first on ties; the final lane
// reduction and the merge with earlier blocks prefer the lower index: the result is the first
// maximiser. Two kernel calls in all, because every fork-join of the thread pool costs a wake-up.
import { ldf, ldi, madd, stf, sti } from './common';

const PANEL = 8;
const TILE = 4;

/** Panel p holds y rows 8p .. 8p + 7 as [d][8]; rows ≥ k read 0. */
export function nnPack(y: usize, packed: usize, d: i32, k: i32, start: i32, end: i32): void {
  for (let p = start; p < end; p++) {
    const dst = packed + (<usize>p * <usize>d * PANEL << 2);
    for (let q = 0; q < PANEL; q++) {
      const j = p * PANEL + q;
      if (j < k) {
        const src = y + (<usize>j * <usize>d << 2);
        for (let l = 0; l < d; l++) stf(dst, l * PANEL + q, ldf(src, l));
      } else {
        for (let l = 0; l < d; l++) stf(dst, l * PANEL + q, 0);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function beats(v: f32, id: i32, best: f32, bestId: i32): bool {
  return id >= 0 && (bestId < 0 || v > best || (v == best && id < bestId));
}

/** Reduces one row's lane maxima to the first maximiser and merges it with earlier blocks. */
// @ts-ignore: decorator
@inline function finish(vals: v128, ids: v128, outVal: usize, outIdx: usize, i: i32, first: bool): void {
  let bv: f32 = -Infinity;
  let bi: i32 = -1;
  let v = f32x4.extract_lane(vals, 0), id = i32x4.extract_lane(ids, 0);
  if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  v = f32x4.extract_lane(vals, 1); id = i32x4.extract_lane(ids, 1);
  if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  v = f32x4.extract_lane(vals, 2); id = i32x4.extract_lane(ids, 2);
  if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  v = f32x4.extract_lane(vals, 3); id = i32x4.extract_lane(ids, 3);
  if (beats(v, id, bv, bi)) { bv = v; bi = id; }
  if (first || beats(bv, bi, ldf(outVal, i), ldi(outIdx, i))) {
    stf(outVal, i, bv);
    sti(outIdx, i, bi);
  }
}

/** Scores at masked lanes (rows past k, or j == i when excluding self) become -inf. */
// @ts-ignore: decorator
@inline function mask(c: v128, j: v128, kv: v128, i: i32, excl: bool): v128 {
  let valid = i32x4.lt_s(j, kv);
  if (excl) valid = v128.andnot(valid, i32x4.eq(j, i32x4.splat(i)));
  return v128.bitselect(c, f32x4.splat(-Infinity), valid);
}

/**
 * Unit u is x rows 4u .. 4u+3 against every packed panel, blockPanels panels at a time (the block
 * loop is outermost so a block stays in cache across the thread's tiles). outVal/outIdx carry the
 * running result between blocks; a row with no candidate ends with -inf / -1.
 */
export function nnSearch(x: usize, packed: usize, outVal: usize, outIdx: usize, m: i32, k: i32, d: i32,
  excludeSelf: i32, blockPanels: i32, start: i32, end: i32): void {
  const panels = (k + PANEL - 1) / PANEL;
  for (let p0 = 0; p0 < panels; p0 += blockPanels) {
    const p1 = min(p0 + blockPanels, panels);
    for (let u = start; u < end; u++) searchTile(x, packed, outVal, outIdx, m, k, d, excludeSelf != 0, p0, p1, u * TILE);
  }
}

function searchTile(x: usize, packed: usize, outVal: usize, outIdx: usize, m: i32, k: i32, d: i32, excl: bool,
  p0: i32, p1: i32, i0: i32): void {
  const first = p0 == 0;
  const kv = i32x4.splat(k);
  const rowBytes = <usize>d << 2;
  const panelBytes = <usize>d * PANEL << 2;
  const ninf = f32x4.splat(-Infinity);
  // A short last tile repeats its last row; the copies' results are not stored.
  const px0 = x + <usize>i0 * rowBytes;
  const px1 = x + <usize>min(i0 + 1, m - 1) * rowBytes;
  const px2 = x + <usize>min(i0 + 2, m - 1) * rowBytes;
  const px3 = x + <usize>min(i0 + 3, m - 1) * rowBytes;
  let bv0 = ninf, bv1 = ninf, bv2 = ninf, bv3 = ninf;
  let bi0 = i32x4.splat(-1), bi1 = bi0, bi2 = bi0, bi3 = bi0;
  for (let p = p0; p < p1; p++) {
    const pp = packed + <usize>p * panelBytes;
    let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (let l = 0; l < d; l++) {
      const pb = pp + (<usize>l << 5);
      const b0 = v128.load(pb);
      const b1 = v128.load(pb, 16);
      const o = <usize>l << 2;
      let a = v128.load32_splat(px0 + o);
      c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
      a = v128.load32_splat(px1 + o);
      c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
      a = v128.load32_splat(px2 + o);
      c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
      a = v128.load32_splat(px3 + o);
      c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    }
    const jb = p * PANEL;
    const jlo = i32x4.add(i32x4.splat(jb), i32x4(0, 1, 2, 3));
    const jhi = i32x4.add(jlo, i32x4.splat(4));
    if (jb + PANEL > k || (excl && jb < i0 + TILE && jb + PANEL > i0)) {
      c00 = mask(c00, jlo, kv, i0, excl); c01 = mask(c01, jhi, kv, i0, excl);
      c10 = mask(c10, jlo, kv, i0 + 1, excl); c11 = mask(c11, jhi, kv, i0 + 1, excl);
      c20 = mask(c20, jlo, kv, i0 + 2, excl); c21 = mask(c21, jhi, kv, i0 + 2, excl);
      c30 = mask(c30, jlo, kv, i0 + 3, excl); c31 = mask(c31, jhi, kv, i0 + 3, excl);
    }
    // Fold the panel's upper half into the lower (lower indices win ties), then into the running max.
    // A NaN in the lower half gives way to the upper (else a NaN row would hide the row 4 after it).
    let g = v128.or(f32x4.gt(c01, c00), f32x4.ne(c00, c00));
    let v = v128.bitselect(c01, c00, g);
    let id = v128.bitselect(jhi, jlo, g);
    g = f32x4.gt(v, bv0); bv0 = v128.bitselect(v, bv0, g); bi0 = v128.bitselect(id, bi0, g);
    g = v128.or(f32x4.gt(c11, c10), f32x4.ne(c10, c10)); v = v128.bitselect(c11, c10, g); id = v128.bitselect(jhi, jlo, g);
    g = f32x4.gt(v, bv1); bv1 = v128.bitselect(v, bv1, g); bi1 = v128.bitselect(id, bi1, g);
    g = v128.or(f32x4.gt(c21, c20), f32x4.ne(c20, c20)); v = v128.bitselect(c21, c20, g); id = v128.bitselect(jhi, jlo, g);
    g = f32x4.gt(v, bv2); bv2 = v128.bitselect(v, bv2, g); bi2 = v128.bitselect(id, bi2, g);
    g = v128.or(f32x4.gt(c31, c30), f32x4.ne(c30, c30)); v = v128.bitselect(c31, c30, g); id = v128.bitselect(jhi, jlo, g);
    g = f32x4.gt(v, bv3); bv3 = v128.bitselect(v, bv3, g); bi3 = v128.bitselect(id, bi3, g);
  }
  finish(bv0, bi0, outVal, outIdx, i0, first);
  if (i0 + 1 < m) finish(bv1, bi1, outVal, outIdx, i0 + 1, first);
  if (i0 + 2 < m) finish(bv2, bi2, outVal, outIdx, i0 + 2, first);
  if (i0 + 3 < m) finish(bv3, bi3, outVal, outIdx, i0 + 3, first);
}

/** v ranks above w: larger, and any number ranks above NaN (so NaN sorts last). */
// @ts-ignore: decorator
@inline function above(v: f32, w: f32): bool {
  return v > w || (w != w && v == v);
}

/**
 * The k largest of each row, descending, lowest index first on ties: a partial insertion sort
 * (values arrive in index order and only a strictly larger one moves ahead), O(cols · k) at worst.
 */
export function topk(x: usize, outVal: usize, outIdx: usize, cols: i32, k: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const px = x + (<usize>r * <usize>cols << 2);
    const pv = outVal + (<usize>r * <usize>k << 2);
    const pi = outIdx + (<usize>r * <usize>k << 2);
    let n = 0;
    for (let j = 0; j < cols; j++) {
      const v = ldf(px, j);
      let pos: i32;
      if (n == k) {
        if (!above(v, ldf(pv, k - 1))) continue;
        pos = k - 1;
      } else {
        pos = n++;
      }
      while (pos > 0 && above(v, ldf(pv, pos - 1))) {
        stf(pv, pos, ldf(pv, pos - 1));
        sti(pi, pos, ldi(pi, pos - 1));
        pos--;
      }
      stf(pv, pos, v);
      sti(pi, pos, j);
    }
  }
}
