// Elementwise kernels: fill, unary ops and their gradients, strided binary ops and where.
// Strided kernels see every operand as rank 6 (the JS side pads and collapses dims); a "row" is one
// run along the last dim, so threads split over rows.
import { ldf, stf, ldi, geluVec, geluGradVec, expVec, rowOffset } from './common';

export function fill(out: usize, value: f32, start: i32, end: i32): void {
  const v = f32x4.splat(value);
  let i = start;
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < end; i++) stf(out, i, value);
}

// @ts-ignore: decorator
@inline function unaryOp(op: i32, x: f32, a: f32, b: f32): f32 {
  // exp (1) and gelu (7) never get here: unary() runs them through the vector forms, tails included.
  switch (op) {
    case 0: return -x;
    case 2: return Mathf.log(x);
    case 3: return Mathf.sqrt(x);
    case 4: return 1.0 / Mathf.sqrt(x);
    case 5: return Mathf.abs(x);
    case 6: return x > 0 ? x : 0;
    case 8: return <f32>Math.tanh(<f64>x);
    case 9: return 1.0 / (1.0 + Mathf.exp(-x));
    case 10: return Mathf.pow(x, a);
    case 11: return a * x + b;
    case 12: return Mathf.min(Mathf.max(x, a), b);
    case 13: return x * x;
    case 14: return 1.0 / x;
    default: return NaN;
  }
}

export function unary(x: usize, out: usize, op: i32, a: f32, b: f32, start: i32, end: i32): void {
  let i = start;
  if (op == 11) {
    const va = f32x4.splat(a), vb = f32x4.splat(b);
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, f32x4.add(f32x4.mul(v128.load(x + o), va), vb));
    }
  } else if (op == 6) {
    const z = f32x4.splat(0);
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, f32x4.max(v128.load(x + o), z));
    }
  } else if (op == 13) {
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      const v = v128.load(x + o);
      v128.store(out + o, f32x4.mul(v, v));
    }
  } else if (op == 7) {
    // The tail goes through the vector form too, so an element's value never depends on where
    // the thread split fell (and equals the fused GELU of the matmul epilogue). Two vectors per
    // iteration: one GELU is a long dependency chain, and two in flight hide half its latency.
    for (; i + 8 <= end; i += 8) {
      const o = <usize>i << 2;
      const g0 = geluVec(v128.load(x + o)), g1 = geluVec(v128.load(x + o, 16));
      v128.store(out + o, g0);
      v128.store(out + o, g1, 16);
    }
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, geluVec(v128.load(x + o)));
    }
    for (; i < end; i++) stf(out, i, f32x4.extract_lane(geluVec(f32x4.splat(ldf(x, i))), 0));
    return;
  } else if (op == 1) {
    // the vector exp of softmax, also for the tail (Mathf.exp cost 2.7 ns an element)
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, expVec(v128.load(x + o)));
    }
    for (; i < end; i++) stf(out, i, f32x4.extract_lane(expVec(f32x4.splat(ldf(x, i))), 0));
    return;
  }
  for (; i < end; i++) stf(out, i, unaryOp(op, ldf(x, i), a, b));
}

// @ts-ignore: decorator
@inline function unaryDeriv(op: i32, x: f32, y: f32, a: f32, b: f32): f32 {
  // gelu (7) never gets here: unaryGrad() runs it through geluGradVec, tails included.
  switch (op) {
    case 0: return -1;
    case 1: return y;
    case 2: return 1.0 / x;
    case 3: return 0.5 / y;
    case 4: return -0.5 * y * y * y;
    case 5: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case 6: return x > 0 ? 1 : 0;
    case 8: return 1.0 - y * y;
    case 9: return y * (1.0 - y);
    case 10: return a * Mathf.pow(x, a - 1.0);
    case 11: return a;
    case 12: return x >= a && x <= b ? 1 : 0;
    case 13: return 2.0 * x;
    case 14: return -y * y;
    default: return NaN;
  }
}

export function unaryGrad(x: usize, y: usize, dy: usize, dx: usize, op: i32, a: f32, b: f32, start: i32, end: i32): void {
  if (op == 7) {
    let i = start;
    for (; i + 8 <= end; i += 8) {
      const o = <usize>i << 2;
      const d0 = f32x4.mul(v128.load(dy + o), geluGradVec(v128.load(x + o)));
      const d1 = f32x4.mul(v128.load(dy + o, 16), geluGradVec(v128.load(x + o, 16)));
      v128.store(dx + o, d0);
      v128.store(dx + o, d1, 16);
    }
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(dx + o, f32x4.mul(v128.load(dy + o), geluGradVec(v128.load(x + o))));
    }
    for (; i < end; i++) stf(dx, i, ldf(dy, i) * f32x4.extract_lane(geluGradVec(f32x4.splat(ldf(x, i))), 0));
    return;
  }
  for (let i = start; i < end; i++) {
    stf(dx, i, ldf(dy, i) * unaryDeriv(op, ldf(x, i), ldf(y, i), a, b));
  }
}

// @ts-ignore: decorator
@inline function binaryOp(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return Mathf.max(a, b);
    case 5: return Mathf.min(a, b);
    case 6: return Mathf.pow(a, b);
    case 7: return a > b ? 1 : 0;
    case 8: return a >= b ? 1 : 0;
    case 9: return a < b ? 1 : 0;
    case 10: return a <= b ? 1 : 0;
    case 11: return a == b ? 1 : 0;
    default: return NaN;
  }
}

// @ts-ignore: decorator
@inline function binaryVec(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    default: return f32x4.max(a, b);
  }
}

export function binary(a: usize, b: usize, out: usize, op: i32, shape: usize, aStrides: usize, bStrides: usize,
  start: i32, end: i32): void {
  const inner = ldi(shape, 5);
  const sa = ldi(aStrides, 5), sb = ldi(bStrides, 5);
  // Vector path for the ops whose SIMD form matches the scalar one bit for bit (max excluded: NaN/±0).
  const vec = op <= 3;
  for (let r = start; r < end; r++) {
    const pa = a + (<usize>rowOffset(r, shape, aStrides) << 2);
    const pb = b + (<usize>rowOffset(r, shape, bStrides) << 2);
    const po = out + (<usize>(r * inner) << 2);
    let i = 0;
    if (vec && sa == 1 && sb == 1) {
      for (; i + 4 <= inner; i += 4) {
        const o = <usize>i << 2;
        v128.store(po + o, binaryVec(op, v128.load(pa + o), v128.load(pb + o)));
      }
    } else if (vec && sa == 1 && sb == 0) {
      const vb = f32x4.splat(load<f32>(pb));
      for (; i + 4 <= inner; i += 4) {
        const o = <usize>i << 2;
        v128.store(po + o, binaryVec(op, v128.load(pa + o), vb));
      }
    } else if (vec && sa == 0 && sb == 1) {
      const va = f32x4.splat(load<f32>(pa));
      for (; i + 4 <= inner; i += 4) {
        const o = <usize>i << 2;
        v128.store(po + o, binaryVec(op, va, v128.load(pb + o)));
      }
    }
    for (; i < inner; i++) {
      stf(po, i, binaryOp(op, ldf(pa, i * sa), ldf(pb, i * sb)));
    }
  }
}

export function where(c: usize, a: usize, b: usize, out: usize, shape: usize, cStrides: usize, aStrides: usize,
  bStrides: usize, start: i32, end: i32): void {
  const inner = ldi(shape, 5);
  const sc = ldi(cStrides, 5), sa = ldi(aStrides, 5), sb = ldi(bStrides, 5);
  for (let r = start; r < end; r++) {
    const pc = c + (<usize>rowOffset(r, shape, cStrides) << 2);
    const pa = a + (<usize>rowOffset(r, shape, aStrides) << 2);
    const pb = b + (<usize>rowOffset(r, shape, bStrides) << 2);
    const po = out + (<usize>(r * inner) << 2);
    for (let i = 0; i < inner; i++) {
      stf(po, i, ldf(pc, i * sc) != 0 ? ldf(pa, i * sa) : ldf(pb, i * sb));
    }
  }
}
