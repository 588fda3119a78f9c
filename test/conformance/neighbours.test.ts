import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend/backend.js';
import { conformance } from '../helpers/backends.js';
import { gradCheck, randArray, read, rng, f32Bits } from '../helpers/check.js';
import * as pd from '../../src/tensor/index.js';
import { nearestNeighborRef, scoresRef, selfTopRef, topkRef } from '../reference/neighbours.js';
import { WebGPUBackend } from '../../src/backend/webgpu/index.js';
import { forceSymmetricSelfSearch } from '../../src/backend/webgpu/neighbours.js';
import { setLoopBudget } from '../../src/backend/webgpu/loop-budget.js';

const f32 = (a: Float64Array) => a.map(Math.fround);

/** Values in {-1, 0, 1}: scores are small integers, exact in f32, with many exact ties. */
function ternary(n: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
}

/**
 * Compares against the float64 reference. Indices must match exactly where ties are exact
 * (`exact`) or the best score leads the runner-up by more than rounding; elsewhere the chosen
 * row must score within rounding of the best.
 */
async function checkNN(
  be: Backend,
  x: Float64Array,
  y: Float64Array | null,
  m: number,
  k: number,
  d: number,
  excludeSelf: boolean | undefined,
  exact: boolean,
  what: string,
): Promise<void> {
  const tx = pd.tensor(x, [m, d], be);
  const ty = y ? pd.tensor(y, [k, d], be) : undefined;
  const live = be.memory().liveBuffers;
  const { values, indices } = pd.nearestNeighbor(tx, ty, excludeSelf === undefined ? {} : { excludeSelf });
  assert.is(be.memory().liveBuffers, live + 2, `${what}: only the two outputs stay allocated`);
  const excl = excludeSelf ?? !y;
  const yy = y ?? x;
  const ref = nearestNeighborRef(x, yy, m, k, d, excl);
  const vals = await read(values);
  const idx = await read(indices);
  for (let i = 0; i < m; i++) {
    const at = `${what}: row ${i}`;
    if (ref.indices[i] < 0) {
      assert.is(idx[i], -1, `${at}: no candidate, index`);
      assert.is(vals[i], -Infinity, `${at}: no candidate, value`);
      continue;
    }
    let mag = 0;
    for (let l = 0; l < d; l++) mag += Math.abs(x[i * d + l]);
    const tol = 4e-7 * mag * d + 1e-6;
    assert.ok(Math.abs(vals[i] - ref.values[i]) <= tol, `${at}: value ${vals[i]}, expected ${ref.values[i]}`);
    if (exact || ref.values[i] - ref.second[i] > 2 * tol) {
      assert.is(idx[i], ref.indices[i], `${at}: index (best ${ref.values[i]}, runner-up ${ref.second[i]})`);
    } else {
      assert.ok(idx[i] >= 0 && idx[i] < k && !(excl && idx[i] === i), `${at}: index ${idx[i]} is not a candidate`);
      const s = scoresRef(x, yy, i, k, d)[idx[i]];
      assert.ok(s >= ref.values[i] - 2 * tol, `${at}: index ${idx[i]} scores ${s}, best ${ref.values[i]}`);
    }
  }
  for (const t of [tx, ty, values, indices]) t?.dispose();
}

/** Ternary values: exact scores with many ties, which must go to the first index. */
async function tiesCase(b: Backend, how: string): Promise<void> {
  for (const [m, k, d] of [
    [37, 129, 3],
    [65, 65, 2],
    [9, 257, 5],
  ]) {
    const x = ternary(m * d, m);
    const y = ternary(k * d, k);
    await checkNN(b, x, y, m, k, d, false, true, `ties ${m}x${k}x${d}${how}`);
    await checkNN(b, x, y, m, k, d, true, true, `ties ${m}x${k}x${d} excludeSelf${how}`);
  }
  const x = ternary(129 * 3, 5);
  await checkNN(b, x, null, 129, 129, 3, undefined, true, `ties self 129x3${how}`);
  // y repeats with period 500, so every maximum recurs in later cache blocks / workgroup tiles.
  const [m, k, d] = [13, 1031, 33];
  const base = ternary(500 * d, 8);
  const y = Float64Array.from({ length: k * d }, (_, e) => base[e % (500 * d)]);
  await checkNN(b, ternary(m * d, 9), y, m, k, d, false, true, `ties repeating across blocks${how}`);
}

/**
 * Runs `body` with the WebGPU exact self search forced onto the one-sided kernel, the symmetric
 * kernels (default strips and chunks, then strips and chunks of 1 and of 3 and 2 row blocks, so
 * that small sizes cross them), then with the choice by adapter; on other backends once.
 */
async function eachSelfSearch(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  if (!(be instanceof WebGPUBackend)) return body('');
  const paths: [boolean | null, { strip?: number; chunk?: number }, string][] = [
    [false, {}, 'one-sided'],
    [true, {}, 'symmetric'],
    [true, { strip: 1, chunk: 1 }, 'symmetric, strip 1, chunk 1'],
    [true, { strip: 3, chunk: 2 }, 'symmetric, strip 3, chunk 2'],
    [null, {}, 'by adapter'],
  ];
  try {
    for (const [v, layout, name] of paths) {
      forceSymmetricSelfSearch(v, layout);
      await body(` [${name}]`);
    }
  } finally {
    forceSymmetricSelfSearch(null);
  }
}

/**
 * Runs `body` once, and on WebGPU again with a loop budget so small that every long loop (y rows,
 * rows j, columns, candidates) is walked in ranges of one or a few, a dispatch each: the answers
 * must not depend on where the ranges split.
 */
async function eachLoopBudget(be: Backend, body: (what: string) => Promise<void>): Promise<void> {
  await body('');
  if (!(be instanceof WebGPUBackend)) return;
  const old = setLoopBudget(40);
  try {
    await body(' [loop budget 40]');
  } finally {
    setLoopBudget(old);
  }
}

conformance('neighbours', (test, be) => {
  test('nearestNeighbor, x against a separate y, odd sizes', async () => {
    const sizes = [
      [1, 1, 1],
      [1, 3, 17],
      [3, 1, 5],
      [17, 129, 3],
      [129, 17, 257],
      [257, 3, 129],
      [5, 257, 1],
      [6, 9, 4],
    ];
    await eachLoopBudget(be(), async (how) => {
      for (const [m, k, d] of sizes) {
        for (const excl of [false, true]) {
          const x = f32(randArray(m * d, m * 7 + d));
          const y = f32(randArray(k * d, k * 11 + d));
          await checkNN(be(), x, y, m, k, d, excl, false, `nn ${m}x${k}x${d}${excl ? ' excludeSelf' : ''}${how}`);
        }
      }
    });
  });

  test('nearestNeighbor of x against itself', async () => {
    for (const [m, d] of [
      [1, 3],
      [3, 17],
      [17, 5],
      [129, 33],
      [257, 17],
    ]) {
      const x = f32(randArray(m * d, m + d));
      await checkNN(be(), x, null, m, m, d, undefined, false, `self ${m}x${d}`);
      await checkNN(be(), x, null, m, m, d, false, false, `self ${m}x${d} keeping self`);
    }
  });

  test('nearestNeighbor ties go to the first index', () => eachLoopBudget(be(), (how) => tiesCase(be(), how)));

  test("long walks (llvmpipe stops an invocation's loops near 65535 iterations): the last rows still count", async () => {
    // All values positive and the last row of y all 2s: it is every query's neighbour by far.
    const planted = (n: number, d: number, seed: number) => {
      const y = f32(randArray(n * d, seed).map((v) => (v + 1) / 2));
      y.fill(2, (n - 1) * d);
      return y;
    };
    for (const [m, k, d] of [
      [3, 4096, 1024],
      [3, 65536, 64],
    ]) {
      const x = f32(randArray(m * d, 3).map((v) => (v + 1) / 2));
      await checkNN(be(), x, planted(k, d, 5), m, k, d, false, false, `${m} queries over K = ${k}, d = ${d}`);
    }
    // Each row's 2 best among 512 rows of 2048 features (512 · 2048 / 8 steps per row).
    const [k, d, mm] = [512, 2048, 2];
    const data = planted(k, d, 9);
    const x = pd.tensor(data, [k, d], be());
    const { candidates } = pd.nearestNeighborsSelf(x, mm);
    const got = await read(candidates);
    const ref = selfTopRef(data, k, d, mm, true);
    for (let i = 0; i < k - 1; i++) assert.is(got[i * mm], k - 1, `selfTopM ${k}x${d}: row ${i}'s best`);
    for (let i = 0; i < k; i++) {
      const s = ref.scores[i];
      for (let c = 0; c < mm; c++)
        assert.ok(Math.abs(s[got[i * mm + c]] - s[ref.lists[i][c]]) <= 1e-5 * d, `selfTopM row ${i} entry ${c}`);
    }
    // 70 candidates of 1100 features per row, the best one last.
    const [kc, dc, mc] = [80, 1100, 70];
    const cd = planted(kc, dc, 11);
    const cand = Float64Array.from({ length: kc * mc }, (_, e) => (e % mc === mc - 1 ? kc - 1 : (e * 7) % (kc - 1)));
    const xc = pd.tensor(cd, [kc, dc], be());
    const c = pd.tensor(cand, [kc, mc], be(), 'i32');
    const among = await read(pd.nearestAmongCandidates(xc, c).indices);
    for (let i = 0; i < kc; i++) assert.is(among[i], kc - 1, `candidates ${kc}x${dc} m ${mc}: row ${i}`);
    // topk over 70001 columns with the largest value last.
    const row = f32(randArray(2 * 70001, 13));
    row[70000] = 5;
    row[140001] = 5;
    const t = pd.tensor(row, [2, 70001], be());
    const top = pd.topk(t, 3);
    const tr = topkRef(row, 2, 70001, 3);
    assert.equal(await read(top.indices), tr.indices, 'topk over 70001 columns: indices');
    assert.equal(await read(top.values), tr.values, 'topk over 70001 columns: values');
    for (const u of [x, xc, c, t, top.values, top.indices, candidates]) u.dispose();
  });

  test('nearestNeighbor, larger: 257 queries over K = 4099, D = 64', async () => {
    const [m, k, d] = [257, 4099, 64];
    await checkNN(be(), f32(randArray(m * d, 41)), f32(randArray(k * d, 43)), m, k, d, false, false, 'large');
  });

  test('self search (each pair once) is bit-identical to the one-sided search over a copy', async () => {
    // The one-sided kernel is what KoLeo used before the symmetric one; a fixed-seed run must not change.
    const cases: [number, number, boolean][] = [
      [2, 1, false],
      [3, 5, false],
      [9, 4, false],
      [17, 3, true],
      [129, 33, false],
      [257, 64, false],
      [1031, 64, false],
      [600, 7, true],
      [1100, 17, false],
    ];
    for (const [k, d, tern] of cases) {
      const data = tern ? ternary(k * d, k + d) : f32(randArray(k * d, 3 * k + d));
      const x = pd.tensor(data, [k, d], be());
      const copy = pd.tensor(data, [k, d], be());
      for (const excludeSelf of [true, false]) {
        const a = pd.nearestNeighbor(x, undefined, { excludeSelf });
        const b = pd.nearestNeighbor(x, copy, { excludeSelf });
        const what = `${k}x${d}${tern ? ' ternary' : ''}${excludeSelf ? '' : ' keeping self'}`;
        assert.equal(await read(a.indices), await read(b.indices), `${what}: indices`);
        assert.equal(await read(a.values), await read(b.values), `${what}: values`);
        for (const t of [a.values, a.indices, b.values, b.indices]) t.dispose();
      }
      x.dispose();
      copy.dispose();
    }
  });

  test('exact self search at odd sizes: the one-sided kernel bit for bit, and the reference (duplicates, a NaN row, ties)', async () => {
    for (const k of [1, 2, 63, 65, 129, 257, 1000]) {
      for (const d of [1, 3, 16, 17, 64]) {
        for (const tern of [false, true]) {
          const data = tern ? ternary(k * d, 3 * k + d) : f32(randArray(k * d, 5 * k + d));
          if (!tern) {
            // Duplicates of row 0 across the row blocks (exactly equal scores), and a NaN row.
            for (let i = 5; i < k; i += 37) data.copyWithin(i * d, 0, d);
            if (k > 2) data.fill(NaN, 2 * d, 3 * d);
          }
          const x = pd.tensor(data, [k, d], be());
          const copy = pd.tensor(data, [k, d], be());
          for (const excludeSelf of [true, false]) {
            const what = `${k}x${d}${tern ? ' ternary' : ' duplicates, NaN row'}${excludeSelf ? '' : ' keeping self'}`;
            await checkNN(be(), data, null, k, k, d, excludeSelf, tern, what);
            const one = pd.nearestNeighbor(x, copy, { excludeSelf });
            const oneIdx = await read(one.indices);
            const oneVal = f32Bits(await read(one.values));
            await eachSelfSearch(be(), async (path) => {
              const a = pd.nearestNeighbor(x, undefined, { excludeSelf });
              assert.equal(await read(a.indices), oneIdx, `${what}${path}: indices`);
              assert.equal(f32Bits(await read(a.values)), oneVal, `${what}${path}: value bits`);
              a.values.dispose();
              a.indices.dispose();
            });
            one.values.dispose();
            one.indices.dispose();
          }
          x.dispose();
          copy.dispose();
        }
      }
    }
  });

  test("nearestNeighborsSelf: each row's m best, ties to the lower index; candidates search", async () => {
    const cases: [number, number, number, boolean][] = [
      [2, 3, 1, false],
      [5, 3, 4, false],
      [5, 2, 7, true],
      [33, 5, 3, true],
      [67, 9, 8, false],
      [129, 3, 5, true],
      [301, 17, 16, false],
      [1031, 64, 4, false],
    ];
    await eachLoopBudget(be(), async (how) => {
      for (const [k, d, m, tern] of cases) {
        const data = tern ? ternary(k * d, 7 * k + d) : f32(randArray(k * d, 5 * k + d));
        const x = pd.tensor(data, [k, d], be());
        for (const excludeSelf of [true, false]) {
          const what = `${k}x${d} m ${m}${tern ? ' ternary' : ''}${excludeSelf ? '' : ' keeping self'}${how}`;
          const { values, indices, candidates } = pd.nearestNeighborsSelf(x, m, { excludeSelf });
          assert.equal(candidates.shape, [k, m]);
          const ref = selfTopRef(data, k, d, m, excludeSelf);
          const got = await read(candidates);
          const idx = await read(indices);
          const vals = await read(values);
          for (let i = 0; i < k; i++) {
            const list = got.slice(i * m, i * m + m);
            const exp = ref.lists[i];
            const s = ref.scores[i];
            if (tern) {
              assert.equal(list, exp, `${what}: row ${i} list`);
            } else {
              // Random rows: the same scores up to rounding, at the same ranks.
              for (let c = 0; c < m; c++) {
                if (exp[c] < 0) {
                  assert.is(list[c], -1, `${what}: row ${i} entry ${c}`);
                  continue;
                }
                assert.ok(
                  list[c] >= 0 && Math.abs(s[list[c]] - s[exp[c]]) <= 1e-5 * d,
                  `${what}: row ${i} entry ${c}: ${list[c]} vs ${exp[c]}`,
                );
              }
            }
            assert.is(idx[i], list[0], `${what}: row ${i} best is the list's head`);
            if (list[0] >= 0) assert.ok(Math.abs(vals[i] - s[list[0]]) <= 1e-5 * d, `${what}: row ${i} value`);
            else assert.is(vals[i], -Infinity);
          }
          // Among its own candidates every row finds its exact neighbour, bit for bit.
          const exact = pd.nearestNeighbor(x, undefined, { excludeSelf });
          const among = pd.nearestAmongCandidates(x, candidates);
          assert.equal(await read(among.indices), await read(exact.indices), `${what}: among candidates, indices`);
          assert.equal(await read(among.values), await read(exact.values), `${what}: among candidates, values`);
          for (const t of [values, indices, candidates, exact.values, exact.indices, among.values, among.indices])
            t.dispose();
        }
        x.dispose();
      }
    });
  });

  test('nearestAmongCandidates against the reference: arbitrary lists, missing entries, ties', async () => {
    await eachLoopBudget(be(), async (how) => {
      for (const [k, d, m, tern] of [
        [7, 3, 3, true],
        [40, 5, 6, true],
        [65, 13, 5, false],
        [9, 1, 2, false],
      ] as [number, number, number, boolean][]) {
        const data = tern ? ternary(k * d, k) : f32(randArray(k * d, k + 1));
        const r = rng(k * 31 + m);
        // Candidates in any order, with repeats and -1 (none); row 0 has no candidate at all.
        const cand = Int32Array.from({ length: k * m }, (_, e) => (e < m ? -1 : r() < 0.2 ? -1 : Math.floor(r() * k)));
        const x = pd.tensor(data, [k, d], be());
        const c = pd.tensor(Float64Array.from(cand), [k, m], be(), 'i32');
        const { values, indices } = pd.nearestAmongCandidates(x, c);
        const vals = await read(values);
        const idx = await read(indices);
        for (let i = 0; i < k; i++) {
          const s = scoresRef(data, data, i, k, d);
          let bi = -1;
          for (const j of cand.slice(i * m, i * m + m))
            if (j >= 0 && (bi < 0 || s[j] > s[bi] || (s[j] === s[bi] && j < bi))) bi = j;
          const what = `${k}x${d} m ${m} row ${i}${how}`;
          if (bi < 0) {
            assert.is(idx[i], -1, what);
            assert.is(vals[i], -Infinity, what);
            continue;
          }
          if (tern) assert.is(idx[i], bi, what);
          assert.ok(Math.abs(vals[i] - s[bi]) <= 1e-5 * d, `${what}: value ${vals[i]} vs ${s[bi]}`);
        }
        for (const t of [x, c, values, indices]) t.dispose();
      }
    });
    const x = pd.zeros([3, 2], be());
    const wrong = pd.tensor(new Int32Array(4), [2, 2], be(), 'i32');
    assert.throws(() => pd.nearestAmongCandidates(x, wrong), /candidates \[k, m\]/);
    wrong.dispose();
    assert.throws(() => pd.nearestNeighborsSelf(x, 0), /m = 0 must be a positive integer/);
    x.dispose();
  });

  test('nearestNeighborDistance: forward and gradient', async () => {
    const dist = (x: Float64Array, y: Float64Array, m: number, k: number, d: number, excl: boolean) => {
      const nn = nearestNeighborRef(x, y, m, k, d, excl).indices;
      return Float64Array.from({ length: m }, (_, i) => {
        let s = 0;
        for (let l = 0; l < d; l++) s += (x[i * d + l] - y[nn[i] * d + l] + 1e-8) ** 2;
        return Math.sqrt(s);
      });
    };
    await gradCheck(
      be(),
      (x) => pd.nearestNeighborDistance(x).distances,
      (x) => dist(x, x, 9, 9, 4, true),
      [{ shape: [9, 4] }],
      { what: 'nearestNeighborDistance self' },
    );
    await gradCheck(
      be(),
      (x, y) => pd.nearestNeighborDistance(x, y).distances,
      (x, y) => dist(x, y, 5, 7, 3, false),
      [{ shape: [5, 3] }, { shape: [7, 3] }],
      { what: 'nearestNeighborDistance x, y' },
    );
  });

  test('topk: descending, lowest index first on ties', async () => {
    const cases: [number[], number][] = [
      [[1], 1],
      [[17], 5],
      [[3, 17], 17],
      [[17, 129], 5],
      [[5, 257], 257],
      [[2, 1031], 3],
      [[2, 3, 7], 2],
      [[4, 9], 0],
    ];
    await eachLoopBudget(be(), async (how) => {
      for (const [shape, k] of cases) {
        const n = shape.reduce((a, b) => a * b, 1);
        const cols = shape[shape.length - 1];
        const x = randArray(n, n + k).map((v) => Math.round(v * 4) / 4); // many ties
        const t = pd.tensor(x, shape, be());
        const { values, indices } = pd.topk(t, k);
        assert.equal(values.shape, [...shape.slice(0, -1), k]);
        const ref = topkRef(x, n / cols, cols, k);
        assert.equal(await read(values), ref.values, `topk [${shape}] k ${k} values${how}`);
        assert.equal(await read(indices), ref.indices, `topk [${shape}] k ${k} indices${how}`);
        for (const u of [t, values, indices]) u.dispose();
      }
    });
  });

  test('shape errors', () => {
    const a = pd.zeros([3, 4], be());
    const b = pd.zeros([5, 3], be());
    assert.throws(
      () => pd.nearestNeighbor(a, b),
      /nearestNeighbor: needs x \[m, d\] and y \[k, d\], got \[3,4\] and \[5,3\]/,
    );
    assert.throws(() => pd.topk(a, 5), /topk: k = 5 must be an integer in \[0, 4\]/);
    const one = pd.zeros([1, 4], be());
    assert.throws(() => pd.nearestNeighborDistance(one), /y needs at least 2 rows/);
    for (const t of [a, b, one]) t.dispose();
  });
});
