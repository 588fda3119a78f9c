import type { MatmulKernels } from '../backend.js';
import { checkMatmulParams } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';

/** Multiply-adds per thread below which a fork-join costs more than it saves. */
const GRAIN_FLOPS = 1 << 17;
/** Multiply-adds a thread claims at once at least, where chunks are smaller than that. */
const GRAIN_CLAIM = 1 << 15;
/** Elements per thread below which packing B in parallel is not worth it. */
const GRAIN_PACK = 1 << 14;

interface Blocking {
  mr: number;
  nr: number;
  mc: number;
  slotBytes: number;
}
const blockings = new WeakMap<WasmRuntime, Blocking>();

function blocking(rt: WasmRuntime): Blocking {
  let b = blockings.get(rt);
  if (!b) {
    const f = rt.exports.matmulBlocking;
    b = { mr: f(0), nr: f(1), mc: f(3), slotBytes: f(4) };
    blockings.set(rt, b);
  }
  return b;
}

export function matmulKernels(rt: WasmRuntime): MatmulKernels {
  return {
    matmul(a, b, out, p) {
      const { batch, m, n, k } = p;
      checkMatmulParams(p);
      if (batch === 0 || m === 0 || n === 0) return;
      const { mr, nr, mc, slotBytes } = blocking(rt);
      const panels = Math.ceil(n / nr);
      const batchB = p.strideB === 0 ? 1 : batch;
      // Scratch is taken from the pool per call (it returns there at once), so kernels never allocate.
      const packedBytes = batchB * panels * k * nr * 4;
      const scratchBytes = 64 + rt.threads * slotBytes;
      const packed = rt.allocBytes(Math.max(64, packedBytes), `matmul's packed B operand (${batchB} × ${k} × ${n})`);
      const scratch = rt.allocBytes(scratchBytes, "matmul's per-thread scratch");
      try {
        if (k > 0) {
          rt.run(
            'matmulPackB',
            [ptr(b), packed, n, k, p.transB ? 1 : 0, p.strideB, panels],
            batchB * panels,
            Math.ceil(GRAIN_PACK / (k * nr)),
          );
        }
        rt.i32(scratch, 2).fill(0); // the slot and chunk counters the threads claim from
        // Chunks of up to MC rows, smaller when that leaves fewer than ~4 per thread to balance with.
        const want = Math.ceil((m * batch) / (4 * rt.threads));
        const chunkRows = Math.min(mc, Math.max(mr, Math.ceil(Math.min(want, m) / mr) * mr));
        const chunks = batch * Math.ceil(m / chunkRows);
        const flags =
          (p.accumulate ? 1 : 0) |
          (p.bias ? 2 : 0) |
          (p.activation === 'gelu' ? 4 : 0) |
          (p.rowSumsA ? 8 : 0) |
          (p.preActivation ? 16 : 0);
        // Chunks per claim: enough work per atomic, and still at least 8 claims per thread to balance.
        const chunkFlops = chunkRows * n * Math.max(1, k);
        const claim = Math.max(
          1,
          Math.min(Math.floor(GRAIN_CLAIM / chunkFlops), Math.floor(chunks / (8 * rt.threads))),
        );
        rt.run(
          'matmulCompute',
          [
            ptr(a),
            packed,
            ptr(out),
            p.preActivation ? ptr(p.preActivation) : 0,
            p.bias ? ptr(p.bias) : 0,
            p.rowSumsA ? ptr(p.rowSumsA) : 0,
            m,
            n,
            k,
            p.transA ? 1 : 0,
            p.strideA,
            batchB === 1 ? 1 : 0,
            flags,
            scratch,
            chunkRows,
            chunks,
            claim,
          ],
          chunks,
          Math.ceil(GRAIN_FLOPS / (chunkRows * n * Math.max(1, k))),
        );
      } finally {
        rt.freeBytes(scratch, scratchBytes);
        rt.freeBytes(packed, Math.max(64, packedBytes));
      }
    },
  };
}
