// The parameter-norm alarm: a parameter whose L2 norm has grown NORM_GROWTH_LIMIT times over its
// value at the start of training is raised as an alarm (progress line and log.jsonl, as the
// collapse alarms are) and, with --on_nan stop, ends the run before it saves. Such growth comes
// before the overflow the finiteness guard catches, often by thousands of steps, and a run that
// gets there has diverged whether or not its loss has stopped being finite yet.
//
// Parameters that start at norm 0 (zero-initialised biases, iBOT's mask token) are not watched: no
// ratio to 0 means anything. The starting norms are stored in checkpoints so a resumed run keeps
// its baseline.
import type { Tensor } from '../tensor/tensor.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { sumSquares } from '../tensor/ops/reduce.js';
import { concat } from '../tensor/ops/layout.js';
import { reshape } from '../tensor/ops/view.js';

export const NORM_GROWTH_LIMIT = 100;

export interface NormAlarmRecord {
  event: 'alarm';
  kind: 'norm_growth';
  step: number;
  /** 1-based, as the collapse alarms and the log's epoch records number epochs. */
  epoch: number;
  tensor: string;
  norm: number;
  initial: number;
  ratio: number;
  message: string;
  [detail: string]: unknown;
}

/** The L2 norm of each named tensor, with one read-back for all of them. */
export async function parameterNorms(named: [string, Tensor][]): Promise<Record<string, number>> {
  const withData = named.filter(([, t]) => t.size > 0);
  if (withData.length === 0) return {};
  const all = tidy(() =>
    noGrad(() =>
      concat(
        withData.map(([, t]) => reshape(sumSquares(reshape(t, [t.size])), [1])),
        0,
      ),
    ),
  );
  let squares: Float32Array;
  try {
    squares = (await all.data()) as Float32Array;
  } finally {
    all.dispose(); // also when the read fails: a device fault must not strand it
  }
  const out: Record<string, number> = {};
  withData.forEach(([name], i) => (out[name] = Math.sqrt(squares[i])));
  return out;
}

export class NormWatch {
  /** Names already raised in this invocation: one alarm per parameter, not one per log step. */
  private readonly raised = new Set<string>();

  constructor(
    /** Norms at the start of training, by parameter name. */
    readonly initial: Readonly<Record<string, number>>,
    readonly limit = NORM_GROWTH_LIMIT,
  ) {}

  /** Alarms for the parameters that crossed the limit since the last check, largest growth first. */
  check(norms: Record<string, number>, step: number, epoch: number): NormAlarmRecord[] {
    const out: NormAlarmRecord[] = [];
    for (const [name, norm] of Object.entries(norms)) {
      const initial = this.initial[name];
      if (!(initial > 0) || this.raised.has(name)) continue;
      const ratio = norm / initial;
      // A non-finite norm is the finiteness guard's to report; this alarm is about finite growth.
      if (!(Number.isFinite(ratio) && ratio >= this.limit)) continue;
      this.raised.add(name);
      const show = (x: number) => Number(x.toPrecision(4));
      out.push({
        event: 'alarm',
        kind: 'norm_growth',
        step,
        epoch,
        tensor: name,
        norm,
        initial,
        ratio,
        message: `the norm of ${name} grew ${show(ratio)}× over its initial value (${show(initial)} → ${show(norm)}) by step ${step}: training is diverging — lower --lr or raise --clip_grad`,
      });
    }
    return out.sort((a, b) => b.ratio - a.ratio);
  }
}

/** The starting norms stored in a checkpoint's metadata, if they are there and well formed. */
export function parseInitialNorms(v: unknown): Record<string, number> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'number' || !(x >= 0) || !Number.isFinite(x)) return null;
    out[k] = x;
  }
  return out;
}
