// The Winograd F(4×4, 3×3) weight gradient fused per block of 16 tiles: dU_ξ [O × C] = Σ_tiles
// dM_ξ · V_ξᵀ, with V = Bᵀ d B of the input patches and dM = A dY Aᵀ of the output gradient's 4×4
// blocks (winogradInput and winogradOutputGrad of winograd.ts, the same arithmetic), transformed
// one block at a time in a thread's scratch slot and multiplied there on the 4×8 micro-kernel with
// the block's 16 tiles as the reduction. Then winogradWeightsGrad takes dU to dw as before.
// Determinism: the tiles are cut into G groups of blocks fixed by the shape alone (winogradGradGroups
// on the JS side), each group sums its blocks in order into its own accumulator, and
// winogradGradSum adds the groups in order: the result does not depend on the thread count.
// The packed operands come out of the transforms through 4×4 transposes: the transforms give one
// vector per ξ holding four tiles of one channel, the micro-kernel wants per ξ and tile the four
// (dM) or eight (V) channels of a panel side by side.
// Why: the three-kernel composition streams V and dM for all tiles through memory, and at 16
// channels the implicit GEMM beat it on two threads (see winogradFits in src/tensor/ops/conv.ts).
import { BLOCK, adjointRow, inputRow } from './winograd';
import { inputRows } from './winograd-fused';
import { addr, LOAD, micro, MR, NR, transpose4, ZERO } from './microkernel';

/** Bytes of the slot's head: eight channels' 36 lane vectors for one group of four tiles, two tile tables. */
const HEAD = 8 * 36 * 16 + 2 * BLOCK * 4;

/** Bytes of one thread's slot in winogradGradFused: the head, V [36][C/NR panels][16][NR], dM [36][O/MR panels][16][MR]. */
export function winogradGradSlot(C: i32, O: i32): i32 {
  const cPad = ((C + NR - 1) / NR) * NR, oPad = ((O + MR - 1) / MR) * MR;
  return HEAD + 36 * BLOCK * (cPad + oPad) * 4;
}

/**
 * acc[g] [36][oPad][cPad] = Σ over the blocks of group g (blocks ⌊g·blocks/G⌋ up to the next
 * group's first, in order) of dM_ξ·V_ξᵀ, for the tiles [first, first + N). xp: the input
 * zero-padded as in winogradFused ([B + 1][C][Hp][Wp], the last image all zero, for tiles past N);
 * dyp: the output gradient as [B + 1][O][4·th][4·tw], zero past oh × ow and in the last image.
 * Units are the G groups. scratch: an i32 slot counter (zeroed by the caller), then slotBytes per thread.
 */
export function winogradGradFused(xp: usize, dyp: usize, acc: usize, C: i32, O: i32, Hp: i32, Wp: i32, th: i32, tw: i32,
  first: i32, N: i32, B: i32, G: i32, slotBytes: i32, scratch: usize, start: i32, end: i32): void {
  const slot = scratch + 64 + <usize>atomic.add<i32>(scratch, 1) * <usize>slotBytes;
  const cPad = ((C + NR - 1) / NR) * NR, oPad = ((O + MR - 1) / MR) * MR;
  const cPanels = cPad / NR, oPanels = oPad / MR;
  const xoff = slot + 8 * 36 * 16, doff = xoff + BLOCK * 4;
  const v = slot + HEAD;
  const dm = v + <usize>(36 * BLOCK * cPad) * 4;
  const tiles = th * tw, Hq = 4 * th, Wq = 4 * tw;
  const rowX = <usize>Wp << 2, rowQ = <usize>Wq << 2;
  const planeX = Hp * Wp, planeQ = Hq * Wq;
  const blocks = (N + BLOCK - 1) / BLOCK;
  const accBytes = <usize>(36 * oPad * cPad) << 2;
  for (let g = start; g < end; g++) {
    const accG = acc + <usize>g * accBytes;
    const uStart = <i32>((<i64>g * blocks) / G), uEnd = <i32>((<i64>(g + 1) * blocks) / G);
    for (let u = uStart; u < uEnd; u++) {
      const q0 = u * BLOCK;
      // the block's tiles: patch origin in xp and block origin in dyp (channel 0); tiles past N read the zero image
      const qf = first + q0;
      let b = qf / tiles, ty = (qf % tiles) / tw, tx = qf % tw;
      for (let t = 0; t < BLOCK; t++) {
        const bb = q0 + t < N ? b : B;
        store<i32>(xoff + (<usize>t << 2), (bb * C * Hp + 4 * ty) * Wp + 4 * tx);
        store<i32>(doff + (<usize>t << 2), (bb * O * Hq + 4 * ty) * Wq + 4 * tx);
        if (++tx == tw) {
          tx = 0;
          if (++ty == th) {
            ty = 0;
            b++;
          }
        }
      }
      // V: per panel of eight channels and group of four tiles, each channel through Bᵀ d B, then per ξ
      // two transposes put tile t's eight channels at V[ξ][panel][4·gr + t][0..7]
      for (let cp = 0; cp < cPanels; cp++) {
        for (let gr = 0; gr < BLOCK >> 2; gr++) {
          for (let j = 0; j < NR; j++) {
            const c = cp * NR + j;
            const p = slot + <usize>(j * 576);
            if (c >= C) {
              memory.fill(p, 0, 576);
              continue;
            }
            const xc = addr(xp, c * planeX);
            inputRows(addr(xc, load<i32>(xoff + (<usize>(4 * gr) << 2))), addr(xc, load<i32>(xoff + (<usize>(4 * gr + 1) << 2))),
              addr(xc, load<i32>(xoff + (<usize>(4 * gr + 2) << 2))), addr(xc, load<i32>(xoff + (<usize>(4 * gr + 3) << 2))), rowX, p);
            for (let k = 0; k < 6; k++) {
              const q = p + (<usize>k << 4);
              inputRow(q, 96, v128.load(q), v128.load(q, 96), v128.load(q, 192), v128.load(q, 288), v128.load(q, 384), v128.load(q, 480));
            }
          }
          for (let e = 0; e < 36; e++) {
            const s = slot + (<usize>e << 4);
            const d = v + <usize>(((e * cPanels + cp) * BLOCK + 4 * gr) * NR) * 4;
            transpose4(v128.load(s), v128.load(s, 576), v128.load(s, 1152), v128.load(s, 1728), d, NR << 2);
            transpose4(v128.load(s, 2304), v128.load(s, 2880), v128.load(s, 3456), v128.load(s, 4032), d + 16, NR << 2);
          }
        }
      }
      // dM: per panel of four output channels likewise, A dY Aᵀ, one transpose per ξ
      for (let op = 0; op < oPanels; op++) {
        for (let gr = 0; gr < BLOCK >> 2; gr++) {
          for (let j = 0; j < MR; j++) {
            const o = op * MR + j;
            const p = slot + <usize>(j * 576);
            if (o >= O) {
              memory.fill(p, 0, 576);
              continue;
            }
            const yo = addr(dyp, o * planeQ);
            const a0 = addr(yo, load<i32>(doff + (<usize>(4 * gr) << 2))), a1 = addr(yo, load<i32>(doff + (<usize>(4 * gr + 1) << 2)));
            const a2 = addr(yo, load<i32>(doff + (<usize>(4 * gr + 2) << 2))), a3 = addr(yo, load<i32>(doff + (<usize>(4 * gr + 3) << 2)));
            for (let i = 0; i < 4; i++) {
              // row i of the four tiles' 4×4 blocks, transposed so that lane t is tile t
              const r = <usize>i * rowQ;
              const f0 = v128.load(a0 + r), f1 = v128.load(a1 + r), f2 = v128.load(a2 + r), f3 = v128.load(a3 + r);
              const t0 = v128.shuffle<f32>(f0, f1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(f0, f1, 2, 6, 3, 7);
              const t2 = v128.shuffle<f32>(f2, f3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(f2, f3, 2, 6, 3, 7);
              adjointRow(p + <usize>(i * 96), 16, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), v128.shuffle<f32>(t0, t2, 2, 3, 6, 7),
                v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
            }
            for (let k = 0; k < 6; k++) {
              const q = p + (<usize>k << 4);
              adjointRow(q, 96, v128.load(q), v128.load(q, 96), v128.load(q, 192), v128.load(q, 288));
            }
          }
          for (let e = 0; e < 36; e++) {
            const s = slot + (<usize>e << 4);
            const d = dm + <usize>(((e * oPanels + op) * BLOCK + 4 * gr) * MR) * 4;
            transpose4(v128.load(s), v128.load(s, 576), v128.load(s, 1152), v128.load(s, 1728), d, MR << 2);
          }
        }
      }
      // acc_ξ [oPad × cPad] (+)= dM_ξ [16 tiles][o] ᵀ · V_ξ [16 tiles][c]
      const mode = u == uStart ? ZERO : LOAD;
      for (let e = 0; e < 36; e++) {
        const ae = accG + <usize>(e * oPad * cPad) * 4;
        for (let op = 0; op < oPanels; op++) {
          const pa = dm + <usize>((e * oPanels + op) * BLOCK * MR) * 4;
          for (let cp = 0; cp < cPanels; cp++) {
            micro(pa, v + <usize>((e * cPanels + cp) * BLOCK * NR) * 4, BLOCK, ae + <usize>(op * MR * cPad + cp * NR) * 4, cPad, mode, 0);
          }
        }
      }
    }
  }
}

/**
 * du [36][O][C] = (du if accumulate) + acc[0] + acc[1] + … + acc[G − 1], in that order (acc as
 * winogradGradFused leaves it, [G][36][oPad][cPad]). One unit per ξ.
 */
export function winogradGradSum(acc: usize, du: usize, G: i32, O: i32, C: i32, accumulate: i32, start: i32, end: i32): void {
  const cPad = ((C + NR - 1) / NR) * NR, oPad = ((O + MR - 1) / MR) * MR;
  const accBytes = <usize>(36 * oPad * cPad) << 2;
  for (let e = start; e < end; e++) {
    for (let o = 0; o < O; o++) {
      const d = addr(du, (e * O + o) * C);
      const a = acc + <usize>((e * oPad + o) * cPad) * 4;
      for (let c = 0; c < C; c++) {
        let s: f32 = accumulate ? load<f32>(addr(d, c)) : 0;
        for (let g = 0; g < G; g++) s += load<f32>(addr(a + <usize>g * accBytes, c));
        store<f32>(addr(d, c), s);
      }
    }
  }
}
