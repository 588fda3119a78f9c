// prototypeSpread: the pairwise-angle histogram against a double loop over every pair (with tiles
// small enough to need row blocks and column chunks), the principal plane against a Jacobi
// eigendecomposition of the covariance, and what the picture is for: three tight groups against
// prototypes spread over the sphere.
import * as assert from 'uvu/assert';
import { prototypeSpread, type PrototypeSpread } from '../../src/eval/index.js';
import { conformance } from '../helpers/backends.js';
import { rng } from '../helpers/check.js';
import { evalBackends, rejects } from './helpers.js';

const K = 60,
  D = 12;

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** K prototypes: `groups` random directions with noise of `noise` around each, or all random (groups 0). */
function prototypes(seed: number, groups: number, noise = 0.01): Float32Array {
  const r = rng(seed);
  const centres = Array.from({ length: groups }, () => Array.from({ length: D }, () => gaussian(r)));
  const out = new Float32Array(K * D);
  for (let k = 0; k < K; k++) {
    // Scaled rows: the spread is of directions, whatever the norms.
    const scale = 0.5 + 2 * r();
    for (let d = 0; d < D; d++) {
      const base = groups ? centres[k % groups][d] / Math.hypot(...centres[k % groups]) : gaussian(r);
      out[k * D + d] = scale * (base + (groups ? noise * gaussian(r) : 0));
    }
  }
  return out;
}

function unitRows(w: Float32Array): Float64Array[] {
  return Array.from({ length: K }, (_, k) => {
    const row = Float64Array.from(w.subarray(k * D, (k + 1) * D));
    const n = Math.hypot(...row);
    return row.map((v) => v / n);
  });
}

/** Every pair's angle, binned as prototypeSpread bins them. */
function naiveAngles(w: Float32Array, bins: number): number[] {
  const u = unitRows(w);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < K; i++)
    for (let j = i + 1; j < K; j++) {
      let c = 0;
      for (let d = 0; d < D; d++) c += u[i][d] * u[j][d];
      const deg = (Math.acos(Math.min(1, Math.max(-1, c))) * 180) / Math.PI;
      counts[Math.min(bins - 1, Math.floor((deg * bins) / 180))]++;
    }
  return counts;
}

/** Eigenvalues (descending) and eigenvectors of a symmetric matrix by cyclic Jacobi rotations. */
function jacobi(m: number[][]): { values: number[]; vectors: number[][] } {
  const n = m.length;
  const a = m.map((r) => [...r]);
  const v: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const th = 0.5 * Math.atan2(2 * a[p][q], a[q][q] - a[p][p]);
        const c = Math.cos(th),
          s = Math.sin(th);
        for (let k = 0; k < n; k++) {
          const akp = a[k][p],
            akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k],
            aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p],
            vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  const order = a.map((_, i) => i).sort((i, j) => a[j][j] - a[i][i]);
  return { values: order.map((i) => a[i][i]), vectors: order.map((i) => v.map((row) => row[i])) };
}

/** The centred unit rows on the covariance's two leading eigenvectors, with their variance shares. */
function naivePlane(w: Float32Array): { x: number[]; y: number[]; explained: number[] } {
  const u = unitRows(w);
  const mean = Array.from({ length: D }, (_, d) => u.reduce((s, r) => s + r[d], 0) / K);
  const cov = Array.from({ length: D }, (_, a) =>
    Array.from({ length: D }, (_, b) => u.reduce((s, r) => s + (r[a] - mean[a]) * (r[b] - mean[b]), 0) / K),
  );
  const { values, vectors } = jacobi(cov);
  const total = values.reduce((s, v) => s + v, 0);
  const proj = (e: number[]) => u.map((r) => r.reduce((s, v, d) => s + (v - mean[d]) * e[d], 0));
  return { x: proj(vectors[0]), y: proj(vectors[1]), explained: [values[0] / total, values[1] / total] };
}

const under = (s: PrototypeSpread, deg: number) => {
  let n = 0;
  s.angles.counts.forEach((c, b) => {
    if (s.angles.edges[b + 1] <= deg) n += c;
  });
  return n / s.angles.pairs;
};

conformance(
  'eval/spread',
  (test, be) => {
    test('angles: every pair once, binned as a double loop bins them; tiles of any size agree', async () => {
      for (const [seed, groups] of [
        [1, 3],
        [2, 0],
      ]) {
        const w = prototypes(seed, groups);
        const ref = naiveAngles(w, 90);
        for (const maxTileElements of [64, 1000, 1 << 22]) {
          const s = await prototypeSpread({ data: w, shape: [K, D] }, { backend: be(), maxTileElements });
          assert.is(s.angles.pairs, (K * (K - 1)) / 2);
          assert.is(
            s.angles.counts.reduce((a, b) => a + b, 0),
            s.angles.pairs,
          );
          assert.is(s.angles.edges[0], 0);
          assert.is(s.angles.edges[90], 180);
          // float32 products may move a pair lying on a bin edge to the next bin.
          let moved = 0;
          s.angles.counts.forEach((c, b) => (moved += Math.abs(c - ref[b])));
          assert.ok(moved <= 2, `seed ${seed}, tile ${maxTileElements}: ${moved} pairs binned differently`);
        }
      }
    });

    test('the principal plane: Jacobi eigenvectors of the covariance, variance shares, signs fixed', async () => {
      for (const [seed, groups] of [
        [3, 3],
        [4, 0],
        [5, 5],
      ]) {
        const w = prototypes(seed, groups, 0.2);
        const s = await prototypeSpread({ data: w, shape: [K, D] }, { backend: be() });
        const ref = naivePlane(w);
        for (let a = 0; a < 2; a++)
          assert.ok(
            Math.abs(s.projection.explained[a] - ref.explained[a]) < 1e-5,
            `seed ${seed} axis ${a}: ${s.projection.explained[a]} vs ${ref.explained[a]}`,
          );
        for (const [ours, theirs] of [
          [s.projection.x, ref.x],
          [s.projection.y, ref.y],
        ] as const) {
          // An eigenvector's sign is arbitrary; ours is fixed, so align the reference to it.
          const sign = Math.sign(theirs.reduce((acc, v, k) => acc + v * ours[k], 0));
          for (let k = 0; k < K; k++)
            assert.ok(Math.abs(ours[k] - sign * theirs[k]) < 1e-4, `seed ${seed} prototype ${k}`);
        }
      }
      // Deterministic: the same prototypes give the same picture.
      const w = prototypes(4, 0);
      const a = await prototypeSpread({ data: w, shape: [K, D] }, { backend: be() });
      const b = await prototypeSpread({ data: w, shape: [K, D] }, { backend: be() });
      assert.equal(a.projection, b.projection);
    });

    test('three tight groups against spread prototypes: pairs near 0°, a plane of three spots', async () => {
      const grouped = await prototypeSpread({ data: prototypes(6, 3), shape: [K, D] }, { backend: be() });
      const spread = await prototypeSpread({ data: prototypes(6, 0), shape: [K, D] }, { backend: be() });
      // 3 groups of 20: 3 · 190 of the 1770 pairs lie within a group.
      assert.ok(Math.abs(under(grouped, 10) - 570 / 1770) < 1e-12, `${under(grouped, 10)}`);
      assert.is(under(spread, 10), 0);
      // Random directions in 12 dimensions: most pairs within 30° of orthogonal.
      assert.ok(1 - under(spread, 60) - (1 - under(spread, 120)) > 0.6);
      const [e1, e2] = grouped.projection.explained;
      assert.ok(e1 + e2 > 0.99, `three points span a plane: ${e1 + e2}`);
      assert.ok(spread.projection.explained[0] + spread.projection.explained[1] < 0.5);
      const { x, y } = grouped.projection;
      const dist = (i: number, j: number) => Math.hypot(x[i] - x[j], y[i] - y[j]);
      for (let k = 3; k < K; k++) {
        assert.ok(dist(k, k % 3) < 0.05, `prototype ${k} off its group's spot`);
        assert.ok(dist(k, (k + 1) % 3) > 0.5, `prototype ${k} near another group's spot`);
      }
    });

    test('fewer than two prototypes: nothing to measure', async () => {
      await rejects(
        prototypeSpread({ data: new Float32Array(D), shape: [1, D] }, { backend: be() }),
        /needs at least two prototypes/,
      );
    });
  },
  evalBackends(),
);
