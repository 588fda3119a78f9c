// Layout kernels: strided copy (permute/slice/concat/patchify all reduce to it), row gather and its
// adjoint, a deterministic row scatter-add. Values are moved as raw 32-bit words, so the same
// kernels serve f32 and i32 storages bit for bit.
import { ldf, ldi, rowOffset, stf } from './common';

/**
 * dst[dstOffset + idx·dstStrides] = src[srcOffset + idx·srcStrides]; one unit per row of dims 0..4.
 * The row offsets are carried from row to row like an odometer: recomputing them per row (ten
 * integer divisions) cost more than moving a short row, and attention's permutes have rows of one
 * head's width (16 floats at vit_cpu). Short contiguous rows are moved with v128 loads and stores
 * (memory.copy has a fixed call cost).
 */
export function copyStrided(src: usize, dst: usize, shape: usize, srcOffset: i32, srcStrides: usize,
  dstOffset: i32, dstStrides: usize, start: i32, end: i32): void {
  if (start >= end) return;
  const inner = ldi(shape, 5);
  const si = ldi(srcStrides, 5), di = ldi(dstStrides, 5);
  const n1 = ldi(shape, 1), n2 = ldi(shape, 2), n3 = ldi(shape, 3), n4 = ldi(shape, 4);
  const s0 = ldi(srcStrides, 0), s1 = ldi(srcStrides, 1), s2 = ldi(srcStrides, 2), s3 = ldi(srcStrides, 3), s4 = ldi(srcStrides, 4);
  const d0 = ldi(dstStrides, 0), d1 = ldi(dstStrides, 1), d2 = ldi(dstStrides, 2), d3 = ldi(dstStrides, 3), d4 = ldi(dstStrides, 4);
  let r = start;
  const i4s = r % n4; r /= n4;
  const i3s = r % n3; r /= n3;
  const i2s = r % n2; r /= n2;
  const i1s = r % n1; r /= n1;
  let i4 = i4s, i3 = i3s, i2 = i2s, i1 = i1s;
  let os = srcOffset + r * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4;
  let od = dstOffset + r * d0 + i1 * d1 + i2 * d2 + i3 * d3 + i4 * d4;
  const contiguous = si == 1 && di == 1;
  const bytes = <usize>inner << 2;
  for (let row = start; row < end; row++) {
    const ps = src + (<usize>os << 2);
    const pd = dst + (<usize>od << 2);
    if (contiguous) {
      if (inner >= 64) {
        memory.copy(pd, ps, bytes);
      } else {
        let b: usize = 0;
        for (; b + 16 <= bytes; b += 16) v128.store(pd + b, v128.load(ps + b));
        for (; b < bytes; b += 4) store<u32>(pd + b, load<u32>(ps + b));
      }
    } else {
      for (let i = 0; i < inner; i++) {
        store<u32>(pd + (<usize>(i * di) << 2), load<u32>(ps + (<usize>(i * si) << 2)));
      }
    }
    // next row: advance the odometer over dims 4..0
    os += s4; od += d4;
    if (++i4 < n4) continue;
    i4 = 0; os += s3 - n4 * s4; od += d3 - n4 * d4;
    if (++i3 < n3) continue;
    i3 = 0; os += s2 - n3 * s3; od += d2 - n3 * d3;
    if (++i2 < n2) continue;
    i2 = 0; os += s1 - n2 * s2; od += d1 - n2 * d2;
    if (++i1 < n1) continue;
    i1 = 0; os += s0 - n1 * s1; od += d0 - n1 * d1;
  }
}

/**
 * out[i, :] = x[idx[i], :] for i in [start, end). An index outside [0, rows) yields a zero row and
 * its position is written to *bad (any one of them when several threads see one), so the caller
 * can raise a clear error instead of reading another tensor's memory.
 */
export function gatherRows(x: usize, idx: usize, out: usize, cols: i32, rows: i32, bad: usize,
  start: i32, end: i32): void {
  const bytes = <usize>cols << 2;
  for (let i = start; i < end; i++) {
    const r = ldi(idx, i);
    const po = out + <usize>i * bytes;
    if (r < 0 || r >= rows) {
      store<i32>(bad, i);
      memory.fill(po, 0, bytes);
      continue;
    }
    memory.copy(po, x + <usize>r * bytes, bytes);
  }
}

const CHUNK = 64;

/** Work units of scatterAddRows: (row block, 64-column chunk) pairs. */
export function scatterUnits(cols: i32, rowBlocks: i32): i32 {
  return rowBlocks * ((cols + CHUNK - 1) / CHUNK);
}

/**
 * dx[r, :] = Σ_{i: idx[i] = r} dy[i, :]. A unit owns the rows of one row block and one column
 * chunk; it zeroes them, then walks idx in order adding the matching dy rows, so every sum has a
 * fixed order whatever the thread count. Indices outside [0, rows) add nowhere.
 */
export function scatterAddRows(dy: usize, idx: usize, dx: usize, nIdx: i32, rows: i32, cols: i32, rowBlocks: i32,
  start: i32, end: i32): void {
  const chunks = (cols + CHUNK - 1) / CHUNK;
  for (let u = start; u < end; u++) {
    const rb = u / chunks;
    const c0 = (u % chunks) * CHUNK;
    const c1 = min(c0 + CHUNK, cols);
    const r0 = <i32>((<i64>rows * rb) / rowBlocks);
    const r1 = <i32>((<i64>rows * (rb + 1)) / rowBlocks);
    for (let r = r0; r < r1; r++) memory.fill(dx + (<usize>(r * cols + c0) << 2), 0, <usize>(c1 - c0) << 2);
    for (let i = 0; i < nIdx; i++) {
      const r = ldi(idx, i);
      if (r < r0 || r >= r1) continue;
      const pd = dx + (<usize>(r * cols) << 2);
      const ps = dy + (<usize>(i * cols) << 2);
      let c = c0;
      for (; c + 4 <= c1; c += 4) {
        const o = <usize>c << 2;
        v128.store(pd + o, f32x4.add(v128.load(pd + o), v128.load(ps + o)));
      }
      for (; c < c1; c++) stf(pd, c, ldf(pd, c) + ldf(ps, c));
    }
  }
}
