// Softmax and log-softmax over the last axis of [rows, cols], and their gradients. One work unit
// per row (threads split rows), SIMD along cols. Stable form: e = exp(x − max), so no exp overflows
// however large the logits are. exp is common.ts's vector polynomial; the scalar tails use the same
// function so a value does not depend on whether it fell in a vector or a tail.
import { expVec, madd } from './common';

// @ts-ignore: decorator
@inline function exps(x: f32): f32 {
  return f32x4.extract_lane(expVec(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function rowMax(p: usize, cols: i32): f32 {
  let m4 = f32x4.splat(-Infinity);
  let c = 0;
  for (; c + 4 <= cols; c += 4) m4 = f32x4.pmax(m4, v128.load(p + (<usize>c << 2)));
  let m = Mathf.max(Mathf.max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)),
    Mathf.max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
  for (; c < cols; c++) m = Mathf.max(m, load<f32>(p + (<usize>c << 2)));
  return m;
}

/** Σ exp(x − m) over the row; when `keep`, the exponentials are written to q as well. */
// @ts-ignore: decorator
@inline function expSum(p: usize, q: usize, cols: i32, m: f32, keep: bool): f32 {
  const vm = f32x4.splat(m);
  // two accumulators: a long row is one dependency chain otherwise
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let c = 0;
  for (; c + 8 <= cols; c += 8) {
    const o = <usize>c << 2;
    const e0 = expVec(f32x4.sub(v128.load(p + o), vm));
    const e1 = expVec(f32x4.sub(v128.load(p + o + 16), vm));
    if (keep) {
      v128.store(q + o, e0);
      v128.store(q + o + 16, e1);
    }
    s0 = f32x4.add(s0, e0);
    s1 = f32x4.add(s1, e1);
  }
  for (; c + 4 <= cols; c += 4) {
    const o = <usize>c << 2;
    const e0 = expVec(f32x4.sub(v128.load(p + o), vm));
    if (keep) v128.store(q + o, e0);
    s0 = f32x4.add(s0, e0);
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; c < cols; c++) {
    const o = <usize>c << 2;
    const e = exps(load<f32>(p + o) - m);
    if (keep) store<f32>(q + o, e);
    s += e;
  }
  return s;
}

/** q[0..cols) = softmax of p[0..cols) (q may be p). Also the attention kernel's row softmax. */
// @ts-ignore: decorator
@inline export function softmaxRow(p: usize, q: usize, cols: i32): void {
  const inv: f32 = 1.0 / expSum(p, q, cols, rowMax(p, cols), true);
  const vi = f32x4.splat(inv);
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const o = <usize>c << 2;
    v128.store(q + o, f32x4.mul(v128.load(q + o), vi));
  }
  for (; c < cols; c++) store<f32>(q + (<usize>c << 2), load<f32>(q + (<usize>c << 2)) * inv);
}

export function softmax(x: usize, out: usize, cols: i32, log: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const p = x + off, q = out + off;
    if (log) {
      const m = rowMax(p, cols);
      // x − (max + log Σ): one subtraction per element
      const sh = m + Mathf.log(expSum(p, q, cols, m, false));
      const vs = f32x4.splat(sh);
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        v128.store(q + o, f32x4.sub(v128.load(p + o), vs));
      }
      for (; c < cols; c++) store<f32>(q + (<usize>c << 2), load<f32>(p + (<usize>c << 2)) - sh);
    } else softmaxRow(p, q, cols);
  }
}

/**
 * softmax: dx = y ⊙ (dy − Σ dy·y); log-softmax (y = log p): dx = dy − exp(y) · Σ dy.
 * dx may alias dy (each element is read before it is written).
 */
export function softmaxGrad(y: usize, dy: usize, dx: usize, cols: i32, log: i32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const py = y + off, pg = dy + off, pd = dx + off;
    let s4 = f32x4.splat(0);
    let c = 0;
    if (log) {
      for (; c + 4 <= cols; c += 4) s4 = f32x4.add(s4, v128.load(pg + (<usize>c << 2)));
    } else {
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        s4 = madd(v128.load(pg + o), v128.load(py + o), s4);
      }
    }
    let s = hsum(s4);
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      s += log ? load<f32>(pg + o) : load<f32>(pg + o) * load<f32>(py + o);
    }
    const vs = f32x4.splat(s);
    c = 0;
    if (log) {
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        v128.store(pd + o, f32x4.sub(v128.load(pg + o), f32x4.mul(expVec(v128.load(py + o)), vs)));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        store<f32>(pd + o, load<f32>(pg + o) - exps(load<f32>(py + o)) * s);
      }
    } else {
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        v128.store(pd + o, f32x4.mul(v128.load(py + o), f32x4.sub(v128.load(pg + o), vs)));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        store<f32>(pd + o, load<f32>(py + o) * (load<f32>(pg + o) - s));
      }
    }
  }
}
