// Host data that the pending command buffer reads: kernel uniforms and uploads made while commands
// are pending. Both grow instead of forcing a submit when full, so one command buffer can hold a
// whole training step. Reuse rests on queue order: a region is written again only after the
// command buffer that read it was submitted, and the queue runs writes and submits in order.

export const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we know
const SLOTS_PER_ARENA = 512;

/** Uniform blocks of the pending commands: a host copy per arena, written to the device just before the submit. */
export class UniformArenas {
  private readonly arenas: { buffer: GPUBuffer; host: Uint8Array }[] = [];
  private slot = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Copies `block` into the next free slot; where the kernel binds it. */
  put(block: ArrayBufferView): { buffer: GPUBuffer; offset: number } {
    const a = Math.floor(this.slot / SLOTS_PER_ARENA);
    if (a === this.arenas.length) {
      this.arenas.push({
        buffer: this.device.createBuffer({
          label: `uniform-arena-${a}`,
          size: UNIFORM_SLOT * SLOTS_PER_ARENA,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        host: new Uint8Array(UNIFORM_SLOT * SLOTS_PER_ARENA),
      });
    }
    const offset = (this.slot++ % SLOTS_PER_ARENA) * UNIFORM_SLOT;
    this.arenas[a].host.set(new Uint8Array(block.buffer, block.byteOffset, block.byteLength), offset);
    return { buffer: this.arenas[a].buffer, offset };
  }

  /** Writes the used slots of every arena (queue order puts them ahead of the submit that follows). */
  write(): void {
    for (let a = 0; a * SLOTS_PER_ARENA < this.slot; a++) {
      const used = Math.min(SLOTS_PER_ARENA, this.slot - a * SLOTS_PER_ARENA) * UNIFORM_SLOT;
      const { buffer, host } = this.arenas[a];
      this.device.queue.writeBuffer(buffer, 0, host.buffer, host.byteOffset, used);
    }
  }

  reset(): void {
    this.slot = 0;
  }

  get arenaCount(): number {
    return this.arenas.length;
  }

  destroy(): void {
    for (const a of this.arenas) a.buffer.destroy();
    this.arenas.length = 0;
  }
}

/** Bytes one staging chunk holds; an upload larger than this is not staged (the caller submits first). */
export const STAGING_CHUNK = 4 << 20;
/** Chunks kept between submits; more are made when one command buffer stages more, and dropped after it. */
const KEPT_CHUNKS = 2;

/**
 * Uploads made while commands are pending. The data is written into a fresh region of a chunk at
 * once (no pending command reads that region), and the caller encodes the copy from there.
 */
export class StagingRing {
  private readonly chunks: GPUBuffer[] = [];
  private chunk = 0;
  private used = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Where `data` now lies in a staging buffer, or null when it is larger than a chunk. */
  stage(data: Float32Array | Int32Array): { buffer: GPUBuffer; offset: number } | null {
    const bytes = data.byteLength;
    if (bytes > STAGING_CHUNK) return null;
    if (this.used + bytes > STAGING_CHUNK) {
      this.chunk++;
      this.used = 0;
    }
    if (this.chunk === this.chunks.length) {
      this.chunks.push(
        this.device.createBuffer({
          label: `upload-staging-${this.chunk}`,
          size: STAGING_CHUNK,
          usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        }),
      );
    }
    const buffer = this.chunks[this.chunk];
    const offset = this.used;
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, bytes);
    // copyBufferToBuffer offsets are multiples of 4; every f32/i32 upload keeps that.
    this.used += bytes;
    return { buffer, offset };
  }

  /** After a submit: every region is free again; chunks beyond KEPT_CHUNKS are destroyed (the queue keeps what it still reads). */
  reset(): void {
    for (const b of this.chunks.splice(KEPT_CHUNKS)) b.destroy();
    this.chunk = 0;
    this.used = 0;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  destroy(): void {
    for (const b of this.chunks) b.destroy();
    this.chunks.length = 0;
  }
}
