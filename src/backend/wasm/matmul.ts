import type { MatmulKernels } from '../backend.js';
import { checkMatmulParams } from '../backend.js';
import type { WasmRuntime } from './runtime.js';
import { ptr } from './storage.js';
import { KC_MAX, MC_MAX } from './tuning.js';

// The grains and the chunk size come from rt.tuning.matmul (tuning.ts: the defaults, what each one
// is, and why none of them changes a result): forkFlops, multiply-adds per thread below which a
// fork-join costs more than it saves; claimFlops, multiply-adds a thread claims at once at least
// where chunks are smaller; packGrain, elements per thread below which packing B in parallel is not
// worth it; mc, the most rows per chunk (and per packed A block); kc, the k block (the packed A
// block is mc × kc, each B panel's slice kc × NR); chunksPerThread, how finely the rows are cut to
// balance.

interface Blocking {
  mr: number;
  nr: number;
  slotBytes: number;
}
const blockings = new WeakMap<WasmRuntime, Blocking>();

function blocking(rt: WasmRuntime): Blocking {
  let b = blockings.get(rt);
  if (!b) {
    const f = rt.exports.matmulBlocking;
    if (f(3) !== MC_MAX || f(2) !== KC_MAX)
      throw new Error(
        `wasm matmul: the kernel's A slot holds ${f(3)} × ${f(2)}, tuning.ts expects ${MC_MAX} × ${KC_MAX}`,
      );
    b = { mr: f(0), nr: f(1), slotBytes: f(4) };
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
      const { mr, nr, slotBytes } = blocking(rt);
      const { mc, kc, chunksPerThread, claimFlops, forkFlops, packGrain } = rt.tuning.matmul;
      const panels = Math.ceil(n / nr);
      const batchB = p.strideB === 0 ? 1 : batch;
      // Chunks of up to mc rows, smaller when that leaves fewer than chunksPerThread per thread.
      const want = Math.ceil((m * batch) / (chunksPerThread * rt.threads));
      const chunkRows = Math.min(mc, Math.max(mr, Math.ceil(Math.min(want, m) / mr) * mr));
      // A batch of small products whose entries are one chunk each (attention's 65×65×64) packs each
      // entry's B in the chunk that uses it, at the end of the thread's A slot, while it stays in
      // cache; packed all up front, 192 entries' B (3.5 MiB) had left L2 before the first was used.
      const slotFloats = MC_MAX * KC_MAX;
      const ownB = batchB > 1 && k > 0 && chunkRows >= m && chunkRows * Math.min(kc, k) + panels * k * nr <= slotFloats;
      // Scratch is taken from the pool per call (it returns there at once), so kernels never allocate.
      const packedBytes = ownB ? 0 : batchB * panels * k * nr * 4;
      const scratchBytes = 64 + rt.threads * slotBytes;
      const packed = rt.allocBytes(Math.max(64, packedBytes), `matmul's packed B operand (${batchB} × ${k} × ${n})`);
      const scratch = rt.allocBytes(scratchBytes, "matmul's per-thread scratch");
      try {
        if (k > 0 && !ownB) {
          rt.run(
            'matmulPackB',
            [ptr(b), packed, n, k, p.transB ? 1 : 0, p.strideB, panels],
            batchB * panels,
            Math.ceil(packGrain / (k * nr)),
          );
        }
        rt.i32(scratch, 2).fill(0); // the slot and chunk counters the threads claim from
        const chunks = batch * Math.ceil(m / chunkRows);
        const flags =
          (p.accumulate ? 1 : 0) |
          (p.bias ? 2 : 0) |
          (p.activation === 'gelu' ? 4 : 0) |
          (p.rowSumsA ? 8 : 0) |
          (p.preActivation ? 16 : 0) |
          (ownB ? 32 : 0) |
          (p.transB ? 64 : 0);
        // Chunks per claim: enough work per atomic, and still at least 8 claims per thread to balance.
        const chunkFlops = chunkRows * n * Math.max(1, k);
        const claim = Math.max(1, Math.min(Math.floor(claimFlops / chunkFlops), Math.floor(chunks / (8 * rt.threads))));
        rt.run(
          'matmulCompute',
          [
            ptr(a),
            ownB ? ptr(b) : packed,
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
            p.strideB,
            flags,
            scratch,
            chunkRows,
            kc,
            chunks,
            claim,
          ],
          chunks,
          Math.ceil(forkFlops / (chunkRows * n * Math.max(1, k))),
        );
      } finally {
        rt.freeBytes(scratch, scratchBytes);
        rt.freeBytes(packed, Math.max(64, packedBytes));
      }
    },
  };
}
