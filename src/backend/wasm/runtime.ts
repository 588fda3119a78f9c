// The wasm runtime: one shared WebAssembly.Memory, the AssemblyScript kernel module instantiated on
// it by the main thread and by every worker, a size-bucketed allocator over that memory, and a
// fork-join `run` that splits a kernel's row range across the threads.
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as v8 from 'node:v8';
import { packagePath } from '../../util/paths.js';
import { BackendError } from '../backend.js';
import { requestingOp, WasmOutOfMemoryError } from './out-of-memory.js';
import type { KernelExports, RowArgs, RowKernel } from './exports.js';
import { DEFAULT_TUNING, wasmHash, type Tuning, type TuningSource } from './tuning.js';

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 ceiling
const CTRL_GEN = 0,
  CTRL_REMAINING = 1,
  CTRL_FN = 2,
  CTRL_NARGS = 3,
  CTRL_TOTAL = 4,
  CTRL_THREADS = 5,
  CTRL_STOP = 6,
  CTRL_ERROR = 7;
const MAX_ARGS = 32;
/** How long the main thread spins for the workers to finish before it parks (see SPIN_MS in worker.ts). */
const MAIN_SPIN_MS = 5;

export type WasmBuild = 'simd' | 'relaxed';

let relaxedProbe: boolean | undefined;
/** Whether this runtime accepts relaxed SIMD (Node 20 needs a V8 flag, set before compiling). */
export function relaxedSimdAvailable(): boolean {
  if (relaxedProbe !== undefined) return relaxedProbe;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    /* newer Node: on by default */
  }
  const bytes = readFileSync(wasmFile('relaxed'));
  relaxedProbe = WebAssembly.validate(new Uint8Array(bytes));
  return relaxedProbe;
}

/** build/kernels-<build>.wasm, or under PROTODINO_BUILD_DIR (parallel development builds). */
function wasmFile(build: WasmBuild): string {
  const dir = process.env.PROTODINO_BUILD_DIR;
  return dir ? `${dir}/kernels-${build}.wasm` : packagePath('build', `kernels-${build}.wasm`);
}

function sizeClass(bytes: number): number {
  // Power-of-two classes split in four, so a pooled block wastes at most ~20%.
  const b = Math.max(64, bytes);
  const p = 2 ** Math.floor(Math.log2(b));
  if (p === b) return b;
  const step = Math.max(64, p / 4);
  return Math.ceil(b / step) * step;
}

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
  readonly threads: number;
  readonly build: WasmBuild;
  /** sha256 of the wasm binary (first 16 hex digits): part of the tuning cache's key. */
  readonly wasmHash: string;
  /** Blocking and thread-split parameters the kernels read on every call (tuning.ts); none changes a result. */
  tuning: Tuning = DEFAULT_TUNING;
  tuningSource: TuningSource = { from: 'default', detail: 'tuning not asked for' };
  private readonly fnNames: string[];
  private readonly fnIndex = new Map<string, number>();
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private heapTop: number;
  private readonly pool = new Map<number, number[]>();
  liveBuffers = 0;
  liveBytes = 0;
  pooledBytes = 0;
  /** The high-water mark of liveBytes (Backend.peakLiveBytes). */
  peakLiveBytes = 0;
  /** A small block reserved for kernels that take shape/stride arrays. */
  readonly scratch: number;
  private destroyed = false;

  private constructor(module: WebAssembly.Module, build: WasmBuild, threads: number, hash: string) {
    this.build = build;
    this.wasmHash = hash;
    this.threads = threads;
    this.memory = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, {
      env: { memory: this.memory, abort: wasmAbort, seed: () => 0 },
    });
    this.exports = instance.exports as unknown as KernelExports;
    this.fnNames = Object.keys(instance.exports)
      .filter((k) => typeof instance.exports[k] === 'function')
      .sort();
    this.fnNames.forEach((n, i) => this.fnIndex.set(n, i));
    const heapBase = Number(this.exports.heapBase());
    this.heapTop = Math.ceil(Math.max(heapBase, 1024) / 64) * 64;
    const sab = new SharedArrayBuffer(8 * 4 + MAX_ARGS * 8);
    this.ctrl = new Int32Array(sab, 0, 8);
    this.args = new Float64Array(sab, 32, MAX_ARGS);
    this.scratch = this.allocBytes(4096);
    for (let t = 1; t < threads; t++) {
      const w = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { module, memory: this.memory, ctrl: sab, fnNames: this.fnNames, index: t },
      });
      w.unref();
      this.workers.push(w);
    }
  }

  static async create(opts: { threads?: number; build?: WasmBuild } = {}): Promise<WasmRuntime> {
    const threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new BackendError(`threads must be an integer in 1..256, got ${threads}`);
    }
    let build = opts.build;
    if (build === undefined) build = relaxedSimdAvailable() ? 'relaxed' : 'simd';
    if (build === 'relaxed' && !relaxedSimdAvailable()) {
      throw new BackendError('the relaxed-SIMD wasm build was asked for but this runtime rejects relaxed SIMD');
    }
    let bytes: Buffer;
    const file = wasmFile(build);
    try {
      bytes = readFileSync(file);
    } catch {
      throw new BackendError(`wasm kernels not found at ${file}: run \`npm run build\` first`);
    }
    const module = await WebAssembly.compile(new Uint8Array(bytes));
    const rt = new WasmRuntime(module, build, threads, wasmHash(bytes));
    await Promise.all(
      rt.workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
          }),
      ),
    );
    return rt;
  }

  // ---- memory -------------------------------------------------------------------------------

  /** `purpose` names what the bytes are for in the out-of-memory error (the op is found from the stack). */
  allocBytes(bytes: number, purpose = 'kernel scratch'): number {
    const cls = sizeClass(bytes);
    const free = this.pool.get(cls);
    let ptr: number;
    if (free && free.length > 0) {
      ptr = free.pop()!;
      this.pooledBytes -= cls;
    } else {
      ptr = this.heapTop;
      const end = ptr + cls;
      const have = this.memory.buffer.byteLength;
      if (end > have) {
        const pages = Math.ceil((end - have) / PAGE);
        if (have / PAGE + pages > MAX_PAGES) throw this.outOfMemory(purpose, bytes);
        try {
          this.memory.grow(pages);
        } catch (e) {
          throw this.outOfMemory(purpose, bytes, e);
        }
      }
      this.heapTop = end;
    }
    this.liveBuffers++;
    this.liveBytes += cls;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
    return ptr;
  }

  private outOfMemory(purpose: string, bytes: number, cause?: unknown): WasmOutOfMemoryError {
    // Only on this failure path: a deep stack to find the tensor op under the kernel and allocator frames.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 64;
    const stack = new Error().stack ?? '';
    Error.stackTraceLimit = limit;
    const who = requestingOp(stack);
    const op = who ? (who.via === who.op ? who.op : `${who.op} (in ${who.via})`) : null;
    return new WasmOutOfMemoryError(
      op,
      purpose,
      bytes,
      this.liveBytes,
      this.liveBuffers,
      this.pooledBytes,
      this.memory.buffer.byteLength,
      MAX_PAGES * PAGE,
      cause,
    );
  }

  freeBytes(ptr: number, bytes: number): void {
    const cls = sizeClass(bytes);
    let list = this.pool.get(cls);
    if (!list) this.pool.set(cls, (list = []));
    list.push(ptr);
    this.liveBuffers--;
    this.liveBytes -= cls;
    this.pooledBytes += cls;
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }

  /** Writes small integer arrays (shapes, strides) into the scratch block; returns their pointers. */
  scratchI32(...arrays: number[][]): number[] {
    const view = this.i32(this.scratch, 1024);
    const ptrs: number[] = [];
    let o = 0;
    for (const a of arrays) {
      ptrs.push(this.scratch + o * 4);
      for (let i = 0; i < a.length; i++) view[o + i] = a[i];
      o += a.length;
    }
    return ptrs;
  }

  // ---- execution ----------------------------------------------------------------------------

  /**
   * Calls kernel `name(...args, start, end)` over rows [0, total), split across threads when each
   * thread gets at least `grain` rows. Synchronous: returns when every thread is done.
   */
  run<K extends RowKernel>(name: K, args: RowArgs<K>, total: number, grain = 1): void {
    if (this.destroyed) throw new BackendError('the wasm backend was destroyed');
    const fn = this.exports[name] as (...a: number[]) => void;
    const list = args as unknown as readonly number[];
    if (typeof fn !== 'function') throw new BackendError(`no such wasm kernel`, name);
    if (total <= 0) return;
    const threads = Math.max(1, Math.min(this.threads, Math.floor(total / Math.max(1, grain))));
    if (threads === 1) {
      callKernel(name, fn, list, 0, total);
      return;
    }
    const ctrl = this.ctrl;
    for (let i = 0; i < list.length; i++) this.args[i] = list[i];
    ctrl[CTRL_FN] = this.fnIndex.get(name)!;
    ctrl[CTRL_NARGS] = list.length;
    ctrl[CTRL_TOTAL] = total;
    ctrl[CTRL_THREADS] = threads;
    ctrl[CTRL_ERROR] = 0;
    Atomics.store(ctrl, CTRL_REMAINING, this.threads - 1);
    Atomics.add(ctrl, CTRL_GEN, 1);
    Atomics.notify(ctrl, CTRL_GEN);
    const [start0, end0] = threadRange(total, threads, 0);
    let error: unknown;
    try {
      callKernel(name, fn, list, start0, end0);
    } catch (e) {
      error = e;
    }
    let spins = 0;
    const waitSince = performance.now();
    for (;;) {
      const r = Atomics.load(ctrl, CTRL_REMAINING);
      if (r === 0) break;
      if ((++spins & 1023) !== 0 || performance.now() - waitSince < MAIN_SPIN_MS) continue;
      Atomics.wait(ctrl, CTRL_REMAINING, r, 50);
    }
    if (error) throw error;
    if (ctrl[CTRL_ERROR] !== 0) throw new BackendError('a worker thread trapped while running the kernel', name);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Atomics.store(this.ctrl, CTRL_STOP, 1);
    Atomics.add(this.ctrl, CTRL_GEN, 1);
    Atomics.notify(this.ctrl, CTRL_GEN);
    for (const w of this.workers) void w.terminate();
  }
}

function callKernel(
  name: string,
  fn: (...a: number[]) => void,
  args: readonly number[],
  start: number,
  end: number,
): void {
  try {
    fn(...args, start, end);
  } catch (e) {
    throw new BackendError(`wasm trap: ${(e as Error).message}`, name);
  }
}

function wasmAbort(): never {
  throw new Error('abort called from wasm');
}

/** Row range of thread `index` out of `threads` over [0, total). */
export function threadRange(total: number, threads: number, index: number): [number, number] {
  return [Math.floor((total * index) / threads), Math.floor((total * (index + 1)) / threads)];
}
