// Matrix products (kernel: matmul) and linear layers. Transposes are kernel flags, never copies:
// the backward rules pick the flags that make dA = dC·op(B)ᵀ and dB = op(A)ᵀ·dC read the stored
// layouts directly. An operand broadcast over the batch (stride 0) gets the sum of its per-batch
// gradients: one product over the flattened batch where the layout allows it, else a reduce.
import type { Storage } from '../../backend/backend.js';
import { ShapeError, Tensor } from '../tensor.js';
import { empty } from '../create.js';
import { needsGrad, record } from '../autograd.js';
import { assertDType, assertSameBackend, broadcastShapes, numel, sameShape } from '../shape.js';
import { broadcastTo } from './view.js';

export interface MatmulOptions {
  /** a is stored [..., k, m] and used transposed. */
  transA?: boolean;
  /** b is stored [..., n, k] and used transposed. */
  transB?: boolean;
}

interface Product {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
}

/**
 * A new [batch·m·n] tensor of `shape` holding the product (plus the optional fused epilogue);
 * rowSumsA, when given, receives the m row sums of op(A); preActivation, with GELU, the GELU's input.
 */
function product(
  a: Tensor,
  b: Tensor,
  p: Product,
  shape: readonly number[],
  bias: Storage | null = null,
  activation: 'none' | 'gelu' = 'none',
  rowSumsA: Tensor | null = null,
  preActivation: Tensor | null = null,
): Tensor {
  const out = empty(shape, a.backend);
  if (out.size > 0) {
    a.backend.matmul(a.storage, b.storage, out.storage, {
      ...p,
      bias,
      activation,
      accumulate: false,
      rowSumsA: rowSumsA?.storage ?? null,
      preActivation: preActivation?.storage ?? null,
    });
  }
  return out;
}

/** Σ over the leading dim of t viewed as [batch, ...shape] (a fixed-order reduce). */
function sumLeading(t: Tensor, batch: number, shape: readonly number[]): Tensor {
  const out = empty(shape, t.backend);
  const inner = numel(shape);
  if (inner > 0) t.backend.reduce('sum', t.storage, out.storage, 1, batch, inner);
  return out;
}

/**
 * Gradient of A (stored [k, m] when transA, else [m, k]) for C = op(A)·op(B), per batch
 * (summed when A is broadcast over the batch).
 */
function gradA(g: Tensor, b: Tensor, p: Product, shape: readonly number[]): Tensor {
  const { batch, m, n, k } = p;
  const broadcast = p.strideA === 0 && batch !== 1;
  const per = p.transA ? [k, m] : [m, k];
  const outShape = broadcast ? [batch, ...per] : shape;
  // dop(A) = dC·op(B)ᵀ; stored transposed: dA = op(B)·dCᵀ.
  const r = p.transA
    ? product(
        b,
        g,
        { batch, m: k, n: m, k: n, transA: p.transB, transB: true, strideA: p.strideB, strideB: m * n },
        outShape,
      )
    : product(
        g,
        b,
        { batch, m, n: k, k: n, transA: false, transB: !p.transB, strideA: m * n, strideB: p.strideB },
        outShape,
      );
  return broadcast ? sumLeading(r, batch, shape) : r;
}

/** Gradient of B (stored [n, k] when transB, else [k, n]), summed over the batch when broadcast. */
function gradB(g: Tensor, a: Tensor, p: Product, shape: readonly number[]): Tensor {
  const { batch, m, n, k } = p;
  const broadcast = p.strideB === 0 && batch !== 1;
  if (broadcast && batch > 0 && !p.transA) {
    // A and dC are [batch·m, k] and [batch·m, n] row blocks: the batch sum is one longer product.
    return p.transB
      ? product(
          g,
          a,
          { batch: 1, m: n, n: k, k: batch * m, transA: true, transB: false, strideA: 0, strideB: 0 },
          shape,
        )
      : product(a, g, { batch: 1, m: k, n, k: batch * m, transA: true, transB: false, strideA: 0, strideB: 0 }, shape);
  }
  const per = p.transB ? [n, k] : [k, n];
  const outShape = broadcast ? [batch, ...per] : shape;
  // dop(B) = op(A)ᵀ·dC; stored transposed: dB = dCᵀ·op(A).
  const r = p.transB
    ? product(
        g,
        a,
        { batch, m: n, n: k, k: m, transA: true, transB: p.transA, strideA: m * n, strideB: p.strideA },
        outShape,
      )
    : product(
        a,
        g,
        { batch, m: k, n, k: m, transA: !p.transA, transB: false, strideA: p.strideA, strideB: m * n },
        outShape,
      );
  return broadcast ? sumLeading(r, batch, shape) : r;
}

/**
 * Matrix product over the last two dims, with numpy-style broadcasting of the leading (batch)
 * dims. An operand without batch dims (or with all of them 1) is shared by every batch without a
 * copy; other broadcasts are materialised first.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  assertSameBackend('matmul', a, b);
  assertDType('matmul', a, 'f32', 'first operand');
  assertDType('matmul', b, 'f32', 'second operand');
  if (a.rank < 2 || b.rank < 2) {
    throw new ShapeError('matmul', `operands need at least 2 dims, got [${a.shape}] and [${b.shape}]`);
  }
  const transA = opts.transA ?? false,
    transB = opts.transB ?? false;
  const [a0, a1] = a.shape.slice(-2),
    [b0, b1] = b.shape.slice(-2);
  const m = transA ? a1 : a0,
    k = transA ? a0 : a1;
  const kb = transB ? b1 : b0,
    n = transB ? b0 : b1;
  if (k !== kb) {
    throw new ShapeError(
      'matmul',
      `inner dims differ: [${a.shape}]${transA ? 'ᵀ' : ''} · [${b.shape}]${transB ? 'ᵀ' : ''} (${k} vs ${kb})`,
    );
  }
  const aBatch = a.shape.slice(0, -2),
    bBatch = b.shape.slice(0, -2);
  const batchShape = broadcastShapes('matmul', aBatch, bBatch);
  const batch = numel(batchShape);
  let x = a,
    y = b;
  const fit = (t: Tensor, tb: readonly number[]) =>
    numel(tb) === 1 || sameShape(padded(tb, batchShape.length), batchShape)
      ? t
      : broadcastTo(t, [...batchShape, ...t.shape.slice(-2)]);
  x = fit(a, aBatch);
  y = fit(b, bBatch);
  const p: Product = {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: numel(x.shape.slice(0, -2)) === 1 ? 0 : m * k,
    strideB: numel(y.shape.slice(0, -2)) === 1 ? 0 : k * n,
  };
  const out = record(product(x, y, p, [...batchShape, m, n]), 'matmul', [x, y], (g) => [
    x.requiresGrad ? gradA(g, y, p, x.shape) : null,
    y.requiresGrad ? gradB(g, x, p, y.shape) : null,
  ]);
  // A materialised broadcast is an intermediate: the backward reads it, else it can go now.
  if (!out.node)
    for (const [t, orig] of [
      [x, a],
      [y, b],
    ])
      if (t !== orig) t.dispose();
  return out;
}

function padded(shape: readonly number[], rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/**
 * y = act(x·Wᵀ + b) with W stored [out, in] (PyTorch's layout), x of any leading shape [..., in].
 * The bias and GELU are fused into the product. With autograd the product's epilogue also writes the
 * pre-activation z = x·Wᵀ + b, which the one recorded node keeps for its backward: dz = dy·gelu'(z)
 * (the elementwise GELU gradient kernel), then the products of a plain linear layer from dz.
 *
 * Before, the recorded product wrote z and GELU ran as an op of its own, a second pass over the
 * [rows, 4·D] hidden activations. The values are the same bits either way: the epilogue applies the
 * same vector GELU to the same z, and the backward runs the same kernels in the same order. The
 * elementwise GELU gradient stays a pass of its own: folding it into the products' packing of dz
 * would evaluate gelu'(z) twice (the dX and dW products both read dz). Folding it into the epilogue of
 * the product that writes dy (fc2's input gradient, with the MLP as one node) was built and was
 * bit-identical (the bitcheck's three checkpoints), but did not pay: at the vit_cpu step's
 * 6400x256x64, fused against product + GELU gradient, CPU ms (bench fusions, interleaved, best of
 * 15), wasm 1 thread 7.29 against 7.31, 2 threads 7.90 against 8.02, llvmpipe 62.0 against 60.5
 * (wall 60.5 against 55.8). The gradient's arithmetic (an exp and an erf per value) is the cost,
 * wherever it runs; the pass's memory traffic is small next to it on these CPUs. Not kept.
 * The forward's fusion measures the same way (bench fusions, CPU ms: wasm 1t 7.00 fused against 7.04
 * for the product then GELU, 2t 7.74 against 8.23, llvmpipe 61.1 against 61.4): level, with one
 * [rows, 4·D] pass, one op and on WebGPU one dispatch fewer.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, activation: 'none' | 'gelu' = 'none'): Tensor {
  assertSameBackend('linear', x, weight, ...(bias ? [bias] : []));
  assertDType('linear', x, 'f32', 'input');
  assertDType('linear', weight, 'f32', 'weight');
  if (weight.rank !== 2) throw new ShapeError('linear', `weight must be [out, in], got [${weight.shape}]`);
  const [outF, inF] = weight.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inF) {
    throw new ShapeError(
      'linear',
      `input [${x.shape}] does not end in ${inF}, the weight's in-features ([${weight.shape}])`,
    );
  }
  if (bias) {
    assertDType('linear', bias, 'f32', 'bias');
    if (bias.rank !== 1 || bias.shape[0] !== outF)
      throw new ShapeError('linear', `bias must be [${outF}], got [${bias.shape}]`);
  }
  const rows = numel(x.shape.slice(0, -1));
  const shape = [...x.shape.slice(0, -1), outF];
  const p: Product = { batch: 1, m: rows, n: outF, k: inF, transA: false, transB: true, strideA: 0, strideB: 0 };
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const b = bias?.storage ?? null;
  if (!needsGrad(...inputs)) return product(x, weight, p, shape, b, activation);
  const z = activation === 'gelu' ? empty(shape, x.backend) : null;
  const y = product(x, weight, p, shape, b, activation, null, z);
  return record(y, activation === 'gelu' ? 'linearGelu' : 'linear', inputs, (gy) => {
    let g = gy;
    if (z) {
      g = empty(shape, x.backend);
      if (g.size > 0) x.backend.unaryGrad('gelu', z.storage, y.storage, gy.storage, g.storage, g.size, 0, 0);
    }
    // The bias gradient (column sums of dZ) comes out of the weight-gradient product, which reads all
    // of dZ anyway; that product is empty when inF = 0, and then the sum is taken on its own.
    const fuse = weight.requiresGrad && !!bias?.requiresGrad && inF > 0;
    const db = fuse ? empty([outF], x.backend) : null;
    return [
      x.requiresGrad ? product(g, weight, { ...p, n: inF, k: outF, transB: false }, x.shape) : null,
      weight.requiresGrad
        ? product(g, x, { ...p, m: outF, n: inF, k: rows, transA: true, transB: false }, weight.shape, null, 'none', db)
        : null,
      bias?.requiresGrad ? (db ?? sumLeading(g, rows, [outF])) : null,
    ];
  });
}
