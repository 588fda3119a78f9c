// Dispatch sizes shared by the WebGPU kernel families (uniform blocks are packed by params.ts).

/** Workgroups for n threads of a 1-D kernel of workgroup size wg, folded into 2-D past 65535. */
export function grid1d(n: number, wg = 256, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

/**
 * How many trailing dims of a collapseDims shape a strided kernel walks (the leading ones are 1):
 * the override DIMS of wgsl/elementwise.wgsl and wgsl/layout.wgsl.
 */
export function activeDims(shape: number[]): number {
  const first = shape.findIndex((d) => d !== 1);
  return first < 0 ? 1 : shape.length - first;
}
