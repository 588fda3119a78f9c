// llvmpipe (the software adapter) stops an invocation's loops, silently, after about 65535
// iterations counted over all its loops together: a matmul with k = 131072 summed about a third
// of k, a column sum over 131072 rows half of them, nearestNeighbor over 4096 rows of 1024
// features missed its last rows. Kernels whose loop length grows with the data therefore walk it
// in ranges, one dispatch per range, each starting from what the previous range left; a range
// stays 4x inside the cap. Every such kernel carries on the exact operation chain of a single
// walk, so the split changes no bit, and a hardware GPU gets the same few extra dispatches.

let budget = 16384;

/** Loop iterations one invocation may run in one dispatch. */
export function loopBudget(): number {
  return budget;
}

/** Sets the budget (tests use small ones, so that small sizes cross ranges); returns the previous one. */
export function setLoopBudget(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`loop budget ${n} must be a positive integer`);
  const old = budget;
  budget = n;
  return old;
}

/**
 * [start, end) ranges over `total` items (the last shorter; one empty range for 0) for a kernel
 * that spends `cost` loop iterations per step of `stepItems` items and `fixed` iterations once per
 * dispatch: as many steps per range as the budget holds, at least one. Ranges start at multiples
 * of stepItems.
 */
export function loopRanges(total: number, cost: number, stepItems = 1, fixed = 0): [number, number][] {
  const step = Math.max(1, Math.floor((budget - fixed) / cost)) * stepItems;
  const out: [number, number][] = [];
  for (let a = 0; a < total; a += step) out.push([a, Math.min(total, a + step)]);
  return out.length > 0 ? out : [[0, 0]];
}
