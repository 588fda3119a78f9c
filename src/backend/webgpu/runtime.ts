// The WebGPU runtime: adapter selection (hardware first, Mesa llvmpipe through EGL/GLES when asked
// for), a size-bucketed buffer pool, a pipeline cache, and a pending command encoder that kernels
// are encoded into. The encoder is submitted only when the host needs a result (download, sync) or
// is asked to (flush), so a training step is one command buffer. Ordering argument for reuse:
// every write to a buffer is a command in the encoder (uploads while commands are pending are
// staged and copied in encoder order, see upload()) or a queue.writeBuffer issued while nothing is
// pending, and the queue runs in order, so a freed buffer can go back to the pool at once.
import { readFileSync } from 'node:fs';
import { packagePath } from '../../util/paths.js';
import { BackendError, type DeviceTraffic } from '../backend.js';
import { VULKAN_LOADER, vulkanLoader } from './vulkan-loader.js';
import { StagingRing, UniformArenas, UNIFORM_SLOT } from './staging.js';
import { PassTimer } from './pass-timer.js';

export interface WebGPUOptions {
  /**
   * 'hardware' refuses the software adapter; 'software' goes straight to llvmpipe; 'any' tries both.
   * 'null' is Dawn's null backend: it validates every command and runs none (tests of the command
   * stream itself, e.g. timestamp queries, which llvmpipe does not offer).
   */
  adapter?: 'hardware' | 'software' | 'any' | 'null';
}

export interface GpuStorage {
  readonly length: number;
  readonly dtype: 'f32' | 'i32';
  buffer: GPUBuffer;
  bytes: number;
  freed: boolean;
}

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

let dawn: DawnModule | undefined;
async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new BackendError(`the webgpu npm package (Dawn) could not be loaded: ${(e as Error).message}`);
  }
  Object.assign(globalThis, dawn.globals);
  return dawn;
}

export async function tryAdapter(
  flags: string[],
  opts: GPURequestAdapterOptions,
): Promise<{ gpu: GPU; adapter: GPUAdapter } | null> {
  const gpu = (await loadDawn()).create(flags);
  try {
    const adapter = await gpu.requestAdapter(opts);
    return adapter ? { gpu, adapter } : null;
  } catch {
    return null;
  }
}

export function isSoftware(info: GPUAdapterInfo): boolean {
  const s = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|software|cpu/.test(s);
}

export function describeAdapter(info: GPUAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.join(' / ') || 'unknown adapter';
}

/**
 * How Dawn is asked for a hardware adapter here, or why it is not asked at all. On Linux Dawn's
 * only hardware backend is Vulkan (its GL backends are compatibility-only), so it is named
 * outright, and skipped where there is no Vulkan loader or no driver for it: Dawn would only fail,
 * and say so on stderr, in every process. Elsewhere Dawn's default (Metal, D3D12) is the hardware path.
 */
export function hardwareBackend(): { flags: string[]; backend: string } | { skipped: string } {
  if (process.platform !== 'linux') return { flags: [], backend: 'default' };
  const loader = vulkanLoader();
  if (!loader.found)
    return {
      skipped: /cannot open shared object/.test(loader.detail)
        ? `no Vulkan loader (${VULKAN_LOADER} not found)`
        : `no usable Vulkan loader (${loader.detail})`,
    };
  if (loader.drivers.length === 0)
    return { skipped: 'a Vulkan loader but no Vulkan driver manifest (icd.d JSON; set VK_DRIVER_FILES)' };
  return { flags: ['backend=vulkan'], backend: 'vulkan' };
}

/** Where a software adapter comes from: Mesa llvmpipe through EGL surfaceless, OpenGL ES in compatibility mode. */
export async function softwareAdapter(): Promise<{ gpu: GPU; adapter: GPUAdapter } | null> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return tryAdapter(['backend=opengles'], { featureLevel: 'compatibility' } as GPURequestAdapterOptions);
}

/** Dawn's null backend: every feature, validation of every command, no execution. */
export async function nullAdapter(): Promise<{ gpu: GPU; adapter: GPUAdapter } | null> {
  return tryAdapter(['backend=null'], {});
}

let toldSkipped = false;

/** Finds an adapter: hardware (Vulkan on Linux, Dawn's default elsewhere), else llvmpipe through EGL surfaceless. */
export async function findAdapter(
  kind: 'hardware' | 'software' | 'any',
): Promise<{ gpu: GPU; adapter: GPUAdapter; software: boolean }> {
  const tried: string[] = [];
  let skipped: string | null = null;
  if (kind !== 'software') {
    const how = hardwareBackend();
    if ('skipped' in how) {
      tried.push(how.skipped);
      skipped = how.skipped;
    } else {
      const hw = await tryAdapter(how.flags, { powerPreference: 'high-performance' });
      if (hw && !isSoftware(hw.adapter.info)) return { ...hw, software: false };
      tried.push(
        hw
          ? `the ${how.backend} backend gave only a software adapter (${describeAdapter(hw.adapter.info)})`
          : `no hardware adapter from the ${how.backend} backend`,
      );
    }
    if (kind === 'hardware') throw new BackendError(`no hardware WebGPU adapter: ${tried.join('; ')}`);
  }
  const sw = await softwareAdapter();
  if (sw) {
    // Said once per process, and only when WebGPU was asked for without saying "software": that
    // caller may have expected a GPU, and this is the one fact that explains why there is none.
    if (skipped && !toldSkipped) {
      toldSkipped = true;
      process.stderr.write(`protodino: ${skipped}: WebGPU uses the OpenGL ES software adapter\n`);
    }
    return { ...sw, software: true };
  }
  tried.push(
    'no OpenGL ES adapter through EGL (install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri for Mesa llvmpipe)',
  );
  throw new BackendError(`no WebGPU adapter: ${tried.join('; ')}`);
}

export class WebGPURuntime {
  readonly device: GPUDevice;
  readonly description: string;
  readonly software: boolean;
  readonly limits: GPUSupportedLimits;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly sources = new Map<string, string>();
  /** Each pipeline's bind group layout: getBindGroupLayout is a call into Dawn that makes a new object each time. */
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly uniforms: UniformArenas;
  private readonly staging: StagingRing;
  /** Set while a profiler times passes with timestamp queries (then every dispatch is its own pass). */
  private timer: PassTimer | null = null;
  /** Submits and CPU waits on the device since creation (tests and the profiler count them per step). */
  private readonly counts: DeviceTraffic = { submits: 0, waits: 0 };
  /** Whether the device was created with 'timestamp-query'. */
  readonly timestampQuery: boolean;
  private readonly errors: string[] = [];
  /** Failed buffer creations, reported ahead of the validation errors their use causes. */
  private readonly allocErrors: string[] = [];
  /** Error scopes around buffer creations that have not resolved yet. */
  private readonly pendingAllocs = new Set<Promise<void>>();
  /** Buffers whose creation failed: destroyed when freed, never pooled. */
  private readonly invalid = new WeakSet<GPUBuffer>();
  /**
   * Set by an allocation failure: freed buffers go back to the device instead of the pool, so that
   * disposing tensors after the error really returns memory (the process itself needs some to go
   * on). Cleared by the next sync() or read that succeeds.
   */
  private shedding = false;
  private lost: string | null = null;
  liveBuffers = 0;
  liveBytes = 0;
  pooledBytes = 0;
  /** The high-water mark of liveBytes (Backend.peakLiveBytes). */
  peakLiveBytes = 0;
  private destroyed = false;
  /** The kernel being encoded, so asynchronous device errors can name it. */
  private lastKernel = '';

  /** Dawn's instance and adapter: referenced while the device lives, and by destroy() until device.lost has settled. */
  private readonly keepAlive: unknown[];

  private constructor(device: GPUDevice, description: string, software: boolean, keepAlive: unknown[]) {
    this.keepAlive = keepAlive;
    this.device = device;
    this.description = description;
    this.software = software;
    this.limits = device.limits;
    this.timestampQuery = device.features.has('timestamp-query');
    this.uniforms = new UniformArenas(device);
    this.staging = new StagingRing(device);
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(err.message);
    });
    void device.lost.then((info) => {
      if (!this.destroyed) this.lost = `${info.reason}: ${info.message}`;
    });
  }

  static async create(opts: WebGPUOptions = {}): Promise<WebGPURuntime> {
    const found =
      opts.adapter === 'null'
        ? await nullAdapter().then((a) => (a ? { ...a, software: false } : null))
        : await findAdapter(opts.adapter ?? 'any');
    if (!found) throw new BackendError("Dawn's null backend gave no adapter");
    const { gpu, adapter, software } = found;
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      label: 'protodino',
      // Only the profiler uses it; asking for it where it exists costs nothing.
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      },
    });
    const desc =
      opts.adapter === 'null'
        ? "Dawn's null backend (validation only, runs nothing)"
        : `${describeAdapter(adapter.info)}${software ? ' (software, GLES compatibility)' : ''}`;
    return new WebGPURuntime(device, desc, software, [gpu, adapter]);
  }

  // ---- buffers ------------------------------------------------------------------------------

  private bucket(bytes: number): number {
    const b = Math.max(256, Math.ceil(bytes / 4) * 4);
    const p = 2 ** Math.floor(Math.log2(b));
    if (p === b) return b;
    const step = Math.max(256, p / 4);
    return Math.ceil(b / step) * step;
  }

  alloc(length: number, dtype: 'f32' | 'i32'): GpuStorage {
    this.check('alloc');
    const bytes = this.bucket(length * 4);
    if (bytes > this.limits.maxStorageBufferBindingSize) {
      throw new BackendError(
        `out of memory: a tensor of ${length} ${dtype} elements (${bytes} bytes) exceeds this adapter's maxStorageBufferBindingSize of ${this.limits.maxStorageBufferBindingSize} bytes`,
        'alloc',
      );
    }
    const free = this.pool.get(bytes);
    let buffer: GPUBuffer;
    if (free && free.length > 0) {
      buffer = free.pop()!;
      this.pooledBytes -= bytes;
    } else {
      buffer = this.createStorageBuffer(length, dtype, bytes);
    }
    this.liveBuffers++;
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
    return { length, dtype, buffer, bytes, freed: false };
  }

  /**
   * A new buffer inside an out-of-memory error scope. createBuffer cannot fail synchronously, so a
   * failure is recorded when the scope resolves (sync() and download() wait for that) and reported
   * as the cause of whatever errors the invalid buffer then produces.
   */
  private createStorageBuffer(length: number, dtype: 'f32' | 'i32', bytes: number): GPUBuffer {
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({
      label: `${length} ${dtype}`,
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const live = this.liveBytes,
      pooled = this.pooledBytes;
    const settled: Promise<void> = this.device
      .popErrorScope()
      .then(
        (err) => {
          if (!err) return;
          this.invalid.add(buffer);
          this.allocErrors.push(
            `creating a ${bytes}-byte buffer for a tensor of ${length} ${dtype} elements failed ` +
              `(${live} bytes live, ${pooled} bytes pooled): ${err.message.split('\n')[0]}`,
          );
          this.shedding = true;
          this.releasePool();
        },
        () => undefined,
      )
      .finally(() => this.pendingAllocs.delete(settled));
    this.pendingAllocs.add(settled);
    return buffer;
  }

  /** Destroys every pooled buffer (after an allocation failure, or to hand memory back). */
  releasePool(): void {
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.pooledBytes = 0;
  }

  free(s: GpuStorage): void {
    if (s.freed) throw new BackendError('double free of a WebGPU storage');
    s.freed = true;
    this.liveBuffers--;
    this.liveBytes -= s.bytes;
    if (this.shedding || this.invalid.has(s.buffer)) {
      s.buffer.destroy();
      return;
    }
    let list = this.pool.get(s.bytes);
    if (!list) this.pool.set(s.bytes, (list = []));
    list.push(s.buffer);
    this.pooledBytes += s.bytes;
  }

  /**
   * With nothing pending the data is written straight into the buffer. With commands pending, a
   * direct write would land before them (queue order), and a pooled buffer may still be read by
   * them: the data goes into the staging ring instead and an encoder copy puts it in place, so the
   * step's batch upload costs no submit. Uploads too large for the ring submit what is pending first.
   */
  upload(s: GpuStorage, data: Float32Array | Int32Array): void {
    this.check('upload');
    const bytes = data.byteLength;
    if (bytes === 0) return;
    const at = this.encoder ? this.staging.stage(data) : null;
    if (at) {
      this.endPass();
      this.encoder!.copyBufferToBuffer(at.buffer, at.offset, s.buffer, 0, bytes);
      return;
    }
    if (this.encoder) this.flush();
    this.device.queue.writeBuffer(s.buffer, 0, data.buffer, data.byteOffset, bytes);
  }

  /** Submits and CPU waits since the device was created. */
  traffic(): DeviceTraffic {
    return { ...this.counts };
  }

  async download(s: GpuStorage): Promise<Float32Array | Int32Array> {
    this.check('download');
    const bytes = s.length * 4;
    const staging = this.device.createBuffer({
      size: Math.max(4, bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (bytes > 0) {
      this.endPass();
      this.encoderFor('download').copyBufferToBuffer(s.buffer, 0, staging, 0, bytes);
    }
    this.flush();
    try {
      this.counts.waits++;
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      await this.settleAllocations();
      this.check('download');
      throw new BackendError(`reading a buffer back failed: ${(e as Error).message}`, 'download');
    }
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.settleAllocations();
    this.check('download');
    this.shedding = false;
    return s.dtype === 'i32' ? new Int32Array(copy) : new Float32Array(copy);
  }

  // ---- kernels ------------------------------------------------------------------------------

  private source(file: string): string {
    let src = this.sources.get(file);
    if (src === undefined) {
      src = readFileSync(packagePath('wgsl', file), 'utf8');
      this.sources.set(file, src);
    }
    return src;
  }

  /**
   * The compute pipeline for `entry` in wgsl/`file`, specialised by override `constants`.
   * Cached by (file, entry, constants).
   */
  pipeline(file: string, entry: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = `${file}:${entry}:${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const label = `${file.replace(/\.wgsl$/, '')}.${entry}`;
      this.lastKernel = label;
      const module = this.device.createShaderModule({ label, code: this.source(file) });
      p = this.device.createComputePipeline({
        label,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Encodes one dispatch. `bindings` are bound in order to @binding(0..) of @group(0); when
   * `uniform` is given it is copied into the uniform arena and bound after them.
   */
  dispatch(
    kernel: string,
    pipeline: GPUComputePipeline,
    bindings: GPUBuffer[],
    uniform: ArrayBufferView | null,
    workgroups: [number, number?, number?],
  ): void {
    this.check(kernel);
    this.lastKernel = kernel;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((w) => w !== undefined && w > max)) {
      throw new BackendError(
        `dispatch of ${workgroups.join('x')} workgroups exceeds the adapter limit ${max} per dimension`,
        kernel,
      );
    }
    if (workgroups.some((w) => w === 0)) return;
    const entries: GPUBindGroupEntry[] = bindings.map((buffer, i) => ({ binding: i, resource: { buffer } }));
    if (uniform) {
      if (uniform.byteLength > UNIFORM_SLOT) throw new BackendError('uniform block larger than 256 bytes', kernel);
      const { buffer, offset } = this.uniforms.put(uniform);
      entries.push({ binding: bindings.length, resource: { buffer, offset, size: UNIFORM_SLOT } });
    }
    let layout = this.layouts.get(pipeline);
    if (!layout) this.layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
    const bindGroup = this.device.createBindGroup({ label: kernel, layout, entries });
    if (this.timer) {
      // Each timed dispatch is a pass of its own: timestamps are written at pass boundaries.
      this.endPass();
      this.pass = this.encoderFor(kernel).beginComputePass({ label: kernel, timestampWrites: this.timer.next() });
    } else if (!this.pass) {
      this.pass = this.encoderFor(kernel).beginComputePass({ label: kernel });
    }
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
  }

  /** Copies bytes between buffers in encoder order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.check('copy');
    if (bytes === 0) return;
    this.endPass();
    this.encoderFor('copy').copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  // ---- pass timing (profiler) ------------------------------------------------------------

  /**
   * From now on every dispatch is a compute pass that writes timestamps at its start and end,
   * without any extra submit. Needs 'timestamp-query' (timestampQuery).
   */
  startTiming(): void {
    if (!this.timestampQuery) throw new BackendError("this device has no 'timestamp-query' feature", 'timing');
    if (this.timer) throw new BackendError('pass timing is already on', 'timing');
    this.endPass();
    this.timer = new PassTimer(this.device);
  }

  /** Passes timed since startTiming (the profiler attributes the range of a kernel call to it). */
  timedPasses(): number {
    return this.timer?.passes ?? 0;
  }

  /**
   * Ends timing: resolves the queries into the pending command buffer, submits it and waits for
   * the durations (ms, one per timed pass, in encoding order).
   */
  async stopTiming(): Promise<Float64Array> {
    const timer = this.timer;
    if (!timer) throw new BackendError('pass timing is not on', 'timing');
    this.endPass();
    this.timer = null;
    const readback = timer.resolve(this.encoderFor('timestamps'));
    this.flush();
    try {
      this.counts.waits++;
      return await timer.read(readback);
    } finally {
      timer.destroy();
      this.check('timing');
    }
  }

  private encoderFor(label: string): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submits everything encoded so far (the uniform arenas are written first, in queue order). */
  flush(): void {
    this.endPass();
    if (!this.encoder) return;
    this.uniforms.write();
    this.device.queue.submit([this.encoder.finish()]);
    this.counts.submits++;
    this.encoder = null;
    // Written after this submit in queue order, so the next encoder may reuse every region.
    this.uniforms.reset();
    this.staging.reset();
  }

  async sync(): Promise<void> {
    this.check('sync');
    this.flush();
    try {
      this.counts.waits++;
      await this.device.queue.onSubmittedWorkDone();
    } catch (e) {
      this.check('sync');
      throw new BackendError(`waiting for the queue failed: ${(e as Error).message}`, 'sync');
    }
    await this.settleAllocations();
    this.check('sync');
    this.shedding = false;
  }

  /** Waits for the error scopes of buffer creations still in flight. */
  private async settleAllocations(): Promise<void> {
    while (this.pendingAllocs.size > 0) await Promise.all([...this.pendingAllocs]);
  }

  /**
   * Throws what went wrong since the last check: device loss (naming `op`, the operation that found
   * it), a failed buffer creation (naming alloc), or the device errors reported since, naming the
   * kernel encoded last (Dawn's message names the exact pass and bind group by their labels).
   */
  check(op: string): void {
    if (this.destroyed) throw new BackendError('the WebGPU backend was destroyed', op);
    if (this.lost) {
      throw new BackendError(
        `the WebGPU device was lost (${this.lost}); this backend cannot run anything any more, create a new one` +
          (this.lastKernel ? ` (last kernel encoded: ${this.lastKernel})` : ''),
        op,
      );
    }
    if (this.allocErrors.length > 0) {
      const msg = this.allocErrors.splice(0).join('; ');
      const followUps = this.errors.splice(0).length;
      throw new BackendError(
        `out of memory: ${msg}` +
          (followUps > 0 ? ` (then ${followUps} device error(s) from using the failed buffer)` : '') +
          '; the pool was released and tensors disposed now give their memory back to the device',
        'alloc',
      );
    }
    if (this.errors.length > 0) {
      const msg = this.errors.splice(0).join('; ');
      const oom = /out of memory|OutOfMemory|allocation/i.test(msg);
      throw new BackendError(`${oom ? 'out of memory' : 'device error'}: ${msg}`, this.lastKernel || undefined);
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.releasePool();
    this.uniforms.destroy();
    this.staging.destroy();
    this.timer?.destroy();
    // Dawn resolves device.lost from a ProcessEvents call it has already scheduled on the instance;
    // letting GC free the instance before that call ran crashed the process at exit (a segfault or
    // std::system_error in CallbackTaskManager::Flush, about 1 `protodino info` in 15). So the
    // instance stays referenced until the lost promise has settled and one more turn has passed.
    const keep = this.keepAlive.splice(0);
    void this.device.lost.then(() => setImmediate(() => (keep.length = 0)));
    this.device.destroy();
  }
}
