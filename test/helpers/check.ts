// Numeric checks shared by the tests: seeded data, closeness with a useful message, gradient checks
// against a float64 reference by central finite differences.
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import { backward, param, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { mul, sum } from '../../src/tensor/index.js';
import { mulberry32 } from '../../src/util/mulberry32.js';

/** mulberry32: a small seeded generator for test data. */
export const rng = mulberry32;

/** n values uniform in [lo, hi). */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** f32 bit patterns (so -0 and +0 differ, and a NaN's payload counts). */
export function f32Bits(v: ArrayLike<number>): number[] {
  return Array.from(new Uint32Array(Float32Array.from(v).buffer));
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface Tol {
  rtol?: number;
  atol?: number;
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tol = {},
  what = 'values',
): void {
  const rtol = tol.rtol ?? 1e-5;
  const atol = tol.atol ?? 1e-6;
  assert.is(actual.length, expected.length, `${what}: length ${actual.length} vs expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const count = Array.from(actual).filter(
      (a, i) => !(Math.abs(a - expected[i]) <= atol + rtol * Math.abs(expected[i])),
    ).length;
    assert.unreachable(
      `${what}: ${count} of ${actual.length} elements off; worst at [${worst}]: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

export async function read(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

export interface GradInput {
  shape: number[];
  /** Defaults to uniform values in [-1, 1) seeded by position. */
  data?: ArrayLike<number>;
  /** Inputs that are not differentiated (indices, masks). */
  noGrad?: boolean;
  dtype?: 'f32' | 'i32';
}

/**
 * Checks op on `be` against `ref` (float64) in the forward pass and, for every differentiable
 * input, the backend's gradient of Σ w·op(inputs) (w random) against central finite differences
 * of the same loss through `ref`.
 */
export async function gradCheck(
  be: Backend,
  op: (...xs: Tensor[]) => Tensor,
  ref: (...xs: Float64Array[]) => Float64Array,
  inputs: GradInput[],
  opts: { seed?: number; h?: number; fwd?: Tol; grad?: Tol; what?: string } = {},
): Promise<void> {
  const seed = opts.seed ?? 1;
  const what = opts.what ?? 'op';
  const xs = inputs.map((inp, i) => Float64Array.from(inp.data ?? randArray(numel(inp.shape), seed * 97 + i)));
  const refOut = ref(...xs);
  const w = randArray(refOut.length, seed * 31 + 7, 0.5, 1.5);
  const loss = (vals: Float64Array[]) => {
    const o = ref(...vals);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += w[i] * o[i];
    return s;
  };
  const ts = inputs.map((inp, i) => {
    const t = tensor(xs[i], inp.shape, be, inp.dtype ?? 'f32');
    return inp.noGrad || inp.dtype === 'i32' ? t : param(t);
  });
  const out = tidy(() => {
    const o = op(...ts);
    const wt = tensor(w, o.shape, be);
    const l = sum(mul(o, wt));
    backward(l);
    return o;
  });
  assertClose(await out.data(), refOut, opts.fwd ?? { rtol: 1e-4, atol: 1e-5 }, `${what} forward`);
  out.dispose();
  const h = opts.h ?? 1e-4;
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].noGrad || inputs[i].dtype === 'i32') continue;
    const g = ts[i].grad;
    assert.ok(g, `${what}: input ${i} received no gradient`);
    const analytic = await g!.data();
    const numeric = new Float64Array(xs[i].length);
    for (let j = 0; j < xs[i].length; j++) {
      const orig = xs[i][j];
      xs[i][j] = orig + h;
      const lp = loss(xs);
      xs[i][j] = orig - h;
      const lm = loss(xs);
      xs[i][j] = orig;
      numeric[j] = (lp - lm) / (2 * h);
    }
    const scale = Math.max(1e-3, ...Array.from(numeric, Math.abs));
    assertClose(analytic, numeric, opts.grad ?? { rtol: 2e-3, atol: 2e-3 * scale }, `${what} gradient of input ${i}`);
  }
  for (const t of ts) t.dispose();
}

/**
 * This process's CPU time in milliseconds (user + system). Guards against runaway work (a hang, a
 * quadratic blow-up) are stated in CPU time, which a machine busy with other jobs does not inflate
 * the way it inflates wall time.
 */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
