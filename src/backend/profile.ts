// A profiling Backend: wraps another backend, times every kernel call made inside a profiled step
// and groups the times by kernel family (backend.ts's KernelFamilies). Outside beginStep/endStep it
// only forwards, so networks built on it cost one flag test per kernel when profiling is off.
//
// Timing model. Wasm kernels are synchronous (the fork-join returns when every thread is done), so
// the wall time of a call is the kernel's time. WebGPU kernels are only encoded; here, while a step
// is profiled, each kernel is submitted on its own right after encoding. That serialises the step
// (no batching of dispatches into one submit, one pass per kernel) and adds per-submit cost, so a
// profiled WebGPU step is slower than an unprofiled one. On Dawn's OpenGL ES backend (Mesa llvmpipe
// here) a submit executes the work before it returns, so the per-kernel times are the work itself;
// on an adapter that runs submits asynchronously the work left over at the end of the step shows up
// as "device wait" (endStep awaits the queue) instead of under the kernels.
import type { Backend, DType, KernelFamily, KernelName, Kernels, MemoryStats, Storage } from './backend.js';
import { KERNEL_FAMILY, KERNEL_NAMES } from './backend.js';

export type { KernelFamily } from './backend.js';

export const KERNEL_FAMILIES: readonly KernelFamily[] = [...new Set(Object.values(KERNEL_FAMILY))];

export function kernelFamily(kernel: string): KernelFamily {
  const f = (KERNEL_FAMILY as Partial<Record<string, KernelFamily>>)[kernel];
  if (!f) throw new Error(`profile: '${kernel}' is not a kernel of the Backend interface`);
  return f;
}

/** What a call is recorded under: the kernel, with its op where it takes one (binary.add, softmax.log). */
function callKey(kernel: KernelName, args: unknown[]): string {
  if (typeof args[0] === 'string') return `${kernel}.${args[0]}`;
  // softmax and softmaxGrad take their op as the trailing flag `log`
  if ((kernel === 'softmax' || kernel === 'softmaxGrad') && args[5] === true) return `${kernel}.log`;
  return kernel;
}

interface Stat {
  calls: number;
  ms: number;
}

/** Accumulated times of some steps. Keys of `kernels` are the method, with the op where it has one (binary.add). */
class Totals {
  steps = 0;
  stepMs = 0;
  transferMs = 0;
  transferCalls = 0;
  waitMs = 0;
  readonly kernels = new Map<string, Stat>();
}

export interface ProfileRow {
  name: string;
  calls: number;
  ms: number;
  pct: number;
}

export interface ProfileReport {
  backend: string;
  /** Steps the averages are over. */
  steps: number;
  /** The first step is left out when there are more (pipeline compilation, memory growth). */
  firstStepExcluded: boolean;
  /** Mean wall time of a profiled step, ms. */
  stepMs: number;
  /** True on WebGPU: kernels were submitted one by one (see the file comment). */
  serialized: boolean;
  /** Per kernel family, per step: calls and ms; pct of the step. Families never called are left out. */
  families: ProfileRow[];
  /** Per kernel (method.op), per step, slowest first. */
  kernels: ProfileRow[];
  /** upload/download per step. */
  transfer: ProfileRow;
  /** Awaiting the device at the end of the step (work not yet finished when the step's code returned). */
  deviceWait: ProfileRow;
  /** Step time not in kernels, transfers or the wait: autograd, tensor bookkeeping, allocation, JS. */
  host: ProfileRow;
}

// The kernels are own properties, one timed wrapper per name in KERNEL_NAMES (see the constructor).
export interface ProfiledBackend extends Kernels {}

export class ProfiledBackend implements Backend {
  readonly kind: 'wasm' | 'webgpu';
  readonly description: string;
  private active = false;
  private stepStart = 0;
  private first: Totals | null = null;
  private rest = new Totals();
  private cur = new Totals();
  /** Kernels run asynchronously on the inner backend, so each is flushed on its own (see the file comment). */
  private readonly serialized: boolean;

  constructor(readonly inner: Backend) {
    this.kind = inner.kind;
    this.description = inner.description;
    this.serialized = inner.kind === 'webgpu';
    const calls = inner as unknown as Record<KernelName, (...args: unknown[]) => void>;
    for (const kernel of KERNEL_NAMES) {
      (this as unknown as Record<KernelName, (...args: unknown[]) => void>)[kernel] = (...args) => {
        if (!this.active) return calls[kernel](...args);
        const t0 = performance.now();
        calls[kernel](...args);
        this.record(callKey(kernel, args), t0);
      };
    }
  }

  // ---- steps --------------------------------------------------------------------------------

  /** Starts recording one step; kernels called until endStep are timed. */
  beginStep(): void {
    if (this.active) throw new Error('profile: beginStep called twice without endStep');
    this.active = true;
    this.cur = new Totals();
    this.stepStart = performance.now();
  }

  /** Waits for the device, then closes the step. */
  async endStep(): Promise<void> {
    if (!this.active) throw new Error('profile: endStep without beginStep');
    const t0 = performance.now();
    await this.inner.sync();
    const t1 = performance.now();
    this.active = false;
    const c = this.cur;
    c.waitMs += t1 - t0;
    c.stepMs += t1 - this.stepStart;
    c.steps = 1;
    if (!this.first) this.first = c;
    else merge(this.rest, c);
  }

  /** Forgets every recorded step. */
  reset(): void {
    this.first = null;
    this.rest = new Totals();
  }

  get steps(): number {
    return (this.first ? 1 : 0) + this.rest.steps;
  }

  /** Per-step averages over the recorded steps (all but the first when there are several). */
  report(): ProfileReport {
    const useRest = this.rest.steps > 0;
    const t = useRest ? this.rest : this.first;
    if (!t) throw new Error('profile: no step was recorded');
    const n = t.steps;
    const stepMs = t.stepMs / n;
    const row = (name: string, calls: number, ms: number): ProfileRow => ({
      name,
      calls: calls / n,
      ms: ms / n,
      pct: (100 * ms) / t.stepMs,
    });
    const fam = new Map<KernelFamily, Stat>();
    let kernelMs = 0;
    for (const [key, s] of t.kernels) {
      const f = kernelFamily(key.split('.')[0]);
      const a = fam.get(f) ?? { calls: 0, ms: 0 };
      a.calls += s.calls;
      a.ms += s.ms;
      fam.set(f, a);
      kernelMs += s.ms;
    }
    const families = [...fam].map(([f, s]) => row(f, s.calls, s.ms)).sort((a, b) => b.ms - a.ms);
    const kernels = [...t.kernels].map(([k, s]) => row(k, s.calls, s.ms)).sort((a, b) => b.ms - a.ms);
    const hostMs = t.stepMs - kernelMs - t.transferMs - t.waitMs;
    return {
      backend: this.description,
      steps: n,
      firstStepExcluded: useRest,
      stepMs,
      serialized: this.serialized,
      families,
      kernels,
      transfer: row('transfer (upload/download)', t.transferCalls, t.transferMs),
      deviceWait: row('device wait (end of step)', 0, t.waitMs),
      host: row('host (autograd, bookkeeping, JS)', 0, hostMs),
    };
  }

  // ---- timing -------------------------------------------------------------------------------

  private record(key: string, t0: number): void {
    // puts the kernel's work inside its own timing where the inner backend defers it
    this.inner.flush();
    const ms = performance.now() - t0;
    const s = this.cur.kernels.get(key);
    if (s) {
      s.calls++;
      s.ms += ms;
    } else {
      this.cur.kernels.set(key, { calls: 1, ms });
    }
  }

  // ---- memory and transfers (forwarded; transfers timed) ------------------------------------

  alloc(length: number, dtype: DType): Storage {
    return this.inner.alloc(length, dtype);
  }
  free(s: Storage): void {
    this.inner.free(s);
  }
  upload(s: Storage, data: Float32Array | Int32Array): void {
    if (!this.active) return this.inner.upload(s, data);
    const t0 = performance.now();
    this.inner.upload(s, data);
    this.cur.transferMs += performance.now() - t0;
    this.cur.transferCalls++;
  }
  async download(s: Storage): Promise<Float32Array | Int32Array> {
    if (!this.active) return this.inner.download(s);
    const t0 = performance.now();
    const r = await this.inner.download(s);
    this.cur.transferMs += performance.now() - t0;
    this.cur.transferCalls++;
    return r;
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  flush(): void {
    this.inner.flush();
  }
  memory(): MemoryStats {
    return this.inner.memory();
  }
  peakLiveBytes(): number {
    return this.inner.peakLiveBytes();
  }
  resetPeakLiveBytes(): void {
    this.inner.resetPeakLiveBytes();
  }
  destroy(): void {
    this.inner.destroy();
  }
}

function merge(into: Totals, t: Totals): void {
  into.steps += t.steps;
  into.stepMs += t.stepMs;
  into.transferMs += t.transferMs;
  into.transferCalls += t.transferCalls;
  into.waitMs += t.waitMs;
  for (const [k, s] of t.kernels) {
    const a = into.kernels.get(k);
    if (a) {
      a.calls += s.calls;
      a.ms += s.ms;
    } else {
      into.kernels.set(k, { ...s });
    }
  }
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtCalls = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/** The profile as markdown: one row per kernel family, then transfers, device wait and host time; the top kernels below. */
export function profileTable(r: ProfileReport, topKernels = 10): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = (list: ProfileRow[], calls: boolean) =>
    list.map((x) => line([x.name, calls ? fmtCalls(x.calls) : '', fmtMs(x.ms), `${x.pct.toFixed(1)}%`]));
  const kernelMs = r.families.reduce((s, f) => s + f.ms, 0);
  const note =
    `${r.backend}: mean of ${r.steps} step${r.steps === 1 ? '' : 's'}${r.firstStepExcluded ? ' (first step left out)' : ''}, ` +
    `${fmtMs(r.stepMs)} ms per step${r.serialized ? '; kernels submitted one at a time (serialized, slower than unprofiled)' : ''}`;
  return [
    note,
    '',
    line(['kernel family', 'calls/step', 'ms/step', '% of step']),
    line(['---', '---', '---', '---']),
    ...rows(r.families, true),
    line([
      '**all kernels**',
      fmtCalls(r.families.reduce((s, f) => s + f.calls, 0)),
      fmtMs(kernelMs),
      `${((100 * kernelMs) / r.stepMs).toFixed(1)}%`,
    ]),
    ...rows([r.transfer], true),
    ...(r.deviceWait.ms > 0.05 * r.stepMs || r.serialized ? rows([r.deviceWait], false) : []),
    ...rows([r.host], false),
    line(['**step**', '', fmtMs(r.stepMs), '100%']),
    '',
    line(['kernel', 'calls/step', 'ms/step', '% of step']),
    line(['---', '---', '---', '---']),
    ...rows(r.kernels.slice(0, topKernels), true),
  ].join('\n');
}
