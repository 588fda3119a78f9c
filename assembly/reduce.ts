// Reductions of x viewed as [outer, len, inner] to out [outer, inner]. Op codes follow
// REDUCE_CODES: 0 sum, 1 max, 2 min, 3 sum of squares. Work units: for inner == 1 one unit per
// outer row (SIMD along len); otherwise one unit per (outer, 64-column chunk) (SIMD across inner).
// Each output is accumulated in a fixed order, so results do not depend on the thread count.
import { ldf, stf, sti } from './common';

const CHUNK = 64;

// @ts-ignore: decorator
@inline function combine(op: i32, acc: f32, v: f32): f32 {
  if (op == 0) return acc + v;
  if (op == 1) return Mathf.max(acc, v);
  if (op == 2) return Mathf.min(acc, v);
  return acc + v * v;
}

// @ts-ignore: decorator
@inline function combineVec(op: i32, acc: v128, v: v128): v128 {
  if (op == 0) return f32x4.add(acc, v);
  if (op == 1) return f32x4.max(acc, v);
  if (op == 2) return f32x4.min(acc, v);
  return f32x4.add(acc, f32x4.mul(v, v));
}

// @ts-ignore: decorator
@inline function identity(op: i32): f32 {
  if (op == 1) return -Infinity;
  if (op == 2) return Infinity;
  return 0;
}

/** Units for the given shape (the JS side uses the same rule to size the parallel loop). */
export function reduceUnits(outer: i32, inner: i32): i32 {
  return inner == 1 ? outer : outer * ((inner + CHUNK - 1) / CHUNK);
}

export function reduce(x: usize, out: usize, op: i32, outer: i32, len: i32, inner: i32, start: i32, end: i32): void {
  const id = identity(op);
  if (inner == 1) {
    for (let o = start; o < end; o++) {
      const p = x + (<usize>o * <usize>len << 2);
      let acc4 = f32x4.splat(id);
      let l = 0;
      for (; l + 4 <= len; l += 4) acc4 = combineVec(op, acc4, v128.load(p + (<usize>l << 2)));
      let acc = id;
      // lanes combined in a fixed order (sum of squares already squared its terms)
      const cop = op == 3 ? 0 : op;
      acc = combine(cop, acc, f32x4.extract_lane(acc4, 0));
      acc = combine(cop, acc, f32x4.extract_lane(acc4, 1));
      acc = combine(cop, acc, f32x4.extract_lane(acc4, 2));
      acc = combine(cop, acc, f32x4.extract_lane(acc4, 3));
      for (; l < len; l++) acc = combine(op, acc, ldf(p, l));
      stf(out, o, acc);
    }
    return;
  }
  const chunks = (inner + CHUNK - 1) / CHUNK;
  for (let u = start; u < end; u++) {
    const o = u / chunks;
    const c0 = (u % chunks) * CHUNK;
    const c1 = min(c0 + CHUNK, inner);
    const po = out + (<usize>(o * inner) << 2);
    for (let c = c0; c < c1; c++) stf(po, c, id);
    for (let l = 0; l < len; l++) {
      const px = x + (<usize>((o * len + l) * inner) << 2);
      let c = c0;
      for (; c + 4 <= c1; c += 4) {
        const a = <usize>c << 2;
        v128.store(po + a, combineVec(op, v128.load(po + a), v128.load(px + a)));
      }
      for (; c < c1; c++) stf(po, c, combine(op, ldf(po, c), ldf(px, c)));
    }
  }
}

/** First index of the max (op 0) or min (op 1) along len; one unit per output. */
export function argReduce(x: usize, out: usize, op: i32, outer: i32, len: i32, inner: i32, start: i32, end: i32): void {
  for (let u = start; u < end; u++) {
    const o = u / inner;
    const i = u % inner;
    const base = o * len * inner + i;
    let best = ldf(x, base);
    let bi = 0;
    for (let l = 1; l < len; l++) {
      const v = ldf(x, base + l * inner);
      if (op == 0 ? v > best : v < best) {
        best = v;
        bi = l;
      }
    }
    sti(out, u, bi);
  }
}
