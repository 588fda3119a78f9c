// Training progress on one line: epoch, step/total, images per second, loss and ETA. On a terminal
// the line is redrawn in place (at most every ttyIntervalMs); when the output is a file or a CI log,
// where carriage returns would pile up, a plain line is printed at the first step and then at most
// every intervalMs, so logs stay short but still show the run is alive.
//
// Our own ~100 lines rather than a dependency such as cli-progress: the fields are ours anyway, the
// non-TTY mode must print lines we format, and an injectable clock and stream keep it testable.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Seconds between plain lines when the stream is not a terminal (default 10). */
  intervalS?: number;
  /** Milliseconds between redraws on a terminal (default 100). */
  ttyIntervalMs?: number;
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
}

export interface ProgressState {
  step: number; // steps done in this epoch
  total: number; // steps in the epoch
  epoch?: number; // 0-based, shown 1-based
  epochs?: number;
  images?: number; // images processed so far in this epoch
  loss?: number;
  /** Extra short fields shown after the loss, e.g. { lr: 1e-4 }. */
  extra?: Record<string, number | string>;
}

/** 3725 s → "1h02m05s", 65 → "1m05s", 7.4 → "7s"; unknown → "--". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(s % 60)}s`;
  if (m > 0) return `${m}m${pad(s % 60)}s`;
  return `${s}s`;
}

function formatNumber(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4).replace(/\.?0+$/, '');
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private started = false;
  private epochKey: number | undefined;
  private t0 = 0; // time of the first update of the epoch: rates exclude warm-up before it
  private step0 = 0;
  private images0 = 0;
  private lastDraw = -Infinity;
  private drawn = false; // a TTY line is on screen and needs a newline before other output

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.tty = this.stream.isTTY === true;
    this.intervalMs = this.tty ? (options.ttyIntervalMs ?? 100) : (options.intervalS ?? 10) * 1000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Reports the state; draws only when the interval has passed (or `force`). */
  update(state: ProgressState, force = false): void {
    const t = this.now();
    if (!this.started || state.epoch !== this.epochKey || state.step < this.step0) {
      this.started = true;
      this.epochKey = state.epoch;
      this.t0 = t;
      this.step0 = state.step;
      this.images0 = state.images ?? 0;
      force = true;
    }
    if (!force && t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    const line = this.format(state, t);
    if (this.tty) {
      const width = Math.max(20, (this.stream.columns ?? 100) - 1);
      this.stream.write(`\r${line.slice(0, width)}\x1b[K`);
      this.drawn = true;
    } else {
      this.stream.write(line + '\n');
    }
  }

  /** Draws the final state and ends the line (call at the end of an epoch). */
  done(state: ProgressState): void {
    this.update(state, true);
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.started = false;
  }

  /**
   * A line of its own (a warning) between progress updates: on a terminal the line being redrawn is
   * ended first, so the warning neither overwrites it nor gets overwritten.
   */
  message(line: string): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.stream.write(line + '\n');
  }

  format(state: ProgressState, t = this.now()): string {
    const dt = (t - this.t0) / 1000;
    const steps = state.step - this.step0;
    const parts: string[] = [];
    if (state.epoch !== undefined)
      parts.push(`epoch ${state.epoch + 1}${state.epochs !== undefined ? `/${state.epochs}` : ''}`);
    const pct = state.total > 0 ? ` (${((100 * state.step) / state.total).toFixed(1)}%)` : '';
    parts.push(`step ${state.step}/${state.total}${pct}`);
    if (this.tty && state.total > 0) {
      const filled = Math.round((20 * Math.min(state.step, state.total)) / state.total);
      parts.unshift(`[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}]`);
    }
    if (state.images !== undefined)
      parts.push(dt > 0 ? `${((state.images - this.images0) / dt).toFixed(1)} img/s` : '-- img/s');
    if (state.loss !== undefined) parts.push(`loss ${formatNumber(state.loss)}`);
    for (const [k, v] of Object.entries(state.extra ?? {})) parts.push(`${k} ${formatNumber(v)}`);
    const eta = steps > 0 ? ((state.total - state.step) * dt) / steps : NaN;
    parts.push(`ETA ${formatDuration(eta)}`);
    return parts.join('  ');
  }
}
