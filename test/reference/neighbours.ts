// Naive float64 references for the neighbour searches (tests only).

/** Every score of row i: <x_i, y_j> in float64. */
export function scoresRef(x: ArrayLike<number>, y: ArrayLike<number>, i: number, k: number, d: number): Float64Array {
  const s = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let acc = 0;
    for (let l = 0; l < d; l++) acc += x[i * d + l] * y[j * d + l];
    s[j] = acc;
  }
  return s;
}

/** Max inner product per row of x over the rows of y, first index on ties; -Infinity / -1 when none. */
export function nearestNeighborRef(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  m: number,
  k: number,
  d: number,
  excludeSelf: boolean,
): { values: Float64Array; indices: Int32Array; second: Float64Array } {
  const values = new Float64Array(m).fill(-Infinity);
  const second = new Float64Array(m).fill(-Infinity);
  const indices = new Int32Array(m).fill(-1);
  for (let i = 0; i < m; i++) {
    const s = scoresRef(x, y, i, k, d);
    for (let j = 0; j < k; j++) {
      if (excludeSelf && j === i) continue;
      if (s[j] > values[i]) {
        second[i] = values[i];
        values[i] = s[j];
        indices[i] = j;
      } else if (s[j] > second[i]) {
        second[i] = s[j];
      }
    }
  }
  return { values, indices, second };
}

/** The k largest per row, descending, lowest index first on ties. */
export function topkRef(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  k: number,
): { values: number[]; indices: number[] } {
  const values: number[] = [];
  const indices: number[] = [];
  for (let r = 0; r < rows; r++) {
    const order = [...Array(cols).keys()].sort((a, b) => x[r * cols + b] - x[r * cols + a] || a - b);
    for (const j of order.slice(0, k)) {
      values.push(x[r * cols + j]);
      indices.push(j);
    }
  }
  return { values, indices };
}

/** Each row's m best other rows of x [k, d] (value descending, then index ascending), -1-padded. */
export function selfTopRef(
  x: ArrayLike<number>,
  k: number,
  d: number,
  m: number,
  excludeSelf: boolean,
): { scores: Float64Array[]; lists: number[][] } {
  const scores: Float64Array[] = [];
  const lists: number[][] = [];
  for (let i = 0; i < k; i++) {
    const s = scoresRef(x, x, i, k, d);
    const order = [...Array(k).keys()].filter((j) => !(excludeSelf && j === i)).sort((a, b) => s[b] - s[a] || a - b);
    const list = order.slice(0, m);
    while (list.length < m) list.push(-1);
    scores.push(s);
    lists.push(list);
  }
  return { scores, lists };
}
