// Layer norm over the last axis of [rows, cols] and its gradient. Row kernels take one work unit
// per row, SIMD along cols. The affine-parameter gradient is a column reduction over rows, done as
// its own pass whose work units are column chunks: every dgamma/dbeta element is summed by one
// thread in row order, so the result is the same for any thread count (no per-thread partials).
// A null gamma/beta arrives as pointer 0 (the allocator never hands out address 0).
import { madd } from './common';

const CHUNK = 16; // columns per unit of the parameter-gradient pass: one 64-byte line per row

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function at(p: usize, c: i32): usize {
  return p + (<usize>c << 2);
}

/**
 * One row of layer norm, given s, the row's sum taken 4 lanes then the tail, as both callers take it:
 * out = (x − mean)·rstd·gamma + beta; variance from a second pass over the row (no cancellation).
 */
// @ts-ignore: decorator
@inline function normRow(p: usize, q: usize, gamma: usize, beta: usize, mean: usize, rstd: usize, r: i32, cols: i32,
  eps: f32, s: f32): void {
  const n = <f32>cols;
  const mu = s / n;
  const vmu = f32x4.splat(mu);
  let v4 = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const d = f32x4.sub(v128.load(at(p, c)), vmu);
    v4 = madd(d, d, v4);
  }
  let v = hsum(v4);
  for (; c < cols; c++) {
    const d = load<f32>(at(p, c)) - mu;
    v += d * d;
  }
  const rs: f32 = 1.0 / Mathf.sqrt(v / n + eps);
  store<f32>(at(mean, r), mu);
  store<f32>(at(rstd, r), rs);
  const vrs = f32x4.splat(rs);
  c = 0;
  for (; c + 4 <= cols; c += 4) {
    let y = f32x4.mul(f32x4.sub(v128.load(at(p, c)), vmu), vrs);
    if (gamma) y = f32x4.mul(y, v128.load(at(gamma, c)));
    if (beta) y = f32x4.add(y, v128.load(at(beta, c)));
    v128.store(at(q, c), y);
  }
  for (; c < cols; c++) {
    let y = (load<f32>(at(p, c)) - mu) * rs;
    if (gamma) y *= load<f32>(at(gamma, c));
    if (beta) y += load<f32>(at(beta, c));
    store<f32>(at(q, c), y);
  }
}

/** out = (x − mean)·rstd·gamma + beta over each row. */
export function layerNorm(x: usize, gamma: usize, beta: usize, out: usize, mean: usize, rstd: usize, cols: i32, eps: f32,
  start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const p = x + off;
    let s4 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) s4 = f32x4.add(s4, v128.load(at(p, c)));
    let s = hsum(s4);
    for (; c < cols; c++) s += load<f32>(at(p, c));
    normRow(p, out + off, gamma, beta, mean, rstd, r, cols, eps, s);
  }
}

/**
 * A residual add and the layer norm after it in one pass over the rows: sum = x + a (a's aRows rows
 * repeat down x's, for a position embedding shared by a batch) and out = layerNorm(sum), the same
 * bits as the add then layerNorm, which reads sum back while it is in cache. A ViT block's residual
 * stream is always normalised right after each add (norm2 after the attention branch, the next
 * block's norm1 or the final norm after the MLP branch), so every binary.add of its forward pass goes.
 * At the vit_cpu step's 6400x64 against binary add + layerNorm (bench fusions, interleaved, best of
 * 15, CPU ms): 1 thread 0.375 against 0.424 (1.13x), 2 threads 0.184 against 0.331.
 */
export function addLayerNorm(x: usize, a: usize, aRows: i32, sum: usize, gamma: usize, beta: usize, out: usize,
  mean: usize, rstd: usize, cols: i32, eps: f32, start: i32, end: i32): void {
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const px = x + off, pa = a + (<usize>(r % aRows) * <usize>cols << 2), p = sum + off;
    let s4 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const v = f32x4.add(v128.load(at(px, c)), v128.load(at(pa, c)));
      v128.store(at(p, c), v);
      s4 = f32x4.add(s4, v);
    }
    let s = hsum(s4);
    for (; c < cols; c++) {
      const v = load<f32>(at(px, c)) + load<f32>(at(pa, c));
      store<f32>(at(p, c), v);
      s += v;
    }
    normRow(p, out + off, gamma, beta, mean, rstd, r, cols, eps, s);
  }
}

/**
 * dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)) with g = dy·gamma and x̂ = (x − mean)·rstd, plus dres
 * when it is not 0: the gradient autograd already holds for x (the residual stream's, from the next
 * residual add), added to each value as the separate gradient add did (dres + v, the same bits), so
 * that add and its pass over the row go. dx may alias dy or dres. At 6400x64 against layerNormGrad +
 * binary add (bench fusions, CPU ms): 1 thread 0.246 against 0.335 (1.36x), 2 threads 0.126 against
 * 0.199 (1.58x).
 */
export function layerNormGrad(x: usize, gamma: usize, mean: usize, rstd: usize, dy: usize, dx: usize, dres: usize,
  cols: i32, start: i32, end: i32): void {
  const n = <f32>cols;
  for (let r = start; r < end; r++) {
    const off = <usize>r * <usize>cols << 2;
    const p = x + off, pg = dy + off, pd = dx + off, pr = dres + off;
    const mu = load<f32>(at(mean, r)), rs = load<f32>(at(rstd, r));
    const vmu = f32x4.splat(mu), vrs = f32x4.splat(rs);
    let a4 = f32x4.splat(0), b4 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      let g = v128.load(at(pg, c));
      if (gamma) g = f32x4.mul(g, v128.load(at(gamma, c)));
      const xh = f32x4.mul(f32x4.sub(v128.load(at(p, c)), vmu), vrs);
      a4 = f32x4.add(a4, g);
      b4 = madd(g, xh, b4);
    }
    let a = hsum(a4), b = hsum(b4);
    for (; c < cols; c++) {
      let g = load<f32>(at(pg, c));
      if (gamma) g *= load<f32>(at(gamma, c));
      a += g;
      b += g * (load<f32>(at(p, c)) - mu) * rs;
    }
    a /= n;
    b /= n;
    const va = f32x4.splat(a), vb = f32x4.splat(b);
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      let g = v128.load(at(pg, c));
      if (gamma) g = f32x4.mul(g, v128.load(at(gamma, c)));
      const xh = f32x4.mul(f32x4.sub(v128.load(at(p, c)), vmu), vrs);
      let d = f32x4.mul(vrs, f32x4.sub(f32x4.sub(g, va), f32x4.mul(xh, vb)));
      if (dres) d = f32x4.add(v128.load(at(pr, c)), d);
      v128.store(at(pd, c), d);
    }
    for (; c < cols; c++) {
      let g = load<f32>(at(pg, c));
      if (gamma) g *= load<f32>(at(gamma, c));
      const xh = (load<f32>(at(p, c)) - mu) * rs;
      let d = rs * (g - a - xh * b);
      if (dres) d = load<f32>(at(pr, c)) + d;
      store<f32>(at(pd, c), d);
    }
  }
}

/** Work units of layerNormGradParams (the JS side sizes its parallel loop with it). */
export function layerNormParamUnits(cols: i32): i32 {
  return (cols + CHUNK - 1) / CHUNK;
}

/**
 * dgamma[c] = Σ_r dy[r,c]·x̂[r,c] and dbeta[c] = Σ_r dy[r,c], overwritten; either may be 0 (skipped).
 * One unit per CHUNK columns, rows summed in order.
 */
export function layerNormGradParams(x: usize, mean: usize, rstd: usize, dy: usize, dgamma: usize, dbeta: usize,
  rows: i32, cols: i32, start: i32, end: i32): void {
  for (let u = start; u < end; u++) {
    const c0 = u * CHUNK;
    if (c0 + CHUNK <= cols) {
      let g0 = f32x4.splat(0), g1 = g0, g2 = g0, g3 = g0;
      let b0 = g0, b1 = g0, b2 = g0, b3 = g0;
      for (let r = 0; r < rows; r++) {
        const off = (<usize>r * <usize>cols + <usize>c0) << 2;
        const p = x + off, pg = dy + off;
        const vmu = f32x4.splat(load<f32>(at(mean, r))), vrs = f32x4.splat(load<f32>(at(rstd, r)));
        const d0 = v128.load(pg), d1 = v128.load(pg + 16), d2 = v128.load(pg + 32), d3 = v128.load(pg + 48);
        b0 = f32x4.add(b0, d0); b1 = f32x4.add(b1, d1); b2 = f32x4.add(b2, d2); b3 = f32x4.add(b3, d3);
        if (dgamma) {
          g0 = madd(d0, f32x4.mul(f32x4.sub(v128.load(p), vmu), vrs), g0);
          g1 = madd(d1, f32x4.mul(f32x4.sub(v128.load(p + 16), vmu), vrs), g1);
          g2 = madd(d2, f32x4.mul(f32x4.sub(v128.load(p + 32), vmu), vrs), g2);
          g3 = madd(d3, f32x4.mul(f32x4.sub(v128.load(p + 48), vmu), vrs), g3);
        }
      }
      if (dgamma) {
        const q = at(dgamma, c0);
        v128.store(q, g0); v128.store(q + 16, g1); v128.store(q + 32, g2); v128.store(q + 48, g3);
      }
      if (dbeta) {
        const q = at(dbeta, c0);
        v128.store(q, b0); v128.store(q + 16, b1); v128.store(q + 32, b2); v128.store(q + 48, b3);
      }
      continue;
    }
    for (let c = c0; c < cols; c++) {
      let sg: f32 = 0, sb: f32 = 0;
      for (let r = 0; r < rows; r++) {
        const i = r * cols + c;
        const d = load<f32>(at(dy, i));
        sb += d;
        sg += d * (load<f32>(at(x, i)) - load<f32>(at(mean, r))) * load<f32>(at(rstd, r));
      }
      if (dgamma) store<f32>(at(dgamma, c), sg);
      if (dbeta) store<f32>(at(dbeta, c), sb);
    }
  }
}

// ---- batch norm over [n, C, hw] (NCHW feature maps), one work unit per channel ----------------
// A channel's statistics and gradient sums run over its n planes in order, in one thread, with
// four SIMD lanes per plane combined at the end of each plane: the same bits for any thread count.
// Measured (CPU ms, 1 thread, shared host): relu(bn(x) + r) forward + backward on resnet_cpu's
// maps at batch 128 ([128, 16, 28²], [128, 32, 14²], [128, 64, 7²], [128, 128, 4²]) went from
// 28.2, 16.0, 13.6, 13.4 ms composed of elementwise/reduce ops to 17.6, 9.3, 6.1, 3.6 fused:
// about ten passes over the map became five (stats two, apply one, gradient two).

/** Σ over one plane of x (lanes, then the tail). */
// @ts-ignore: decorator
@inline function planeSum(p: usize, hw: i32): f32 {
  let s4 = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= hw; i += 4) s4 = f32x4.add(s4, v128.load(at(p, i)));
  let s = hsum(s4);
  for (; i < hw; i++) s += load<f32>(at(p, i));
  return s;
}

/** Σ (x − mu)² over one plane. */
// @ts-ignore: decorator
@inline function planeSqDev(p: usize, hw: i32, mu: f32): f32 {
  const m4 = f32x4.splat(mu);
  let s4 = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= hw; i += 4) {
    const d = f32x4.sub(v128.load(at(p, i)), m4);
    s4 = madd(d, d, s4);
  }
  let s = hsum(s4);
  for (; i < hw; i++) {
    const d = load<f32>(at(p, i)) - mu;
    s += d * d;
  }
  return s;
}

// BatchNorm runs in passes over planes (b, c) in [0, n·C), b-major, so a thread's planes are a run
// of whole images: the same images its share of the convolution before or after touched (the
// implicit GEMM splits its columns, batch × pixels, the same way). Splitting by channel instead made
// each thread read half its planes from the other core's cache: on 2 threads, resnet_cpu's
// BatchNorm kernels took 46-47 ms per batch-64 DINO step against 58 ms on 1 thread; split by planes,
// 26-35 ms (two interleaved runs each on the idle 2-core host; a standalone BatchNorm on warm data
// scales 2x either way, so it is the data's placement, not the work split, that cost). A channel's sums stay bit for bit what one thread summing its
// planes in b order gets: each plane's partial sum is the same function of the same values, and
// batchNormCombine adds them per channel in b order.

/** partial[pl] = Σ of plane pl (units: planes). */
export function batchNormPlaneSums(x: usize, partial: usize, hw: i32, start: i32, end: i32): void {
  for (let pl = start; pl < end; pl++) store<f32>(at(partial, pl), planeSum(at(x, pl * hw), hw));
}

/** partial[pl] = Σ (x − mean[c])² over plane pl = (b, c) (units: planes). */
export function batchNormPlaneSqDevs(x: usize, mean: usize, partial: usize, C: i32, hw: i32, start: i32, end: i32): void {
  for (let pl = start; pl < end; pl++) store<f32>(at(partial, pl), planeSqDev(at(x, pl * hw), hw, load<f32>(at(mean, pl % C))));
}

/**
 * Adds row b of partial [n][width] into acc[0, len) for b = 0..n−1 in order, acc starting at 0: each
 * acc[j] is the sum of its column in b order, as a scalar loop adding one b at a time gets it.
 * Rows outer, so the reads run along memory (per channel, down the column, read a cache line per
 * value: the 2048-channel head BatchNorm's), and split over channels: resnet18's 213 combines per
 * 2-thread DINO step took 13.0 → 3.5 ms (one thread, column order before).
 */
// @ts-ignore: decorator
@inline function columnSums(partial: usize, acc: usize, n: i32, width: i32, len: i32): void {
  memory.fill(acc, 0, <usize>len << 2);
  for (let b = 0; b < n; b++) {
    const row = at(partial, b * width);
    let j = 0;
    for (; j + 4 <= len; j += 4) v128.store(at(acc, j), f32x4.add(v128.load(at(acc, j)), v128.load(at(row, j))));
    for (; j < len; j++) store<f32>(at(acc, j), load<f32>(at(acc, j)) + load<f32>(at(row, j)));
  }
}

/** out[c] = (Σ_b partial[b·C + c]) / divisor, summed in b order from 0. Units: channels. */
export function batchNormCombine(partial: usize, out: usize, n: i32, C: i32, divisor: f32, start: i32, end: i32): void {
  columnSums(at(partial, start), at(out, start), n, C, end - start);
  for (let c = start; c < end; c++) store<f32>(at(out, c), load<f32>(at(out, c)) / divisor);
}

/** y = act((x − mean)·rstd·gamma + beta + residual); gamma, beta, residual may be 0 (absent); act 1 = relu. Units: planes. */
export function batchNormApply(x: usize, mean: usize, rstd: usize, gamma: usize, beta: usize, residual: usize, out: usize,
  n: i32, C: i32, hw: i32, relu: i32, start: i32, end: i32): void {
  for (let pl = start; pl < end; pl++) {
    const c = pl % C;
    const scale = load<f32>(at(rstd, c)) * (gamma ? load<f32>(at(gamma, c)) : 1);
    const shift = (beta ? load<f32>(at(beta, c)) : 0) - load<f32>(at(mean, c)) * scale;
    const s4 = f32x4.splat(scale), t4 = f32x4.splat(shift), z4 = f32x4.splat(0);
    const off = pl * hw;
    const p = at(x, off), q = at(out, off), r = residual ? at(residual, off) : 0;
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      let y = madd(v128.load(at(p, i)), s4, t4);
      if (residual) y = f32x4.add(y, v128.load(at(r, i)));
      if (relu) y = f32x4.max(y, z4);
      v128.store(at(q, i), y);
    }
    for (; i < hw; i++) {
      let y = load<f32>(at(p, i)) * scale + shift;
      if (residual) y += load<f32>(at(r, i));
      if (relu) y = max(y, 0);
      store<f32>(at(q, i), y);
    }
  }
}

/**
 * Backward of batchNormApply, first pass: per plane pl = (b, c), partial[2·pl] = Σ g and
 * partial[2·pl + 1] = Σ g·x̂ with g = dy (masked by y > 0 when relu) and x̂ = (x − mean)·rstd.
 * Units: planes.
 */
export function batchNormGradPlaneSums(x: usize, y: usize, mean: usize, rstd: usize, dy: usize, partial: usize,
  C: i32, hw: i32, relu: i32, start: i32, end: i32): void {
  const z4 = f32x4.splat(0);
  for (let pl = start; pl < end; pl++) {
    const c = pl % C;
    const mu = load<f32>(at(mean, c)), rs = load<f32>(at(rstd, c));
    const m4 = f32x4.splat(mu), r4 = f32x4.splat(rs);
    const off = pl * hw;
    const px = at(x, off), py = at(y, off), pg = at(dy, off);
    let a4 = f32x4.splat(0), b4 = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      let g = v128.load(at(pg, i));
      if (relu) g = v128.and(g, f32x4.gt(v128.load(at(py, i)), z4));
      const xh = f32x4.mul(f32x4.sub(v128.load(at(px, i)), m4), r4);
      a4 = f32x4.add(a4, g);
      b4 = madd(g, xh, b4);
    }
    let a = hsum(a4), bb = hsum(b4);
    for (; i < hw; i++) {
      let g = load<f32>(at(pg, i));
      if (relu && !(load<f32>(at(py, i)) > 0)) g = 0;
      a += g;
      bb += g * ((load<f32>(at(px, i)) - mu) * rs);
    }
    store<f32>(at(partial, 2 * pl), a);
    store<f32>(at(partial, 2 * pl + 1), bb);
  }
}

/**
 * Backward of batchNormApply, between the passes: sums [C][2] = (Σ g, Σ g·x̂) per channel, the plane
 * partials added in b order from 0, also written to dbeta and dgamma where wanted (0: not).
 * Units: channels.
 */
export function batchNormGradCombine(partial: usize, sums: usize, dgamma: usize, dbeta: usize, n: i32, C: i32,
  start: i32, end: i32): void {
  columnSums(at(partial, 2 * start), at(sums, 2 * start), n, 2 * C, 2 * (end - start));
  for (let c = start; c < end; c++) {
    if (dgamma) store<f32>(at(dgamma, c), load<f32>(at(sums, 2 * c + 1)));
    if (dbeta) store<f32>(at(dbeta, c), load<f32>(at(sums, 2 * c)));
  }
}

/**
 * Backward of batchNormApply, second pass, given sums [C][2] = (Σ g, Σ g·x̂) per channel (from
 * batchNormCombine): dres = g (0: not wanted); with batch statistics
 * dx = gamma·rstd·(g − mean(g) − x̂·mean(g·x̂)), else dx = gamma·rstd·g. Units: planes.
 */
export function batchNormGradApply(x: usize, y: usize, mean: usize, rstd: usize, gamma: usize, dy: usize, dx: usize,
  dres: usize, sums: usize, n: i32, C: i32, hw: i32, relu: i32, batchStats: i32, start: i32, end: i32): void {
  const count = <f32>(n * hw);
  const z4 = f32x4.splat(0);
  for (let pl = start; pl < end; pl++) {
    const c = pl % C;
    const mu = load<f32>(at(mean, c)), rs = load<f32>(at(rstd, c));
    const m4 = f32x4.splat(mu), r4 = f32x4.splat(rs);
    const sg = load<f32>(at(sums, 2 * c)), sgx = load<f32>(at(sums, 2 * c + 1));
    const k = rs * (gamma ? load<f32>(at(gamma, c)) : 1);
    const am = batchStats ? sg / count : 0, bm = batchStats ? sgx / count : 0;
    const k4 = f32x4.splat(k), am4 = f32x4.splat(am), bm4 = f32x4.splat(bm);
    const off = pl * hw;
    const px = at(x, off), py = at(y, off), pg = at(dy, off), pd = at(dx, off), pr = dres ? at(dres, off) : 0;
    let i = 0;
    for (; i + 4 <= hw; i += 4) {
      let g = v128.load(at(pg, i));
      if (relu) g = v128.and(g, f32x4.gt(v128.load(at(py, i)), z4));
      if (dres) v128.store(at(pr, i), g);
      const xh = f32x4.mul(f32x4.sub(v128.load(at(px, i)), m4), r4);
      v128.store(at(pd, i), f32x4.mul(k4, f32x4.sub(f32x4.sub(g, am4), f32x4.mul(xh, bm4))));
    }
    for (; i < hw; i++) {
      let g = load<f32>(at(pg, i));
      if (relu && !(load<f32>(at(py, i)) > 0)) g = 0;
      if (dres) store<f32>(at(pr, i), g);
      const xh = (load<f32>(at(px, i)) - mu) * rs;
      store<f32>(at(pd, i), k * ((g - am) - xh * bm));
    }
  }
}
