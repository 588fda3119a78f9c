// Naive float64 references for reductions (tests only).
export function reduceAxis(
  x: Float64Array,
  shape: number[],
  axis: number,
  f: (acc: number, v: number) => number,
  init: number,
): Float64Array {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const len = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = init;
      for (let l = 0; l < len; l++) acc = f(acc, x[(o * len + l) * inner + i]);
      out[o * inner + i] = acc;
    }
  }
  return out;
}

/** Reduces several axes (descending, so indices stay valid). */
export function reduceAxes(
  x: Float64Array,
  shape: number[],
  axes: number[],
  f: (acc: number, v: number) => number,
  init: number,
): Float64Array {
  let cur = x;
  const s = [...shape];
  for (const a of [...axes].sort((p, q) => q - p)) {
    cur = reduceAxis(cur, s, a, f, init);
    s[a] = 1;
  }
  return cur;
}

export function argAxis(
  x: Float64Array,
  shape: number[],
  axis: number,
  better: (a: number, b: number) => boolean,
): number[] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const len = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let bi = 0;
      for (let l = 1; l < len; l++) if (better(x[(o * len + l) * inner + i], x[(o * len + bi) * inner + i])) bi = l;
      out.push(bi);
    }
  }
  return out;
}
