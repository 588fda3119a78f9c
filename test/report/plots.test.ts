// The spread figure's host-side parts: the principal-plane projection binned on a square grid (every
// prototype in exactly one cell, a tight group in one cell) and the share of pairs below an angle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { projectionCells, shareBelow } from '../../src/report/plots.js';

test('projection cells: every prototype counted once, a tight group in one cell, square range', () => {
  // Three groups of 10 at the corners of a triangle, each within 0.001 of its corner.
  const corners = [
    [0.6, 0.1],
    [-0.3, 0.52],
    [-0.3, -0.62],
  ];
  const x = new Float32Array(30),
    y = new Float32Array(30);
  for (let k = 0; k < 30; k++) {
    x[k] = corners[k % 3][0] + 0.001 * Math.sin(k);
    y[k] = corners[k % 3][1] + 0.001 * Math.cos(k);
  }
  const { ticks, values } = projectionCells({ x, y, explained: [0.6, 0.4] }, 0.62);
  assert.equal(ticks.domain, [-1, 1]);
  assert.equal(values.map((v) => v.count).sort(), [10, 10, 10]);
  for (const v of values) {
    const inside = corners.filter(
      ([cx, cy]) => cx >= (v.x0 as number) && cx < (v.x1 as number) && cy >= (v.y0 as number) && cy < (v.y1 as number),
    );
    assert.is(inside.length, 1, `cell at ${v.x0}, ${v.y0} holds one corner`);
  }
  // Spread points: as many cells as points when none share one; the range's edge falls in the last cell.
  const sx = Float32Array.from({ length: 8 }, (_, k) => -0.55 + 0.15 * k),
    sy = Float32Array.from({ length: 8 }, (_, k) => 0.6 - 0.15 * k);
  const spread = projectionCells({ x: sx, y: sy, explained: [0.1, 0.1] }, 0.6);
  assert.is(spread.values.length, 8);
  assert.ok(spread.values.every((v) => v.count === 1));
});

test('share below an angle: the bins wholly under it', () => {
  const edges = Float64Array.from({ length: 91 }, (_, b) => 2 * b);
  const counts = new Float64Array(90);
  counts[0] = 3;
  counts[4] = 2; // 8–10°
  counts[5] = 5; // 10–12°
  counts[45] = 10;
  assert.is(shareBelow({ edges, counts, pairs: 20 }, 10), 0.25);
  assert.is(shareBelow({ edges, counts, pairs: 20 }, 2), 0.15);
  assert.is(shareBelow({ edges, counts, pairs: 20 }, 180), 1);
});

test.run();
