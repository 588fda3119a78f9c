// Naive float64 references for the elementwise family (tests only).

export function erf(x: number): number {
  // High-accuracy series/continued-fraction free version: Abramowitz-Stegun 7.1.28 is not enough for
  // a reference, so use the Taylor series near 0 and the complementary asymptotics far out.
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let term = z,
      s = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      s += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * s;
  } else {
    // erfc continued fraction
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}

export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

export const UNARY: Record<string, (x: number, a: number, b: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  relu: (x) => (x > 0 ? x : 0),
  gelu,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  pow: (x, a) => Math.pow(x, a),
  affine: (x, a, b) => a * x + b,
  clamp: (x, a, b) => Math.min(Math.max(x, a), b),
  square: (x) => x * x,
  recip: (x) => 1 / x,
};

export const BINARY: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: Math.max,
  min: Math.min,
  pow: Math.pow,
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
};

export function broadcastShape(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Index into a tensor of `shape` for the broadcast multi-index `idx` of the output. */
export function broadcastIndex(idx: number[], shape: number[]): number {
  let off = 0;
  const lead = idx.length - shape.length;
  for (let d = 0; d < shape.length; d++) off = off * shape[d] + (shape[d] === 1 ? 0 : idx[lead + d]);
  return off;
}

export function unravel(i: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

export function binaryRef(
  f: (a: number, b: number) => number,
  a: Float64Array,
  as: number[],
  b: Float64Array,
  bs: number[],
): Float64Array {
  const shape = broadcastShape(as, bs);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    out[i] = f(a[broadcastIndex(idx, as)], b[broadcastIndex(idx, bs)]);
  }
  return out;
}

export function whereRef(
  c: Float64Array,
  cs: number[],
  a: Float64Array,
  as: number[],
  b: Float64Array,
  bs: number[],
): Float64Array {
  const shape = broadcastShape(broadcastShape(cs, as), bs);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    out[i] = c[broadcastIndex(idx, cs)] !== 0 ? a[broadcastIndex(idx, as)] : b[broadcastIndex(idx, bs)];
  }
  return out;
}
