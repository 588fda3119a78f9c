// Layout ops: permute/transpose, slice, concat, row gathers and ViT patch (un)folding. Each is one
// copyStrided (or gatherRows) kernel call; the backward rules are the adjoint copies: permute by
// the inverse permutation, scatter a slice's gradient into zeros, slice concat's gradient apart,
// scatter-add gathered rows back. All of them work on i32 tensors too (values move bit for bit);
// gradients only flow through f32 ones.
import { MAX_RANK } from '../../backend/backend.js';
import { ShapeError, Tensor } from '../tensor.js';
import { empty, tensor, zeros } from '../create.js';
import { record } from '../autograd.js';
import { assertDType, assertSameBackend, normalizeAxis, numel, sameShape } from '../shape.js';
import { reshape } from './view.js';

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

function checkRank(op: string, x: Tensor): void {
  if (x.rank > MAX_RANK) throw new ShapeError(op, `rank ${x.rank} exceeds the strided kernels' limit of ${MAX_RANK}`);
}

// ---- permute / transpose ---------------------------------------------------------------------

/** out.shape[i] = x.shape[perm[i]] (a materialised copy; negative axes allowed). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank)
    throw new ShapeError('permute', `permutation [${perm}] has ${perm.length} axes, tensor has rank ${x.rank}`);
  const p = perm.map((a) => normalizeAxis('permute', a, x.rank));
  if (new Set(p).size !== p.length) throw new ShapeError('permute', `[${perm}] is not a permutation`);
  if (p.every((a, i) => a === i)) return reshape(x, x.shape);
  checkRank('permute', x);
  const shape = p.map((a) => x.shape[a]);
  const xs = strides(x.shape);
  const out = empty(shape, x.backend, x.dtype);
  if (out.size > 0)
    x.backend.copyStrided(
      x.storage,
      out.storage,
      shape,
      0,
      p.map((a) => xs[a]),
      0,
      strides(shape),
    );
  const inverse = new Array<number>(p.length);
  p.forEach((a, i) => (inverse[a] = i));
  return record(out, 'permute', [x], (g) => [permute(g, inverse)]);
}

/** Swaps two axes (the last two by default). */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  const a = normalizeAxis('transpose', axis0, x.rank);
  const b = normalizeAxis('transpose', axis1, x.rank);
  const perm = [...x.shape.keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

// ---- slice -----------------------------------------------------------------------------------

/**
 * The block of x starting at `begin` with extent `size` per axis (tf.slice convention). Axes past
 * begin.length are taken whole; a negative begin counts from the end; size -1 (or omitted) runs to
 * the end of the axis.
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  if (begin.length > x.rank)
    throw new ShapeError('slice', `begin [${begin}] has more axes than the tensor's rank ${x.rank}`);
  if (size && size.length > x.rank)
    throw new ShapeError('slice', `size [${size}] has more axes than the tensor's rank ${x.rank}`);
  const start: number[] = [];
  const ext: number[] = [];
  for (let d = 0; d < x.rank; d++) {
    const n = x.shape[d];
    let b = begin[d] ?? 0;
    if (b < 0) b += n;
    const s = size?.[d] ?? -1;
    const e = s === -1 ? n - b : s;
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0 || b + e > n) {
      throw new ShapeError(
        'slice',
        `begin ${begin[d] ?? 0}, size ${s} is out of range for axis ${d} of size ${n} (shape [${x.shape}])`,
      );
    }
    start.push(b);
    ext.push(e);
  }
  if (sameShape(ext, x.shape)) return reshape(x, x.shape);
  checkRank('slice', x);
  const xs = strides(x.shape);
  const offset = start.reduce((acc, b, d) => acc + b * xs[d], 0);
  const out = empty(ext, x.backend, x.dtype);
  if (out.size > 0) x.backend.copyStrided(x.storage, out.storage, ext, offset, xs, 0, strides(ext));
  return record(out, 'slice', [x], (g) => {
    const dx = zeros(x.shape, x.backend);
    if (g.size > 0) x.backend.copyStrided(g.storage, dx.storage, ext, 0, strides(ext), offset, xs);
    return [dx];
  });
}

// ---- concat ----------------------------------------------------------------------------------

/** Joins tensors of equal shape except along `axis`. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ShapeError('concat', 'needs at least one tensor');
  const first = tensors[0];
  assertSameBackend('concat', ...tensors);
  const a = normalizeAxis('concat', axis, first.rank);
  for (const t of tensors) {
    if (t.dtype !== first.dtype) throw new ShapeError('concat', `mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (t.rank !== first.rank || t.shape.some((n, d) => d !== a && n !== first.shape[d])) {
      throw new ShapeError('concat', `shapes [${first.shape}] and [${t.shape}] differ outside axis ${a}`);
    }
  }
  if (tensors.length === 1) return reshape(first, first.shape);
  checkRank('concat', first);
  const shape = [...first.shape];
  shape[a] = tensors.reduce((acc, t) => acc + t.shape[a], 0);
  const os = strides(shape);
  const out = empty(shape, first.backend, first.dtype);
  const offsets: number[] = [];
  let at = 0;
  for (const t of tensors) {
    offsets.push(at);
    if (t.size > 0)
      first.backend.copyStrided(t.storage, out.storage, [...t.shape], 0, strides(t.shape), at * os[a], os);
    at += t.shape[a];
  }
  // A piece's gradient is a slice of g (a view when it spans g, which shares storage safely).
  return record(out, 'concat', [...tensors], (g) =>
    tensors.map((t, i) =>
      t.requiresGrad
        ? slice(
            g,
            shape.map((_, d) => (d === a ? offsets[i] : 0)),
            [...t.shape],
          )
        : null,
    ),
  );
}

// ---- row gathers -----------------------------------------------------------------------------

/**
 * Validates host indices against [0, n) and uploads them; device index tensors cannot be checked
 * here without a read-back, so the kernels guard them instead (see gatherRows).
 */
function hostIndices(op: string, indices: ArrayLike<number>, n: number, x: Tensor): Tensor {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i];
    if (!Number.isInteger(v) || v < 0 || v >= n) {
      throw new ShapeError(op, `index ${v} at position ${i} is out of range for ${n} rows`);
    }
  }
  return tensor(indices, [indices.length], x.backend, 'i32');
}

/**
 * out[i, ...] = x[indices[i], ...]: rows of x [n, ...] picked by i32 indices of any shape (the
 * output shape is indices.shape followed by x.shape[1:]). Backward scatter-adds into the rows,
 * deterministically (repeated indices sum in index order).
 *
 * Out-of-range indices: a host array is checked here, before anything runs (a ShapeError naming
 * the index). A device i32 tensor cannot be checked without a read-back; the wasm backend checks
 * it in the kernel and throws a BackendError naming the index, the WebGPU backend writes zero rows
 * for it (and the backward adds nothing for it).
 */
export function gatherRows(x: Tensor, indices: Tensor | ArrayLike<number>): Tensor {
  if (x.rank === 0) throw new ShapeError('gatherRows', 'needs a tensor of rank ≥ 1');
  const n = x.shape[0];
  const cols = numel(x.shape.slice(1));
  const host = indices instanceof Tensor ? null : Int32Array.from(indices);
  const idx = indices instanceof Tensor ? indices : hostIndices('gatherRows', host!, n, x);
  try {
    assertSameBackend('gatherRows', x, idx);
    assertDType('gatherRows', idx, 'i32', 'indices');
    const shape = [...idx.shape, ...x.shape.slice(1)];
    const out = empty(shape, x.backend, x.dtype);
    if (out.size > 0) x.backend.gatherRows(x.storage, idx.storage, out.storage, idx.size, cols);
    return record(out, 'gatherRows', [x], (g) => {
      const dx = empty(x.shape, x.backend);
      if (dx.size === 0) return [dx];
      // Host indices are uploaded again rather than kept alive for a backward that may never run.
      const di = host ? tensor(host, [host.length], x.backend, 'i32') : idx;
      x.backend.scatterAddRows(g.storage, di.storage, dx.storage, di.size, n, cols);
      return [dx];
    });
  } finally {
    if (idx !== indices) idx.dispose();
  }
}

/** Entries of x picked along `axis` by i32 indices [m] (torch.index_select); gradient scatter-adds. */
export function indexSelect(x: Tensor, axis: number, indices: Tensor | ArrayLike<number>): Tensor {
  const a = normalizeAxis('indexSelect', axis, x.rank);
  if (a === 0) return gatherRows(x, indices);
  const front = [a, ...[...x.shape.keys()].filter((d) => d !== a)];
  const back = [...x.shape.keys()].map((d) => (d < a ? d + 1 : d === a ? 0 : d));
  const xt = permute(x, front);
  const picked = gatherRows(xt, indices);
  const out = permute(picked, back);
  // The intermediates stay in the graph when grad is recorded (their nodes carry the chain);
  // otherwise they are freed here.
  if (!out.node) {
    xt.dispose();
    picked.dispose();
  }
  return out;
}

// ---- patches ---------------------------------------------------------------------------------

function patchGeometry(op: string, b: number, c: number, h: number, w: number, p: number) {
  if (!Number.isInteger(p) || p < 1) throw new ShapeError(op, `patch size must be a positive integer, got ${p}`);
  if (h % p !== 0 || w % p !== 0) throw new ShapeError(op, `image ${h}x${w} is not divisible into ${p}x${p} patches`);
  const nh = h / p,
    nw = w / p;
  // [B, nh, nw, C, p, p] over the image [B, C, H, W] and over the patches [B, nh·nw, C·p·p].
  const view = [b, nh, nw, c, p, p];
  const image = [c * h * w, p * w, p, h * w, w, 1];
  return { view, image, patches: strides(view), out: [b, nh * nw, c * p * p] };
}

/**
 * [B, C, H, W] → [B, (H/p)(W/p), C·p·p]: patches in row-major order, each flattened channel-major
 * (c, i, j) — the order of a PyTorch Conv2d(C, D, p, stride=p) weight [D, C, p, p] flattened, so a
 * patch embedding is patchify followed by a linear layer with that weight reshaped to [D, C·p·p].
 */
export function patchify(x: Tensor, p: number): Tensor {
  if (x.rank !== 4) throw new ShapeError('patchify', `needs [B, C, H, W], got [${x.shape}]`);
  const [b, c, h, w] = x.shape;
  const g = patchGeometry('patchify', b, c, h, w, p);
  const out = empty(g.out, x.backend, x.dtype);
  if (out.size > 0) x.backend.copyStrided(x.storage, out.storage, g.view, 0, g.image, 0, g.patches);
  return record(out, 'patchify', [x], (gr) => [unpatchify(gr, p, h, w)]);
}

/** The inverse of patchify: [B, N, C·p·p] → [B, C, height, width]. */
export function unpatchify(x: Tensor, p: number, height: number, width: number): Tensor {
  if (x.rank !== 3) throw new ShapeError('unpatchify', `needs [B, N, C·p·p], got [${x.shape}]`);
  const [b, n, cpp] = x.shape;
  if (!Number.isInteger(p) || p < 1 || cpp % (p * p) !== 0) {
    throw new ShapeError('unpatchify', `last dim ${cpp} is not a multiple of p·p = ${p * p}`);
  }
  const c = cpp / (p * p);
  const g = patchGeometry('unpatchify', b, c, height, width, p);
  if (n !== (height / p) * (width / p)) {
    throw new ShapeError('unpatchify', `${n} patches do not tile a ${height}x${width} image with ${p}x${p} patches`);
  }
  const out = empty([b, c, height, width], x.backend, x.dtype);
  if (out.size > 0) x.backend.copyStrided(x.storage, out.storage, g.view, 0, g.patches, 0, g.image);
  return record(out, 'unpatchify', [x], (gr) => [patchify(gr, p)]);
}
