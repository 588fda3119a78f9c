// Timestamp queries around compute passes, for the profiler: each timed pass writes one timestamp
// at its start and one at its end into a query set; at the end they are resolved into a buffer in
// the same command buffer as the work and read back once. Nothing is submitted per pass.

/** The WebGPU limit on queries in one set. */
const QUERIES_PER_SET = 4096;

/** ms per pass from resolved timestamps: pass i spans ticks[2i] (start) to ticks[2i + 1] (end), in ns. */
export function passDurations(ticks: BigUint64Array, passes: number): Float64Array {
  if (ticks.length < 2 * passes) throw new Error(`${ticks.length} timestamps for ${passes} passes`);
  const out = new Float64Array(passes);
  for (let i = 0; i < passes; i++) {
    const begin = ticks[2 * i],
      end = ticks[2 * i + 1];
    // An implementation may return 0 or a non-increasing pair for a pass it could not time (the
    // spec allows it); such a pass counts as zero rather than as a huge unsigned difference.
    out[i] = end > begin ? Number(end - begin) / 1e6 : 0;
  }
  return out;
}

export class PassTimer {
  private readonly sets: GPUQuerySet[] = [];
  /** Where resolve() put the timestamps; destroyed with the timer (after the submit that uses it). */
  private resolved: GPUBuffer | null = null;
  /** Passes handed out so far. */
  passes = 0;

  constructor(private readonly device: GPUDevice) {}

  /** The timestamp writes of the next pass. */
  next(): GPUComputePassTimestampWrites {
    const q = 2 * this.passes++;
    const set = Math.floor(q / QUERIES_PER_SET);
    if (set === this.sets.length)
      this.sets.push(
        this.device.createQuerySet({ label: `pass-timer-${set}`, type: 'timestamp', count: QUERIES_PER_SET }),
      );
    const at = q % QUERIES_PER_SET;
    return { querySet: this.sets[set], beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  /** Encodes the resolution of every used query and the copy to a mappable buffer (returned). */
  resolve(encoder: GPUCommandEncoder): GPUBuffer {
    const bytes = Math.max(8, 16 * this.passes);
    const resolved = (this.resolved = this.device.createBuffer({
      label: 'pass-timer-resolve',
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    }));
    const readback = this.device.createBuffer({
      label: 'pass-timer-readback',
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const queries = 2 * this.passes;
    for (let s = 0; s * QUERIES_PER_SET < queries; s++) {
      const count = Math.min(QUERIES_PER_SET, queries - s * QUERIES_PER_SET);
      // Each set's results start at a multiple of 8·4096 bytes: the 256-byte alignment resolveQuerySet needs.
      encoder.resolveQuerySet(this.sets[s], 0, count, resolved, s * QUERIES_PER_SET * 8);
    }
    if (queries > 0) encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    return readback;
  }

  /** The durations in ms, once the command buffer holding resolve() has been submitted. */
  async read(readback: GPUBuffer): Promise<Float64Array> {
    try {
      await readback.mapAsync(GPUMapMode.READ);
      const ticks = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.unmap();
      return passDurations(ticks, this.passes);
    } finally {
      readback.destroy();
    }
  }

  destroy(): void {
    this.resolved?.destroy();
    this.resolved = null;
    for (const s of this.sets) s.destroy();
    this.sets.length = 0;
  }
}
