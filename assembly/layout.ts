// Layout kernels: strided copy (permute/slice/concat/patchify all reduce to it), row gather and its
// adjoint, a deterministic row scatter-add. Values are moved as raw 32-bit words, so the same
// kernels serve f32 and i32 storages bit for bit.
import { ldf, ldi, rowOffset, stf } from './common';

/** dst[dstOffset + idx·dstStrides] = src[srcOffset + idx·srcStrides]; one unit per row of dims 0..4. */
export function copyStrided(src: usize, dst: usize, shape: usize, srcOffset: i32, srcStrides: usize,
  dstOffset: i32, dstStrides: usize, start: i32, end: i32): void {
  const inner = ldi(shape, 5);
  const si = ldi(srcStrides, 5), di = ldi(dstStrides, 5);
  for (let r = start; r < end; r++) {
    const ps = src + (<usize>(srcOffset + rowOffset(r, shape, srcStrides)) << 2);
    const pd = dst + (<usize>(dstOffset + rowOffset(r, shape, dstStrides)) << 2);
    if (si == 1 && di == 1) {
      memory.copy(pd, ps, <usize>inner << 2);
    } else {
      for (let i = 0; i < inner; i++) {
        store<u32>(pd + (<usize>(i * di) << 2), load<u32>(ps + (<usize>(i * si) << 2)));
      }
    }
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
