// Shape/stride preparation shared by the strided kernels of both backends.
import { BackendError, MAX_RANK } from './backend.js';

/**
 * Merges adjacent dims that are contiguous in every operand (fewer, longer rows for the kernels),
 * drops size-1 dims, then left-pads to MAX_RANK with size-1 dims.
 */
export function collapseDims(shape: number[], ...strides: number[][]): { shape: number[]; strides: number[][] } {
  if (shape.length > MAX_RANK)
    throw new BackendError(`rank ${shape.length} exceeds the strided kernels' limit of ${MAX_RANK}`);
  const s: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = s.length - 1;
    if (last >= 0 && strides.every((x, j) => st[j][last] === x[d] * shape[d])) {
      s[last] *= shape[d];
      strides.forEach((x, j) => (st[j][last] = x[d]));
    } else {
      s.push(shape[d]);
      strides.forEach((x, j) => st[j].push(x[d]));
    }
  }
  while (s.length < MAX_RANK) {
    s.unshift(1);
    st.forEach((x) => x.unshift(0));
  }
  return { shape: s, strides: st };
}

/**
 * Gives a collapsed view that is one long run (every leading dim 1, as a contiguous elementwise op
 * over whole tensors collapses to) rows to split across threads: the last dim N becomes
 * [N / C, C] for C the largest power of two dividing N, up to 16384. Kernels that split over rows
 * otherwise ran such ops on one thread. Left as is when N has no power-of-two factor ≥ 256.
 */
export function splitLongRun(c: { shape: number[]; strides: number[][] }): void {
  const n = c.shape[MAX_RANK - 1];
  if (c.shape[MAX_RANK - 2] !== 1 || n < 1 << 15) return;
  const run = Math.min(n & -n, 1 << 14);
  if (run < 256) return;
  c.shape[MAX_RANK - 2] = n / run;
  c.shape[MAX_RANK - 1] = run;
  for (const st of c.strides) st[MAX_RANK - 2] = st[MAX_RANK - 1] * run;
}

export function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor of `shape`. */
export function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}
