// A profiling Backend: wraps another backend, times every kernel call made inside a profiled step
// and groups the times by kernel family (backend.ts's KernelFamilies). Outside beginStep/endStep it
// only forwards, so networks built on it cost one flag test per kernel when profiling is off.
//
// Timing model. Wasm kernels are synchronous (the fork-join returns when every thread is done), so
// the wall time of a call is the kernel's time ('wall'). WebGPU kernels are only encoded. Where the
// device has timestamp queries ('timestamps'), every dispatch of a profiled step is a compute pass
// that writes its start and end time; the step stays one command buffer, and the GPU time of each
// pass is attributed to the kernel call that encoded it. Elsewhere ('serialized', the fallback)
// each kernel is submitted on its own right after encoding. That serialises the step (one submit
// and one pass per kernel) and adds per-submit cost, so such a profiled step is slower than an
// unprofiled one. On Dawn's OpenGL ES backend (Mesa llvmpipe here, which has no timestamp
// queries) a submit executes the work before it returns, so the per-kernel times are the work
// itself; on an adapter that runs submits asynchronously the work left over at the end of the step
// shows up as "device wait" (endStep awaits the queue) instead of under the kernels.
//
// Device traffic. Every step also counts the submits and CPU waits the step itself makes (from the
// inner backend's traffic()), leaving out those the profiler adds (per-kernel submits, its wait at
// the end of the step), so the counts are those of an unprofiled step.
import type {
  Backend,
  DeviceTraffic,
  DType,
  KernelFamily,
  KernelName,
  AttentionParams,
  Kernels,
  MemoryStats,
  Storage,
} from './backend.js';
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

/** GPU timing of the passes a backend encodes (WebGPU with timestamp queries). */
export interface PassTiming {
  /** From now on every dispatch is a timed pass. */
  start(): void;
  /** Passes timed since start(). */
  passes(): number;
  /** Ends timing; the duration of each timed pass in ms, in encoding order. */
  stop(): Promise<Float64Array>;
}

/** A backend that can time its passes: the timing, or why it cannot. */
export interface PassTimingSource {
  passTiming(): PassTiming | { unavailable: string };
}

function hasPassTiming(be: Backend): be is Backend & PassTimingSource {
  return typeof (be as Partial<PassTimingSource>).passTiming === 'function';
}

/** The passes [first, end) one kernel call encoded, recorded under `key`. */
export interface PassSpan {
  key: string;
  first: number;
  end: number;
}

/**
 * GPU ms per key: the sum of the durations of the passes each call encoded. A call that encoded no
 * pass (a zero-size dispatch, a copy only) counts as a call of 0 ms.
 */
export function attributePasses(durations: Float64Array, spans: readonly PassSpan[]): Map<string, Stat> {
  const out = new Map<string, Stat>();
  for (const { key, first, end } of spans) {
    if (first < 0 || end < first || end > durations.length)
      throw new Error(`profile: passes [${first}, ${end}) of '${key}' outside the ${durations.length} timed`);
    let ms = 0;
    for (let i = first; i < end; i++) ms += durations[i];
    const s = out.get(key);
    if (s) {
      s.calls++;
      s.ms += ms;
    } else out.set(key, { calls: 1, ms });
  }
  return out;
}

export type ProfileTiming = 'wall' | 'timestamps' | 'serialized';

/** Accumulated times of some steps. Keys of `kernels` are the method, with the op where it has one (binary.add). */
class Totals {
  steps = 0;
  stepMs = 0;
  transferMs = 0;
  transferCalls = 0;
  waitMs = 0;
  /** The step's own submits and CPU waits (the profiler's left out), and the most of one step. */
  submits = 0;
  waits = 0;
  maxSubmits = 0;
  maxWaits = 0;
  /** What the profiler itself added. */
  profilerSubmits = 0;
  profilerWaits = 0;
  readonly kernels = new Map<string, Stat>();
}

/** Submits and CPU waits per step. */
export interface TrafficRow {
  /** Mean per step, of the step itself (what an unprofiled step makes). */
  submits: number;
  waits: number;
  /** The most in one step. */
  maxSubmits: number;
  maxWaits: number;
  /** Mean per step, added by the profiler (per-kernel submits, its wait at the end of the step). */
  profilerSubmits: number;
  profilerWaits: number;
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
  /**
   * How kernels were timed: 'wall' (wasm, synchronous kernels), 'timestamps' (GPU timestamp
   * queries; kernel ms are GPU time, which runs alongside the host's), 'serialized' (the WebGPU
   * fallback: one submit per kernel).
   */
  timing: ProfileTiming;
  /** Why the WebGPU fallback ran (the adapter has no timestamp queries); '' otherwise. */
  timingNote: string;
  /** True when kernels were submitted one by one (timing 'serialized', see the file comment). */
  serialized: boolean;
  /** Submits and CPU waits per step. */
  traffic: TrafficRow;
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
  readonly timing: ProfileTiming;
  readonly timingNote: string;
  private readonly passTiming: PassTiming | null = null;
  /** The timed passes of each kernel call of the current step ('timestamps'). */
  private spans: PassSpan[] = [];
  private trafficAtStart: DeviceTraffic = { submits: 0, waits: 0 };
  /** Submits and waits the profiler caused in the current step, and in all. */
  private own: DeviceTraffic = { submits: 0, waits: 0 };
  private readonly ownTotal: DeviceTraffic = { submits: 0, waits: 0 };

  constructor(readonly inner: Backend) {
    this.kind = inner.kind;
    this.description = inner.description;
    if (inner.kind === 'wasm') {
      this.timing = 'wall';
      this.timingNote = '';
    } else {
      const t = hasPassTiming(inner) ? inner.passTiming() : { unavailable: 'the backend cannot time passes' };
      if ('unavailable' in t) {
        this.timing = 'serialized';
        this.timingNote = `fallback: ${t.unavailable}, so each kernel is submitted on its own`;
      } else {
        this.timing = 'timestamps';
        this.timingNote = '';
        this.passTiming = t;
      }
    }
    const calls = inner as unknown as Record<KernelName, (...args: unknown[]) => void>;
    for (const kernel of KERNEL_NAMES) {
      (this as unknown as Record<KernelName, (...args: unknown[]) => void>)[kernel] = (...args) => {
        if (!this.active) return calls[kernel](...args);
        if (this.passTiming) {
          const first = this.passTiming.passes();
          calls[kernel](...args);
          this.spans.push({ key: callKey(kernel, args), first, end: this.passTiming.passes() });
          return;
        }
        const t0 = performance.now();
        calls[kernel](...args);
        this.record(callKey(kernel, args), t0);
      };
    }
  }

  /** Runs `f`, counting the submits and waits it causes as the profiler's own. */
  private async ownTraffic<T>(f: () => Promise<T>): Promise<T> {
    const before = this.inner.traffic();
    try {
      return await f();
    } finally {
      this.countOwn(before);
    }
  }

  private countOwn(before: DeviceTraffic): void {
    const after = this.inner.traffic();
    for (const t of [this.own, this.ownTotal]) {
      t.submits += after.submits - before.submits;
      t.waits += after.waits - before.waits;
    }
  }

  // ---- steps --------------------------------------------------------------------------------

  /** Starts recording one step; kernels called until endStep are timed. */
  beginStep(): void {
    if (this.active) throw new Error('profile: beginStep called twice without endStep');
    this.active = true;
    this.cur = new Totals();
    this.spans = [];
    this.own = { submits: 0, waits: 0 };
    this.trafficAtStart = this.inner.traffic();
    this.passTiming?.start();
    this.stepStart = performance.now();
  }

  /** Waits for the device (and the timestamps), then closes the step. */
  async endStep(): Promise<void> {
    if (!this.active) throw new Error('profile: endStep without beginStep');
    const t0 = performance.now();
    const now = this.inner.traffic();
    const c = this.cur;
    c.submits = now.submits - this.trafficAtStart.submits - this.own.submits;
    c.waits = now.waits - this.trafficAtStart.waits - this.own.waits;
    try {
      if (this.passTiming) {
        const timing = this.passTiming;
        const durations = await this.ownTraffic(() => timing.stop());
        for (const [key, s] of attributePasses(durations, this.spans)) c.kernels.set(key, s);
      } else {
        await this.ownTraffic(() => this.inner.sync());
      }
    } finally {
      this.active = false;
      this.spans = [];
    }
    const t1 = performance.now();
    c.waitMs += t1 - t0;
    c.stepMs += t1 - this.stepStart;
    c.steps = 1;
    c.maxSubmits = c.submits;
    c.maxWaits = c.waits;
    c.profilerSubmits = this.own.submits;
    c.profilerWaits = this.own.waits;
    if (!this.first) this.first = c;
    else merge(this.rest, c);
  }

  /** Submits and CPU waits of the inner backend, less those the profiler caused. */
  traffic(): DeviceTraffic {
    const t = this.inner.traffic();
    return { submits: t.submits - this.ownTotal.submits, waits: t.waits - this.ownTotal.waits };
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
    // GPU time from timestamps runs alongside the host's; it is not part of the step's host time.
    const hostMs = t.stepMs - (this.timing === 'timestamps' ? 0 : kernelMs) - t.transferMs - t.waitMs;
    return {
      backend: this.description,
      steps: n,
      firstStepExcluded: useRest,
      stepMs,
      timing: this.timing,
      timingNote: this.timingNote,
      serialized: this.timing === 'serialized',
      traffic: {
        submits: t.submits / n,
        waits: t.waits / n,
        maxSubmits: t.maxSubmits,
        maxWaits: t.maxWaits,
        profilerSubmits: t.profilerSubmits / n,
        profilerWaits: t.profilerWaits / n,
      },
      families,
      kernels,
      transfer: row('transfer (upload/download)', t.transferCalls, t.transferMs),
      deviceWait: row('device wait (end of step)', 0, t.waitMs),
      host: row('host (autograd, bookkeeping, JS)', 0, hostMs),
    };
  }

  // ---- timing -------------------------------------------------------------------------------

  private record(key: string, t0: number): void {
    if (this.timing === 'serialized') {
      // puts the kernel's work inside its own timing, as the inner backend defers it
      const before = this.inner.traffic();
      this.inner.flush();
      this.countOwn(before);
    }
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
  attentionSavedLength(p: AttentionParams): number {
    return this.inner.attentionSavedLength(p);
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
  into.submits += t.submits;
  into.waits += t.waits;
  into.maxSubmits = Math.max(into.maxSubmits, t.maxSubmits);
  into.maxWaits = Math.max(into.maxWaits, t.maxWaits);
  into.profilerSubmits += t.profilerSubmits;
  into.profilerWaits += t.profilerWaits;
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

/** One line on how kernels were timed and what the step sent to and awaited from the device. */
export function profileNotes(r: ProfileReport): string[] {
  const how =
    r.timing === 'timestamps'
      ? 'kernel times are GPU time from timestamp queries (the step stays one command buffer; GPU and host overlap, so the rows do not add up to the step)'
      : r.timing === 'serialized'
        ? `kernels submitted one at a time (serialized, slower than unprofiled; ${r.timingNote})`
        : 'kernel times are wall time (synchronous kernels)';
  const notes = [how];
  if (r.timing !== 'wall') {
    const t = r.traffic;
    notes.push(
      `device traffic per step: ${fmtCalls(t.submits)} submit(s) and ${fmtCalls(t.waits)} CPU wait(s) ` +
        `(at most ${t.maxSubmits} and ${t.maxWaits} in one step); the profiler added ` +
        `${fmtCalls(t.profilerSubmits)} submit(s) and ${fmtCalls(t.profilerWaits)} wait(s) of its own`,
    );
  }
  return notes;
}

/** The profile as markdown: one row per kernel family, then transfers, device wait and host time; the top kernels below. */
export function profileTable(r: ProfileReport, topKernels = 10): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = (list: ProfileRow[], calls: boolean) =>
    list.map((x) => line([x.name, calls ? fmtCalls(x.calls) : '', fmtMs(x.ms), `${x.pct.toFixed(1)}%`]));
  const kernelMs = r.families.reduce((s, f) => s + f.ms, 0);
  const note =
    `${r.backend}: mean of ${r.steps} step${r.steps === 1 ? '' : 's'}${r.firstStepExcluded ? ' (first step left out)' : ''}, ` +
    `${fmtMs(r.stepMs)} ms per step`;
  const gpu = r.timing === 'timestamps';
  return [
    note,
    ...profileNotes(r).map((n) => `- ${n}`),
    '',
    line(['kernel family', 'calls/step', gpu ? 'GPU ms/step' : 'ms/step', '% of step']),
    line(['---', '---', '---', '---']),
    ...rows(r.families, true),
    line([
      gpu ? '**all kernels (GPU busy)**' : '**all kernels**',
      fmtCalls(r.families.reduce((s, f) => s + f.calls, 0)),
      fmtMs(kernelMs),
      `${((100 * kernelMs) / r.stepMs).toFixed(1)}%`,
    ]),
    ...rows([r.transfer], true),
    ...(r.deviceWait.ms > 0.05 * r.stepMs || r.timing !== 'wall' ? rows([r.deviceWait], false) : []),
    ...rows([r.host], false),
    line(['**step**', '', fmtMs(r.stepMs), '100%']),
    '',
    line(['kernel', 'calls/step', gpu ? 'GPU ms/step' : 'ms/step', '% of step']),
    line(['---', '---', '---', '---']),
    ...rows(r.kernels.slice(0, topKernels), true),
  ].join('\n');
}
