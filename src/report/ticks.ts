// "Nice numbers" axis ticks (steps of 1, 2 or 5 × 10^n, 3 to 7 ticks) for every plot of the report
// and the experiments summary. Vega's own ticks follow the data: a flat k-NN curve gave a one-point
// domain and a single tick labelled "0.836000". Here a flat series is padded to a decade below its
// magnitude, so it still gets several ticks, and labels carry just the decimals the step needs.

export interface Ticks {
  /** The axis range: the outermost ticks, which enclose the data. */
  domain: [number, number];
  values: number[];
  step: number;
  /** Decimals a label needs to tell neighbouring ticks apart. */
  decimals: number;
}

export interface TickOptions {
  /** Whole-number steps only (counts: steps, prototypes, images). */
  integer?: boolean;
  /** Stretch the range to 0 (bars, counts that are read against zero). */
  zero?: boolean;
}

const MIN_TICKS = 3,
  MAX_TICKS = 7,
  TARGET_TICKS = 5;

function power(m: number, e: number): number {
  // Dividing by an exact power of ten keeps 0.1, 0.2, 0.05… exact where m * 10 ** -1 would not be.
  return e >= 0 ? m * 10 ** e : m / 10 ** -e;
}

function decimalsOf(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/** Ticks over [min, max]; non-finite bounds are ignored, an empty range is padded. */
export function niceTicks(min: number, max: number, opts: TickOptions = {}): Ticks {
  const finite = [min, max].filter(Number.isFinite);
  if (finite.length === 0) finite.push(0, 1);
  let lo = Math.min(...finite),
    hi = Math.max(...finite);
  if (opts.zero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (hi - lo <= Math.abs(hi) * 1e-12) {
    // Flat: one decade below the value's own magnitude on each side (0.836 → 0.826…0.846).
    const v = hi;
    let pad = v === 0 ? 1 : 10 ** (Math.floor(Math.log10(Math.abs(v))) - 1);
    if (opts.integer) pad = Math.max(1, Math.round(pad));
    lo = opts.zero && v >= 0 ? lo : v - pad;
    hi = opts.zero && v <= 0 ? hi : v + pad;
    if (lo === hi) hi = lo + pad;
  }
  const span = hi - lo;
  const e0 = Math.floor(Math.log10(span));
  let best: { step: number; first: number; count: number } | null = null;
  const eLo = opts.integer ? Math.max(0, e0 - 2) : e0 - 2;
  for (let e = eLo; e <= Math.max(eLo, e0 + 1); e++) {
    for (const m of [1, 2, 5]) {
      const step = power(m, e);
      if (opts.integer && step < 1) continue;
      // A step longer than the data's span pads it to a tick on either side of zero whatever its
      // size, and such a count ties with the right one (−0.5…0.5 got −50, 0, 50).
      if (step > span * (1 + 1e-9) && best) continue;
      // A bound that is a multiple of the step (0.3 / 0.1 = 2.9999999999999996) must not gain an
      // extra tick from rounding; the tolerance is relative, so it never skips past real data.
      const a = lo / step,
        b = hi / step;
      const first = Math.floor(a + Math.abs(a) * 1e-12),
        last = Math.ceil(b - Math.abs(b) * 1e-12);
      const count = last - first + 1;
      // On a tie the larger step (the later candidate) wins, for less padding around the data; but
      // where no step gives 3–7 ticks the smallest does, so the fewest ticks have to be added.
      const sc = score(count),
        bestSc = best ? score(best.count) : Infinity;
      if (sc < bestSc || (sc === bestSc && sc < 100)) best = { step, first, count };
    }
  }
  const { step, first } = best!;
  // Whole steps over a span shorter than two (counts 3 to 4) give two ticks: add ticks above.
  const count = Math.max(MIN_TICKS, best!.count);
  const decimals = decimalsOf(step);
  const values = Array.from({ length: count }, (_, i) => clean(Number(((first + i) * step).toFixed(decimals))));
  return { domain: [values[0], values[count - 1]], values, step, decimals };
}

/** Distance from the ideal tick count; any count outside 3–7 ranks below every count inside. */
function score(count: number): number {
  return Math.abs(count - TARGET_TICKS) + (count >= MIN_TICKS && count <= MAX_TICKS ? 0 : 100);
}

/** -0 (from rounding a tiny negative) prints as "−0"; the axis wants 0. */
function clean(v: number): number {
  return v === 0 ? 0 : v;
}

/** The d3-format string Vega applies to these ticks: grouped thousands, the ticks' decimals. */
export function tickFormat(t: Ticks): string {
  return `,.${t.decimals}f`;
}

/** A tick label as tickFormat renders it (thousands grouped with ",", "−" for negatives). */
export function formatTick(v: number, decimals: number): string {
  const s = Math.abs(v).toFixed(decimals);
  const [int, frac] = s.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const body = frac === undefined ? grouped : `${grouped}.${frac}`;
  return v < 0 && Number(s) !== 0 ? `−${body}` : body;
}
