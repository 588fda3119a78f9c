// The wasm heap's out-of-memory error. wasm32 stops at 4 GiB whatever the machine has, so this is a
// limit a large batch or K meets on a big machine too; the error says which tensor op asked for how
// much, and what the heap already holds, so the fix (a smaller batch, fewer tiles, WebGPU) is clear.
import { BackendError } from '../backend.js';

/** The tensor op being run when an allocation failed: the outermost frame in src/tensor/ops/, and the innermost. */
export function requestingOp(stack: string): { op: string; via: string } | null {
  let outer: string | null = null;
  let inner: string | null = null;
  for (const line of stack.split('\n').slice(1)) {
    const m = /^\s*at (?:async )?(?:new )?([^\s(]+) \((.*)\)$/.exec(line) ?? /^\s*at (?:async )?()(.*)$/.exec(line);
    if (!m) continue;
    if (/[\\/]tensor[\\/]ops[\\/]/.test(m[2])) {
      const name = m[1].replace(/^Object\./, '') || '<anonymous>';
      inner ??= name;
      outer = name;
    } else if (outer) break;
  }
  return outer === null ? null : { op: outer, via: inner! };
}

function mib(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${bytes} bytes`;
}

export class WasmOutOfMemoryError extends BackendError {
  constructor(
    /** The tensor op that asked (see requestingOp), or null outside one. */
    readonly op: string | null,
    /** What the bytes were for: an output's elements, a kernel's scratch. */
    readonly purpose: string,
    readonly bytes: number,
    readonly liveBytes: number,
    readonly liveBuffers: number,
    readonly pooledBytes: number,
    readonly heapBytes: number,
    readonly limitBytes: number,
    cause?: unknown,
  ) {
    super(
      `wasm out of memory in ${op ?? 'a call outside the tensor ops'}: ${purpose} needs ${mib(bytes)}; ` +
        `${mib(liveBytes)} are live in ${liveBuffers} buffers and ${mib(pooledBytes)} pooled for reuse, ` +
        `and the heap (${mib(heapBytes)}) cannot grow by that much ` +
        (cause ? `(the host refused: ${(cause as Error).message})` : `within wasm32's ${mib(limitBytes)} limit`) +
        ` — use a smaller batch or K, or --backend webgpu`,
    );
    this.name = 'WasmOutOfMemoryError';
  }
}
