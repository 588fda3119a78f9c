// The greedy rule's groups as countUniquePrototypes reports them (sizes and representatives) do not
// say which prototype went where; the gallery needs that for the collapsed groups. Only prototypes
// that were not kept can be members of another's group, and they can only join a representative of
// a group with more than one member, so the host compares exactly those pairs.
import type { UniqueGroups } from '../eval/index.js';

/** L2-normalised copy of the rows of a [K, D] matrix (zero rows stay zero). */
export function normalizeRows(data: Float32Array, K: number, D: number): Float32Array {
  const out = new Float32Array(K * D);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += data[k * D + d] ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < D; d++) out[k * D + d] = data[k * D + d] * inv;
  }
  return out;
}

/**
 * memberOf[k] = the representative of prototype k's greedy group: the most similar earlier
 * representative above the cosine threshold, as the greedy rule assigns it.
 */
export function greedyMembers(
  unit: Float32Array,
  K: number,
  D: number,
  groups: UniqueGroups,
  cosineThreshold: number,
): Int32Array {
  const memberOf = new Int32Array(K).fill(-1);
  const multi: number[] = [];
  for (let g = 0; g < groups.unique; g++) {
    const r = groups.representatives[g];
    memberOf[r] = r;
    if (groups.groupSizes[g] > 1) multi.push(r);
  }
  multi.sort((x, y) => x - y);
  for (let k = 0; k < K; k++) {
    if (memberOf[k] >= 0) continue;
    // Not kept, so it joined some earlier multi-member group; the threshold only breaks float ties.
    let best = -1,
      bestC = -Infinity;
    for (const r of multi) {
      if (r >= k) break;
      let c = 0;
      for (let d = 0; d < D; d++) c += unit[k * D + d] * unit[r * D + d];
      if (c > bestC) {
        bestC = c;
        best = r;
      }
    }
    memberOf[k] = best >= 0 && bestC > cosineThreshold - 1e-4 ? best : k;
  }
  return memberOf;
}
