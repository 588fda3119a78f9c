// Naive float64 references for the Winograd F(4×4, 3×3) transforms (tests only): the matrices of
// Lavin & Gray written out and multiplied in full, against the kernels' factored passes.
import type { Geom } from './conv.js';

const BT = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
const G = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 1, 1, 0],
  [0, 1, -1, 2, -2, 0],
  [0, 1, 1, 4, 4, 0],
  [0, 1, -1, 8, -8, 1],
];

/** L·X·Rᵀ for L [a][b], X [b][c], R [d][c]: [a][d]. */
function sandwich(L: number[][], X: number[][], R: number[][]): number[][] {
  return L.map((l) =>
    R.map((r) => {
      let s = 0;
      for (let i = 0; i < X.length; i++) for (let j = 0; j < r.length; j++) s += l[i] * X[i][j] * r[j];
      return s;
    }),
  );
}

export function tileGrid(g: Geom): { th: number; tw: number; n: number } {
  const th = Math.ceil(g.outH / 4),
    tw = Math.ceil(g.outW / 4);
  return { th, tw, n: g.batch * th * tw };
}

export const columnsFor = (count: number) => Math.ceil(count / 16) * 16;

/** u [36][R][S] = G g Gᵀ, g = w[r][s] or (flip) the 180° rotation of w[s][r]; w [O][C][3][3]. */
export function winogradWeightsRef(w: ArrayLike<number>, O: number, C: number, flip: boolean): Float64Array {
  const [R, S] = flip ? [C, O] : [O, C];
  const u = new Float64Array(36 * R * S);
  for (let r = 0; r < R; r++)
    for (let s = 0; s < S; s++) {
      const base = flip ? (s * C + r) * 9 : (r * C + s) * 9;
      const g = [0, 1, 2].map((ky) =>
        [0, 1, 2].map((kx) => (flip ? w[base + (2 - ky) * 3 + 2 - kx] : w[base + ky * 3 + kx])),
      );
      const t = sandwich(G, g, G);
      for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) u[(i * 6 + j) * R * S + r * S + s] = t[i][j];
    }
  return u;
}

/** v [36][C][columnsFor(count)]: Bᵀ d B of tiles first .. first + count − 1, zero columns after. */
export function winogradInputRef(x: ArrayLike<number>, g: Geom, first: number, count: number): Float64Array {
  const { th, tw } = tileGrid(g);
  const cols = columnsFor(count);
  const C = g.channels;
  const v = new Float64Array(36 * C * cols);
  for (let j = 0; j < count; j++) {
    const q = first + j;
    const b = Math.floor(q / (th * tw)),
      ty = Math.floor((q % (th * tw)) / tw),
      tx = q % tw;
    for (let c = 0; c < C; c++) {
      const d = [0, 1, 2, 3, 4, 5].map((r) =>
        [0, 1, 2, 3, 4, 5].map((k) => {
          const iy = 4 * ty - g.padH + r,
            ix = 4 * tx - g.padW + k;
          return iy < 0 || iy >= g.height || ix < 0 || ix >= g.width
            ? 0
            : x[((b * C + c) * g.height + iy) * g.width + ix];
        }),
      );
      const t = sandwich(BT, d, BT);
      for (let i = 0; i < 6; i++) for (let k = 0; k < 6; k++) v[(i * 6 + k) * C * cols + c * cols + j] = t[i][k];
    }
  }
  return v;
}

/** y with the outputs of tiles first .. first + count − 1 set to Aᵀ m A (others left as given); m [36][O][columnsFor(count)]. */
export function winogradOutputRef(
  m: ArrayLike<number>,
  y: ArrayLike<number>,
  g: Geom,
  O: number,
  first: number,
  count: number,
): Float64Array {
  const { th, tw } = tileGrid(g);
  const cols = columnsFor(count);
  const out = Float64Array.from(y);
  for (let j = 0; j < count; j++) {
    const q = first + j;
    const b = Math.floor(q / (th * tw)),
      ty = Math.floor((q % (th * tw)) / tw),
      tx = q % tw;
    for (let o = 0; o < O; o++) {
      const t = [0, 1, 2, 3, 4, 5].map((i) => [0, 1, 2, 3, 4, 5].map((k) => m[(i * 6 + k) * O * cols + o * cols + j]));
      const r = sandwich(AT, t, AT);
      for (let i = 0; i < 4; i++)
        for (let k = 0; k < 4; k++) {
          const oy = 4 * ty + i,
            ox = 4 * tx + k;
          if (oy < g.outH && ox < g.outW) out[((b * O + o) * g.outH + oy) * g.outW + ox] = r[i][k];
        }
    }
  }
  return out;
}

const transpose = (m: number[][]) => m[0].map((_, j) => m.map((r) => r[j]));

/** dm [36][O][columnsFor(count)] = A dY Aᵀ of tiles first .. first + count − 1 (outputs past outH × outW read zero). */
export function winogradOutputGradRef(
  dy: ArrayLike<number>,
  g: Geom,
  O: number,
  first: number,
  count: number,
): Float64Array {
  const { th, tw } = tileGrid(g);
  const cols = columnsFor(count);
  const A = transpose(AT);
  const dm = new Float64Array(36 * O * cols);
  for (let j = 0; j < count; j++) {
    const q = first + j;
    const b = Math.floor(q / (th * tw)),
      ty = Math.floor((q % (th * tw)) / tw),
      tx = q % tw;
    for (let o = 0; o < O; o++) {
      const d = [0, 1, 2, 3].map((i) =>
        [0, 1, 2, 3].map((k) => {
          const oy = 4 * ty + i,
            ox = 4 * tx + k;
          return oy < g.outH && ox < g.outW ? dy[((b * O + o) * g.outH + oy) * g.outW + ox] : 0;
        }),
      );
      const t = sandwich(A, d, A);
      for (let a = 0; a < 6; a++) for (let c = 0; c < 6; c++) dm[(a * 6 + c) * O * cols + o * cols + j] = t[a][c];
    }
  }
  return dm;
}

/** dw [O][C][3][3] = Gᵀ dU G of du [36][O][C]. */
export function winogradWeightsGradRef(du: ArrayLike<number>, O: number, C: number): Float64Array {
  const GT = transpose(G);
  const dw = new Float64Array(O * C * 9);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++) {
      const u = [0, 1, 2, 3, 4, 5].map((i) => [0, 1, 2, 3, 4, 5].map((k) => du[(i * 6 + k) * O * C + o * C + c]));
      const t = sandwich(GT, u, GT);
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) dw[(o * C + c) * 9 + ky * 3 + kx] = t[ky][kx];
    }
  return dw;
}
