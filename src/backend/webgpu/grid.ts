// Dispatch sizes shared by the WebGPU kernel families (uniform blocks are packed by params.ts).

/** Workgroups for n threads of a 1-D kernel of workgroup size wg, folded into 2-D past 65535. */
export function grid1d(n: number, wg = 256, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}
