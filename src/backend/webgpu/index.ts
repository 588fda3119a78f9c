// The WebGPU backend: WGSL kernels through Dawn, encoded into a pending command encoder.
import type { AttentionParams, Backend, DeviceTraffic, DType, Kernels, MemoryStats, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import type { PassTiming, PassTimingSource } from '../profile.js';
import { assembleKernels, type FamilyFiles } from '../families.js';
import { WebGPURuntime, type GpuStorage, type WebGPUOptions } from './runtime.js';
import { attentionKernels, savedLength as attentionSavedLength } from './attention.js';
import { convKernels } from './conv.js';
import { elementwiseKernels } from './elementwise.js';
import { layoutKernels } from './layout.js';
import { matmulKernels } from './matmul.js';
import { neighboursKernels } from './neighbours.js';
import { normKernels } from './norm.js';
import { optimKernels } from './optim.js';
import { randomKernels } from './random.js';
import { reduceKernels } from './reduce.js';
import { softmaxKernels } from './softmax.js';

const FAMILIES: FamilyFiles<WebGPURuntime> = {
  elementwise: elementwiseKernels,
  matmul: matmulKernels,
  attention: attentionKernels,
  reduce: reduceKernels,
  softmax: softmaxKernels,
  norm: normKernels,
  layout: layoutKernels,
  neighbours: neighboursKernels,
  conv: convKernels,
  random: randomKernels,
  optim: optimKernels,
};

// The kernels are own properties that the constructor copies from the family files.
export interface WebGPUBackend extends Kernels {}

export class WebGPUBackend implements Backend, PassTimingSource {
  readonly kind = 'webgpu' as const;
  readonly description: string;
  private constructor(readonly rt: WebGPURuntime) {
    this.description = `webgpu on ${rt.description}`;
    Object.assign(this, assembleKernels(rt, FAMILIES));
  }

  static async create(opts: WebGPUOptions = {}): Promise<WebGPUBackend> {
    return new WebGPUBackend(await WebGPURuntime.create(opts));
  }

  get software(): boolean {
    return this.rt.software;
  }

  alloc(length: number, dtype: DType): Storage {
    if (!Number.isInteger(length) || length < 0) throw new BackendError(`cannot allocate ${length} elements`);
    return this.rt.alloc(length, dtype);
  }

  free(s: Storage): void {
    this.rt.free(s as GpuStorage);
  }

  upload(s: Storage, data: Float32Array | Int32Array): void {
    if (data.length !== s.length)
      throw new BackendError(`upload of ${data.length} elements into a storage of ${s.length}`);
    this.rt.upload(s as GpuStorage, data);
  }

  download(s: Storage): Promise<Float32Array | Int32Array> {
    return this.rt.download(s as GpuStorage);
  }

  sync(): Promise<void> {
    return this.rt.sync();
  }

  flush(): void {
    this.rt.flush();
  }

  memory(): MemoryStats {
    return { liveBuffers: this.rt.liveBuffers, liveBytes: this.rt.liveBytes, pooledBytes: this.rt.pooledBytes };
  }

  traffic(): DeviceTraffic {
    return this.rt.traffic();
  }

  /** Timestamp queries around every dispatch, for the profiler; unavailable without 'timestamp-query'. */
  passTiming(): PassTiming | { unavailable: string } {
    if (!this.rt.timestampQuery) return { unavailable: "this adapter has no 'timestamp-query' feature" };
    const rt = this.rt;
    return { start: () => rt.startTiming(), passes: () => rt.timedPasses(), stop: () => rt.stopTiming() };
  }

  attentionSavedLength(p: AttentionParams): number {
    return attentionSavedLength(p);
  }

  peakLiveBytes(): number {
    return this.rt.peakLiveBytes;
  }

  resetPeakLiveBytes(): void {
    this.rt.peakLiveBytes = this.rt.liveBytes;
  }

  destroy(): void {
    this.rt.destroy();
  }
}
