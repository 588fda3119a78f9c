// A backend's kernels are its family files' kernels put together: each family file (wasm/norm.ts,
// webgpu/norm.ts, ...) makes its family's methods from that side's runtime, and the side lists its
// family files once, in a table the compiler checks against the contract's families.
import type { KernelFamilies, KernelFamily, Kernels } from './backend.js';

/** One family file per family of the contract, each making that family's kernels on runtime R. */
export type FamilyFiles<R> = { readonly [F in KernelFamily]: (rt: R) => KernelFamilies[F] };

/** Every kernel of the contract, running on rt. */
export function assembleKernels<R>(rt: R, families: FamilyFiles<R>): Kernels {
  const kernels = {};
  for (const make of Object.values(families) as ((rt: R) => object)[]) Object.assign(kernels, make(rt));
  return kernels as Kernels;
}
