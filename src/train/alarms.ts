// Collapse alarms: the three ways a DINO run quietly stops learning, detected while it trains.
//
// - uniform: the DINO loss sits at ln K. dinoLoss averages the cross-entropy over (teacher crop,
//   student crop) pairs, so whatever the number of crops a uniform teacher and student give exactly
//   ln K (a sum over pairs would give pairs·ln K). Only the DINO term is compared: me-max, KoLeo and
//   iBOT add terms of their own to the total loss.
// - usage: the teacher's argmax lands on fewer than max(2, 1% of K) prototypes on the epoch's
//   evaluation images (the per-epoch diagnostics' usage_used).
// - partial: unique prototypes at ε = 0.025 fall below half the highest count seen in the run.
//
// The monitor only decides; the trainer prints and logs what it returns. Its state is plain JSON so
// a checkpoint can carry it, and the epoch-level part can be rebuilt from log.jsonl.

export type AlarmKind = 'uniform' | 'usage' | 'partial';
export const ALARM_KINDS: readonly AlarmKind[] = ['uniform', 'usage', 'partial'];

/** Relative distance to ln K under which a step's loss counts as uniform. */
export const UNIFORM_TOLERANCE = 0.01;
/** Steps in a row at ln K before the uniform alarm fires (--collapse_window; tests use fewer). */
export const DEFAULT_UNIFORM_WINDOW = 200;
/** The ε of the unique-prototype count the partial alarm follows. */
export const PARTIAL_EPS = '0.025';
/** The partial alarm fires below this fraction of the highest unique count so far. */
export const PARTIAL_FRACTION = 0.5;
/**
 * The usage alarm judges only when the evaluation has at least this many images per prototype of
 * its threshold: with fewer images even a healthy teacher could not reach the threshold.
 */
export const USAGE_MIN_IMAGES_PER_THRESHOLD = 10;

export interface AlarmRecord {
  event: 'alarm' | 'alarm_cleared';
  kind: AlarmKind;
  step: number;
  /** 1-based epoch the alarm was raised in (as the log's epoch records number them). */
  epoch: number;
  message: string;
  [detail: string]: unknown;
}

/** What the monitor carries from step to step; JSON, stored in checkpoint metadata. */
export interface AlarmState {
  /** Steps in a row, up to the last one seen, whose DINO loss was within the tolerance of ln K. */
  uniform_streak: number;
  /** Alarms raised and not cleared since. */
  active: AlarmKind[];
  /** Highest unique-prototype count (ε 0.025) seen in the run, and at which step; 0 before any. */
  peak_unique: number;
  peak_unique_step: number;
}

export function freshAlarmState(): AlarmState {
  return { uniform_streak: 0, active: [], peak_unique: 0, peak_unique_step: 0 };
}

/** The per-epoch diagnostics fields the usage and partial alarms read (see epochDiagnostics). */
export interface EpochDiagnostics {
  usage_used?: unknown;
  eval_test_rows?: unknown;
  prototypes?: unknown;
  unique_prototypes?: unknown;
}

export function usageThreshold(K: number): number {
  return Math.max(2, 0.01 * K);
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const f3 = (x: number): string => x.toFixed(3);

export class CollapseAlarms {
  private s: AlarmState;
  readonly lnK: number;

  /** K: the number of prototypes (--out_dim); window: steps in a row for the uniform alarm (0: off). */
  constructor(
    readonly K: number,
    readonly window: number = DEFAULT_UNIFORM_WINDOW,
    state: AlarmState = freshAlarmState(),
  ) {
    this.lnK = Math.log(K);
    this.s = { ...state, active: [...state.active] };
  }

  state(): AlarmState {
    return { ...this.s, active: [...this.s.active] };
  }

  isActive(kind: AlarmKind): boolean {
    return this.s.active.includes(kind);
  }

  get active(): readonly AlarmKind[] {
    return this.s.active;
  }

  private raise(
    kind: AlarmKind,
    step: number,
    epoch: number,
    message: string,
    detail: Record<string, unknown>,
  ): AlarmRecord[] {
    if (this.isActive(kind)) return [];
    this.s.active.push(kind);
    return [{ event: 'alarm', kind, step, epoch, message, ...detail }];
  }

  private clear(
    kind: AlarmKind,
    step: number,
    epoch: number,
    message: string,
    detail: Record<string, unknown>,
  ): AlarmRecord[] {
    if (!this.isActive(kind)) return [];
    this.s.active = this.s.active.filter((k) => k !== kind);
    return [{ event: 'alarm_cleared', kind, step, epoch, message, ...detail }];
  }

  /**
   * One training step's DINO loss (the term alone, averaged over crop pairs and micro-batches).
   * `step` is 1-based as in the log, `epoch` 1-based. A non-finite loss breaks the streak.
   */
  step(step: number, epoch: number, loss: number): AlarmRecord[] {
    if (this.window <= 0) return [];
    const near = Number.isFinite(loss) && Math.abs(loss - this.lnK) <= UNIFORM_TOLERANCE * this.lnK;
    if (!near) {
      this.s.uniform_streak = 0;
      return this.clear(
        'uniform',
        step,
        epoch,
        `uniform collapse cleared - loss ${f3(loss)} left the 1% band around ln ${this.K} = ${f3(this.lnK)} at step ${step}`,
        { loss, ln_k: this.lnK },
      );
    }
    this.s.uniform_streak++;
    if (this.s.uniform_streak < this.window) return [];
    return this.raise(
      'uniform',
      step,
      epoch,
      `uniform collapse - loss ${f3(loss)} within 1% of ln ${this.K} = ${f3(this.lnK)} for ${this.window} steps ` +
        `(steps ${step - this.window + 1}-${step}): the teacher's outputs are uniform and the student learns nothing; ` +
        'try BatchNorm in the head (--use_bn_in_head), a lower teacher temperature (--teacher_temp) or fewer prototypes (--out_dim)',
      { loss, ln_k: this.lnK, window: this.window, tolerance: UNIFORM_TOLERANCE },
    );
  }

  /** The diagnostics of an epoch's end (`step` the global step, `epoch` 1-based). */
  epoch(step: number, epoch: number, d: EpochDiagnostics): AlarmRecord[] {
    const out: AlarmRecord[] = [];
    const K = num(d.prototypes) ?? this.K;
    const used = num(d.usage_used),
      images = num(d.eval_test_rows);
    const threshold = usageThreshold(K);
    // Without the image count the evaluation's size is unknown, so it is trusted.
    if (used !== undefined && (images === undefined || images >= USAGE_MIN_IMAGES_PER_THRESHOLD * threshold)) {
      const detail = { used, prototypes: K, images: images ?? null, threshold };
      if (used < threshold) {
        out.push(
          ...this.raise(
            'usage',
            step,
            epoch,
            `usage collapse - the teacher's argmax uses ${used} of ${K} prototypes on ${images ?? 'the'} evaluation images ` +
              `(fewer than max(2, 1% of K) = ${+threshold.toFixed(2)}): every image gets the same few outputs; ` +
              'check the centering (--centering, --center_momentum below 1), or try --centering sinkhorn or --koleo_proto 0.1',
            detail,
          ),
        );
      } else {
        out.push(
          ...this.clear(
            'usage',
            step,
            epoch,
            `usage collapse cleared - the teacher's argmax uses ${used} of ${K} prototypes (threshold ${+threshold.toFixed(2)})`,
            detail,
          ),
        );
      }
    }
    const unique = num((d.unique_prototypes as Record<string, unknown> | undefined)?.[PARTIAL_EPS]);
    if (unique !== undefined) {
      if (unique > this.s.peak_unique) {
        this.s.peak_unique = unique;
        this.s.peak_unique_step = step;
      }
      const peak = this.s.peak_unique;
      const detail = {
        unique,
        peak_unique: peak,
        peak_step: this.s.peak_unique_step,
        eps: Number(PARTIAL_EPS),
        prototypes: K,
      };
      if (unique < PARTIAL_FRACTION * peak) {
        out.push(
          ...this.raise(
            'partial',
            step,
            epoch,
            `partial prototype collapse - ${unique} unique prototypes (ε ${PARTIAL_EPS}) of ${K}, below half the run's highest, ` +
              `${peak} at step ${this.s.peak_unique_step}: prototypes are merging into near-identical groups; --koleo_proto 0.1 keeps them apart`,
            detail,
          ),
        );
      } else {
        out.push(
          ...this.clear(
            'partial',
            step,
            epoch,
            `partial prototype collapse cleared - ${unique} unique prototypes (ε ${PARTIAL_EPS}), at least half of the highest ${peak}`,
            detail,
          ),
        );
      }
    }
    return out;
  }
}

/**
 * The epoch-level alarm state of a resumed run, rebuilt from its log: the epoch records up to the
 * checkpoint's step replayed in step order (the last record of a step wins: a resumed run that
 * re-ran a step logged it again), on top of the checkpoint's own state. The checkpoint is written
 * before the epoch's diagnostics run, so its state alone would miss the last epoch's counts; the
 * uniform streak is per step and not in the log, so it comes from the checkpoint alone.
 */
export function resumedAlarms(
  K: number,
  window: number,
  saved: AlarmState | undefined,
  records: readonly Record<string, unknown>[],
  upToStep: number,
): CollapseAlarms {
  const byStep = new Map<number, Record<string, unknown>>();
  for (const r of records) {
    if (r.event === 'epoch' && typeof r.step === 'number' && r.step <= upToStep) byStep.set(r.step, r);
  }
  // Replaying records the saved state already saw changes nothing: the peak is a maximum, and each
  // record sets the usage and partial flags from its own counts.
  const a = new CollapseAlarms(K, window, saved ?? freshAlarmState());
  for (const [step, r] of [...byStep].sort((x, y) => x[0] - y[0]))
    a.epoch(step, typeof r.epoch === 'number' ? r.epoch : 0, r);
  return a;
}

/** An AlarmState from checkpoint metadata, or undefined when absent or malformed (older checkpoints). */
export function parseAlarmState(v: unknown): AlarmState | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : undefined);
  const streak = n(o.uniform_streak),
    peak = n(o.peak_unique),
    peakStep = n(o.peak_unique_step);
  if (streak === undefined || peak === undefined || peakStep === undefined || !Array.isArray(o.active))
    return undefined;
  return {
    uniform_streak: streak,
    peak_unique: peak,
    peak_unique_step: peakStep,
    active: o.active.filter((k): k is AlarmKind => ALARM_KINDS.includes(k)),
  };
}
