// Dispatch-size and uniform-packing helpers shared by the WebGPU kernel families.

/** Workgroups for n threads of a 1-D kernel of workgroup size wg, folded into 2-D past 65535. */
export function grid1d(n: number, wg = 256, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

/** Packs a uniform block from 4-byte fields: numbers marked 'f' are f32, the rest u32/i32. */
export class Uniform {
  private readonly buf: ArrayBuffer;
  private readonly u: Uint32Array;
  private readonly i: Int32Array;
  private readonly f: Float32Array;
  private n = 0;
  constructor(words = 64) {
    this.buf = new ArrayBuffer(words * 4);
    this.u = new Uint32Array(this.buf);
    this.i = new Int32Array(this.buf);
    this.f = new Float32Array(this.buf);
  }
  u32(...v: number[]): this {
    for (const x of v) this.u[this.n++] = x >>> 0;
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) this.i[this.n++] = x | 0;
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) this.f[this.n++] = x;
    return this;
  }
  /** Pads to a multiple of 4 words (a vec4 boundary). */
  align4(): this {
    while (this.n % 4 !== 0) this.u[this.n++] = 0;
    return this;
  }
  view(): Uint8Array {
    // Uniform blocks are padded to 16 bytes per WGSL's layout rules.
    return new Uint8Array(this.buf, 0, Math.max(16, Math.ceil(this.n / 4) * 16));
  }
}
