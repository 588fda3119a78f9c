// How much work the default job does on this machine. Hosts differ 2–3× in speed, so the job times a
// few real steps of each kind first and shortens its runs to fit a time budget, never below a floor
// that still shows the effect; it then reports the whole job's progress with one ETA.
import { formatDuration } from '../train/progress.js';

/** Seconds per unit of work, measured on this machine. */
export interface DemoRates {
  frozenStepS: number;
  fullStepS: number;
  /** Embedding one image with the full-training backbone (evaluation). */
  embedImageS: number;
  /** Per training run: setup, data loader start, checkpoints. */
  runOverheadS: number;
}

export interface DemoShape {
  frozenRuns: number;
  fullRuns: number;
  frozenSteps: { max: number; min: number };
  fullSteps: { max: number; min: number };
  /** Images embedded per full-training evaluation (bank + queries), also for random init and the headline. */
  evalImages: number;
  /** Evaluations that are not part of a training run (random init, the committed model's headline). */
  extraEvals: number;
}

export interface DemoPlan {
  frozenSteps: number;
  fullSteps: number;
  /** Fraction of the full-size job (1: nothing shortened). */
  scale: number;
  expectedS: number;
  /** Step-equivalents in seconds of every planned piece, for the ETA. */
  budgetS: number;
}

export function expectedSeconds(shape: DemoShape, rates: DemoRates, frozenSteps: number, fullSteps: number): number {
  const evalS = shape.evalImages * rates.embedImageS;
  return (
    shape.frozenRuns * (frozenSteps * rates.frozenStepS + rates.runOverheadS) +
    shape.fullRuns * (fullSteps * rates.fullStepS + rates.runOverheadS + evalS) +
    shape.extraEvals * evalS
  );
}

/**
 * The largest job (both kinds of run shortened by the same factor, each kept at or above its floor)
 * whose expected time fits `budgetS`. On a fast machine that is the full-size job.
 */
export function planDemo(shape: DemoShape, rates: DemoRates, budgetS: number): DemoPlan {
  for (const [k, v] of Object.entries(rates))
    if (!(v >= 0 && Number.isFinite(v)))
      throw new RangeError(`demo plan: rate ${k} must be a finite number ≥ 0, got ${v}`);
  if (!(budgetS > 0)) throw new RangeError(`demo plan: budget must be positive, got ${budgetS}`);
  const at = (f: number) => {
    const frozenSteps = Math.max(shape.frozenSteps.min, Math.round(shape.frozenSteps.max * f));
    const fullSteps = Math.max(shape.fullSteps.min, Math.round(shape.fullSteps.max * f));
    return { frozenSteps, fullSteps, scale: f, expectedS: expectedSeconds(shape, rates, frozenSteps, fullSteps) };
  };
  let best = at(1);
  if (best.expectedS > budgetS) {
    // expected time grows with f: bisect for the largest f that fits
    let lo = 0,
      hi = 1;
    for (let i = 0; i < 30; i++) {
      const mid = (lo + hi) / 2;
      if (at(mid).expectedS <= budgetS) lo = mid;
      else hi = mid;
    }
    best = at(lo);
  }
  return { ...best, budgetS: best.expectedS };
}

/** One progress line for the whole job: work done in expected seconds, against the plan, with an ETA. */
export class JobClock {
  private doneS = 0; // expected seconds of the pieces finished
  private pieceS = 0; // expected seconds of the piece running
  private pieceFrac = 0;
  private lastPrint = -Infinity;
  private readonly t0: number;

  constructor(
    private readonly totalS: number,
    private readonly write: (line: string) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly intervalS = 15,
  ) {
    this.t0 = now();
  }

  start(expectedS: number): void {
    this.pieceS = expectedS;
    this.pieceFrac = 0;
  }

  /** Progress within the current piece, in [0, 1]; prints at most every intervalS. */
  progress(frac: number, label: string): void {
    this.pieceFrac = Math.min(1, Math.max(0, frac));
    const t = this.now();
    if ((t - this.lastPrint) / 1000 < this.intervalS) return;
    this.lastPrint = t;
    this.write(this.line(label, t));
  }

  finish(): void {
    this.doneS += this.pieceS;
    this.pieceS = 0;
    this.pieceFrac = 0;
  }

  line(label: string, t = this.now()): string {
    const elapsed = (t - this.t0) / 1000;
    const done = this.doneS + this.pieceS * this.pieceFrac;
    // The measured pace (elapsed per expected second) corrects the plan once enough of the job is
    // done for it to mean something; before that, start-up costs would inflate it.
    const eta =
      done >= 0.05 * this.totalS
        ? Math.max(0, this.totalS - done) * (elapsed / done)
        : Math.max(0, this.totalS - elapsed);
    return `   … ${label}: ${(100 * Math.min(1, done / this.totalS)).toFixed(0)}% of the job, elapsed ${formatDuration(elapsed)}, ETA ${formatDuration(eta)}`;
  }
}
