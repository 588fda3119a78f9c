// Neighbour search: nearest neighbour by inner product (KoLeo, KoLeo-proto, unique-prototype
// counting, k-NN) and per-row top-k. The searches themselves carry no gradient; the distance to the
// chosen neighbour (what KoLeo differentiates) is a separate op with its own backward rule.
import { noGrad, ShapeError, Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, numel } from '../shape.js';
import { add, mul, sqrt, sub, div, neg } from './elementwise.js';
import { sum } from './reduce.js';
import { reshape } from './view.js';
import { gatherRows } from './layout.js';

export interface NearestNeighborOptions {
  /** Skip j = i (row i of x never matches row i of y). Defaults to true when y is omitted. */
  excludeSelf?: boolean;
}

function searchArgs(op: string, x: Tensor, y: Tensor | undefined, opts: NearestNeighborOptions) {
  const other = y ?? x;
  assertSameBackend(op, x, other);
  assertDType(op, x, 'f32', 'x');
  assertDType(op, other, 'f32', 'y');
  if (x.rank !== 2 || other.rank !== 2 || x.shape[1] !== other.shape[1]) {
    throw new ShapeError(op, `needs x [m, d] and y [k, d], got [${x.shape}] and [${other.shape}]`);
  }
  if (other.shape[0] === 0) throw new ShapeError(op, 'y has no rows to search');
  return { other, excludeSelf: opts.excludeSelf ?? y === undefined };
}

/**
 * For each row i of x [m, d]: the largest inner product <x_i, y_j> over the rows of y [k, d]
 * (y = x when omitted) and the index j (i32) of the first row reaching it. With excludeSelf, j = i
 * is skipped; a row left with no candidate (k = 1, or m = k = 1) gets -Infinity and index -1.
 * Blocked: memory stays O(m + k·d) for any k. No gradient (see nearestNeighborDistance).
 * For unit-norm rows the largest inner product is the smallest Euclidean distance.
 */
export function nearestNeighbor(
  x: Tensor,
  y?: Tensor,
  opts: NearestNeighborOptions = {},
): { values: Tensor; indices: Tensor } {
  const { other, excludeSelf } = searchArgs('nearestNeighbor', x, y, opts);
  const [m, d] = x.shape;
  const values = empty([m], x.backend);
  const indices = empty([m], x.backend, 'i32');
  if (m === 0) return { values, indices };
  // Against itself each pair needs computing once; the kernel's scores are bit-identical.
  if (other === x)
    x.backend.nearestNeighborSelf(x.storage, values.storage, indices.storage, null, m, d, 1, excludeSelf);
  else
    x.backend.nearestNeighbor(
      x.storage,
      other.storage,
      values.storage,
      indices.storage,
      m,
      other.shape[0],
      d,
      excludeSelf,
    );
  return { values, indices };
}

/**
 * nearestNeighbor of the rows of x [k, d] among themselves (self excluded unless told otherwise),
 * plus each row's m best candidates [k, m] (i32, best first: value descending, then index
 * ascending; -1 where a row has fewer). What a candidate cache for nearestAmongCandidates is built
 * from. No gradient.
 */
export function nearestNeighborsSelf(
  x: Tensor,
  m: number,
  opts: NearestNeighborOptions = {},
): { values: Tensor; indices: Tensor; candidates: Tensor } {
  searchArgs('nearestNeighborsSelf', x, undefined, opts);
  if (!Number.isInteger(m) || m < 1)
    throw new ShapeError('nearestNeighborsSelf', `m = ${m} must be a positive integer`);
  const [k, d] = x.shape;
  const values = empty([k], x.backend);
  const indices = empty([k], x.backend, 'i32');
  const candidates = empty([k, m], x.backend, 'i32');
  if (k > 0)
    x.backend.nearestNeighborSelf(
      x.storage,
      values.storage,
      indices.storage,
      candidates.storage,
      k,
      d,
      m,
      opts.excludeSelf ?? true,
    );
  return { values, indices, candidates };
}

/**
 * For each row r of x [k, d]: the best inner product with the rows candidates[r, :] (i32 [k, m],
 * -1 = none; e.g. from nearestNeighborsSelf) and its index, first index on ties; -inf / -1 when a
 * row has no candidate. Scores use the search's arithmetic, so where the true neighbour is a
 * candidate the result equals nearestNeighbor's bit for bit. No gradient.
 */
export function nearestAmongCandidates(x: Tensor, candidates: Tensor): { values: Tensor; indices: Tensor } {
  assertSameBackend('nearestAmongCandidates', x, candidates);
  assertDType('nearestAmongCandidates', x, 'f32', 'x');
  assertDType('nearestAmongCandidates', candidates, 'i32', 'candidates');
  if (x.rank !== 2 || candidates.rank !== 2 || candidates.shape[0] !== x.shape[0]) {
    throw new ShapeError(
      'nearestAmongCandidates',
      `needs x [k, d] and candidates [k, m], got [${x.shape}] and [${candidates.shape}]`,
    );
  }
  const [k, d] = x.shape;
  const m = candidates.shape[1];
  const values = empty([k], x.backend);
  const indices = empty([k], x.backend, 'i32');
  if (k > 0) x.backend.nearestAmongCandidates(x.storage, candidates.storage, values.storage, indices.storage, k, d, m);
  return { values, indices };
}

export interface NeighborDistanceOptions extends NearestNeighborOptions {
  /** Added to every difference before the norm, as torch.nn.PairwiseDistance does (default 1e-8). */
  eps?: number;
}

/**
 * KoLeo's ingredient: ||x_i − y_{n(i)} + eps||₂ where n(i) is the nearest neighbour of x_i by inner
 * product (as nearestNeighbor; y = x and excludeSelf by default). The neighbour choice is fixed;
 * the distance is differentiable in x and y (y's rows receive the scatter-added gradients).
 * Returns distances [m] and the neighbour indices [m] (i32).
 */
export function nearestNeighborDistance(
  x: Tensor,
  y?: Tensor,
  opts: NeighborDistanceOptions = {},
): { distances: Tensor; indices: Tensor } {
  const { other, excludeSelf } = searchArgs('nearestNeighborDistance', x, y, opts);
  const eps = opts.eps ?? 1e-8;
  if (excludeSelf && other.shape[0] < 2 && x.shape[0] > 0) {
    throw new ShapeError(
      'nearestNeighborDistance',
      'excluding self leaves row 0 without a neighbour: y needs at least 2 rows',
    );
  }
  const nn = noGrad(() => nearestNeighbor(x, other, { excludeSelf }));
  nn.values.dispose();
  return { distances: neighborDistance(x, other, nn.indices, eps), indices: nn.indices };
}

/**
 * ||x_i − y_{idx[i]} + eps||₂ for given neighbour indices idx [m] (i32, all valid rows of y),
 * differentiable in x and y (y's rows receive the scatter-added gradients). The indices may be
 * disposed by the caller afterwards.
 */
export function neighborDistance(x: Tensor, y: Tensor, idx0: Tensor, eps = 1e-8): Tensor {
  const [m, d] = x.shape;
  const other = y;
  const { diff, distances } = noGrad(() => {
    const rows = gatherRows(other, idx0);
    const delta = sub(x, rows);
    const shifted = add(delta, eps);
    const sq = mul(shifted, shifted);
    const ss = sum(sq, 1);
    const dist = sqrt(ss);
    for (const t of [rows, delta, sq, ss]) t.dispose();
    return { diff: shifted, distances: dist };
  });
  // The backward's own handle on the indices, so the caller may dispose theirs.
  const idx = reshape(idx0, [m]);
  const out = record(distances, 'nearestNeighborDistance', [x, other], (g) => {
    // d dist_i / d x_i = diff_i / dist_i; the neighbour row gets the negative of it.
    const g2 = reshape(g, [m, 1]);
    const dist2 = reshape(distances, [m, 1]);
    const gx = mul(diff, div(g2, dist2));
    const gy = empty(other.shape, other.backend);
    if (gy.size > 0) other.backend.scatterAddRows(neg(gx).storage, idx.storage, gy.storage, m, other.shape[0], d);
    return [gx, gy];
  });
  if (!out.node) {
    diff.dispose();
    idx.dispose();
  }
  return out;
}

/**
 * The k largest entries along the last axis, descending, lowest index first on ties (NaN ranks
 * below every number). Returns values [..., k] and indices [..., k] (i32); no gradient.
 */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  assertDType('topk', x, 'f32');
  if (x.rank === 0) throw new ShapeError('topk', 'needs a tensor of rank ≥ 1');
  const cols = x.shape[x.rank - 1];
  if (!Number.isInteger(k) || k < 0 || k > cols)
    throw new ShapeError('topk', `k = ${k} must be an integer in [0, ${cols}]`);
  const rows = numel(x.shape.slice(0, -1));
  const shape = [...x.shape.slice(0, -1), k];
  const values = empty(shape, x.backend);
  const indices = empty(shape, x.backend, 'i32');
  if (rows > 0 && k > 0) x.backend.topk(x.storage, values.storage, indices.storage, rows, cols, k);
  return { values, indices };
}
