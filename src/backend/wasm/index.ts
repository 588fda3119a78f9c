// The wasm backend: AssemblyScript SIMD kernels on a shared memory, rows split across worker threads.
import type { AttentionParams, Backend, DeviceTraffic, DType, Kernels, MemoryStats, Storage } from '../backend.js';
import { BackendError } from '../backend.js';
import { assembleKernels, type FamilyFiles } from '../families.js';
import { WasmRuntime, type WasmBuild } from './runtime.js';
import { resolveTuning } from './tuner.js';
import type { WasmStorage } from './storage.js';
import { attentionKernels, attentionSavedLength } from './attention.js';
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

const FAMILIES: FamilyFiles<WasmRuntime> = {
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

export interface WasmBackendOptions {
  /** Worker threads including the main one; defaults to the core count. */
  threads?: number;
  /** 'relaxed' (f32x4.relaxed_madd) where the runtime accepts it, else 'simd'. */
  build?: WasmBuild;
  /**
   * Blocking and thread-split parameters (src/backend/wasm/tuning.ts; none changes a result): 'off'
   * (the defaults), 'auto' (measured once per host and cached), a JSON file, or
   * 'family.param=value,...'. Defaults to $PROTODINO_TUNE, else 'off'; the CLI's training,
   * benchmark and doctor commands default to 'auto'.
   */
  tune?: string;
}

// The kernels are own properties that the constructor copies from the family files.
export interface WasmBackend extends Kernels {}

export class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  readonly description: string;
  private constructor(readonly rt: WasmRuntime) {
    this.description = `wasm ${rt.build} build, ${rt.threads} thread${rt.threads === 1 ? '' : 's'}`;
    Object.assign(this, assembleKernels(rt, FAMILIES));
  }

  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    const rt = await WasmRuntime.create(opts);
    try {
      resolveTuning(rt, opts.tune ?? process.env.PROTODINO_TUNE ?? 'off');
    } catch (e) {
      rt.destroy();
      throw e;
    }
    return new WasmBackend(rt);
  }

  alloc(length: number, dtype: DType): Storage {
    if (!Number.isInteger(length) || length < 0) throw new BackendError(`cannot allocate ${length} elements`);
    const ptr = this.rt.allocBytes(Math.max(4, length * 4), `a tensor of ${length} ${dtype} elements`);
    const s: WasmStorage = { length, dtype, ptr, freed: false };
    return s;
  }

  free(s: Storage): void {
    const w = s as WasmStorage;
    if (w.freed) throw new BackendError('double free of a wasm storage');
    w.freed = true;
    this.rt.freeBytes(w.ptr, Math.max(4, w.length * 4));
  }

  upload(s: Storage, data: Float32Array | Int32Array): void {
    const w = s as WasmStorage;
    if (data.length !== w.length)
      throw new BackendError(`upload of ${data.length} elements into a storage of ${w.length}`);
    if (w.dtype === 'i32') this.rt.i32(w.ptr, w.length).set(data as Int32Array);
    else this.rt.f32(w.ptr, w.length).set(data as Float32Array);
  }

  async download(s: Storage): Promise<Float32Array | Int32Array> {
    return this.readSync(s);
  }

  /** Wasm work is synchronous, so reads can be too. */
  readSync(s: Storage): Float32Array | Int32Array {
    const w = s as WasmStorage;
    return w.dtype === 'i32' ? this.rt.i32(w.ptr, w.length).slice() : this.rt.f32(w.ptr, w.length).slice();
  }

  async sync(): Promise<void> {}

  /** Nothing is ever pending: each kernel returns when its threads are done. */
  flush(): void {}

  memory(): MemoryStats {
    return { liveBuffers: this.rt.liveBuffers, liveBytes: this.rt.liveBytes, pooledBytes: this.rt.pooledBytes };
  }

  traffic(): DeviceTraffic {
    return { submits: 0, waits: 0 };
  }

  peakLiveBytes(): number {
    return this.rt.peakLiveBytes;
  }

  resetPeakLiveBytes(): void {
    this.rt.peakLiveBytes = this.rt.liveBytes;
  }

  attentionSavedLength(p: AttentionParams): number {
    return attentionSavedLength(p);
  }

  destroy(): void {
    this.rt.destroy();
  }
}
