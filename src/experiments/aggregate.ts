// Aggregation over seeds: mean ± std per cell, KoLeo-proto's paired differences and the Markdown
// tables (results.json is written by results.ts).
import { LONG_TAIL_RATIO, type DataKind, type ExperimentRun, type Method, type Setting } from './grid.js';
import type { CurvePoint, RunMetrics, RunResult } from './run.js';

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single seed. */
  std: number;
  n: number;
}

export function stat(xs: number[]): Stat | null {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

export const METRIC_KEYS = [
  'unique@0.025',
  'unique@0.1',
  'usageUsed',
  'knnTop1',
  'linearTop1',
  'fewShot5way5shot',
  'fewShot5way1shot',
  'knnHead',
  'knnMedium',
  'knnTail',
  'linearHead',
  'linearMedium',
  'linearTail',
] as const;

export function metricValue(m: RunMetrics, key: (typeof METRIC_KEYS)[number]): number {
  if (key === 'unique@0.025') return m.unique['0.025'];
  if (key === 'unique@0.1') return m.unique['0.1'];
  return (m[key as keyof RunMetrics] as number | undefined) ?? NaN;
}

export interface Group {
  setting: Setting;
  data: DataKind;
  method: Method;
  koleoProto: number;
  /** A `--sweep` cell's values (absent for plain cells). */
  sweep?: ExperimentRun['sweep'];
  seeds: number[];
  runs: string[];
  prototypes: number;
  steps: number;
  metrics: Partial<Record<(typeof METRIC_KEYS)[number], Stat>>;
  /** Median seconds per training step and peak live bytes, over the seeds whose results have them. */
  stepSeconds?: Stat;
  peakBytes?: Stat;
  /** Mean unique prototypes per evaluation step over the seeds that reached it. */
  curve: { step: number; unique: Record<string, Stat> }[];
}

export function aggregate(results: RunResult[]): Group[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const key = `${r.setting}|${r.metrics.prototypes}|${r.data}|${r.method}|${r.koleoProto}|${JSON.stringify(r.sweep ?? null)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.values()].map((rs) => {
    rs.sort((a, b) => a.seed - b.seed);
    const metrics: Group['metrics'] = {};
    for (const k of METRIC_KEYS) {
      const s = stat(rs.map((r) => metricValue(r.metrics, k)));
      if (s) metrics[k] = s;
    }
    const steps = [...new Set(rs.flatMap((r) => r.curve.map((c) => c.step)))].sort((a, b) => a - b);
    const curve = steps.map((step) => {
      const pts = rs.map((r) => r.curve.find((c) => c.step === step)).filter((c): c is CurvePoint => !!c);
      const unique: Record<string, Stat> = {};
      for (const e of ['0.025', '0.1']) {
        const s = stat(pts.map((p) => p.unique[e] ?? NaN));
        if (s) unique[e] = s;
      }
      return { step, unique };
    });
    const r0 = rs[0];
    const stepSeconds = stat(rs.map((r) => r.stepSeconds ?? NaN)),
      peakBytes = stat(rs.map((r) => r.peakBytes ?? NaN));
    return {
      setting: r0.setting,
      data: r0.data,
      method: r0.method,
      koleoProto: r0.koleoProto,
      ...(r0.sweep ? { sweep: r0.sweep } : {}),
      seeds: rs.map((r) => r.seed),
      runs: rs.map((r) => r.name),
      prototypes: r0.metrics.prototypes,
      steps: r0.steps,
      metrics,
      ...(stepSeconds ? { stepSeconds } : {}),
      ...(peakBytes ? { peakBytes } : {}),
      curve,
    };
  });
}

export const METHOD_LABEL: Record<Method, string> = {
  dino: 'DINO (centering)',
  sinkhorn: 'Sinkhorn-Knopp',
  memax: 'me-max',
  vmf: 'DINO-vMF',
  ibot: 'iBOT',
  init: 'random init (no training)',
  em: 'EM prototypes (decoupled)',
};

/** A table's data column: balanced, or the long tail's imbalance ratio. */
export const dataLabel = (d: DataKind) => (d === 'longtail' ? `long-tail ${LONG_TAIL_RATIO}` : 'balanced');

export function fmt(s: Stat | undefined, pct: boolean, digits = pct ? 1 : 0): string {
  if (!s) return '–';
  const k = pct ? 100 : 1;
  return s.n > 1 ? `${(k * s.mean).toFixed(digits)} ± ${(k * s.std).toFixed(digits)}` : (k * s.mean).toFixed(digits);
}

/** A group's method column: its label, and a sweep cell's values after it. */
export const groupLabel = (g: Pick<Group, 'method' | 'sweep'>) =>
  `${METHOD_LABEL[g.method]}${
    g.sweep
      ? ` (${Object.entries(g.sweep)
          .map(([f, v]) => `${f}=${String(v)}`)
          .join(', ')})`
      : ''
  }`;

/** The README table: one row per (setting, data, method, KoLeo-proto, swept values), mean ± std over n seeds. */
export function markdownTable(groups: Group[]): string {
  const order = (g: Group) => [
    g.setting === 'frozen' ? 0 : 1,
    g.prototypes,
    g.data === 'balanced' ? 0 : 1,
    ['init', 'dino', 'sinkhorn', 'memax', 'vmf', 'ibot', 'em'].indexOf(g.method),
    g.koleoProto,
  ];
  const sorted = [...groups].sort((a, b) => {
    const x = order(a),
      y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return groupLabel(a).localeCompare(groupLabel(b));
  });
  const lines = [
    '| setting | data | method | KoLeo-proto | n | unique ε=0.025 | unique ε=0.1 | k-NN top-1 % | linear top-1 % | 5-way 5-shot % | tail classes k-NN % | tail classes linear % | prototypes used |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const g of sorted) {
    const m = g.metrics;
    lines.push(
      `| ${g.setting} | ${dataLabel(g.data)} | ${groupLabel(g)} | ${g.koleoProto || 0} | ${g.seeds.length} ` +
        `| ${fmt(m['unique@0.025'], false)} / ${g.prototypes} | ${fmt(m['unique@0.1'], false)} / ${g.prototypes} | ${fmt(m.knnTop1, true)} | ${fmt(m.linearTop1, true)} ` +
        `| ${fmt(m.fewShot5way5shot, true)} | ${fmt(m.knnTail, true)} | ${fmt(m.linearTail, true)} | ${fmt(m.usageUsed, false)} |`,
    );
  }
  return lines.join('\n');
}

export const PAIRED_KEYS = [
  'unique@0.025',
  'unique@0.1',
  'knnTop1',
  'linearTop1',
  'fewShot5way5shot',
  'knnTail',
  'linearTail',
] as const;

/** Two-sided 95% quantile of Student's t with 1–30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export interface PairedDiff {
  /** Mean of (with KoLeo-proto − without) over the seeds both ran. */
  mean: number;
  /** Half-width of the 95% t-interval of that mean; null for one seed. */
  ci95: number | null;
  n: number;
  perSeed: number[];
}

export interface Paired {
  setting: Setting;
  prototypes: number;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seeds: number[];
  diffs: Partial<Record<(typeof PAIRED_KEYS)[number], PairedDiff>>;
}

/** The mean of per-seed differences with its 95% t-interval; null unless every difference is finite. */
export function pairedDiff(d: number[]): PairedDiff | null {
  const s = stat(d);
  if (!s || s.n !== d.length) return null;
  return {
    mean: s.mean,
    ci95: s.n > 1 ? (T975[Math.min(s.n - 1, T975.length) - 1] * s.std) / Math.sqrt(s.n) : null,
    n: s.n,
    perSeed: d,
  };
}

/** PAIRED_KEYS' differences (first − second) over pairs of runs at the same seed. */
export function pairedDiffs(pairs: readonly (readonly [RunResult, RunResult])[]): Paired['diffs'] {
  const diffs: Paired['diffs'] = {};
  for (const k of PAIRED_KEYS) {
    const d = pairedDiff(pairs.map(([a, b]) => metricValue(a.metrics, k) - metricValue(b.metrics, k)));
    if (d) diffs[k] = d;
  }
  return diffs;
}

/**
 * KoLeo-proto's effect seed by seed: each run with it against the run without it at the same seed,
 * setting, head size, data and method, as a mean difference with a 95% t-interval. Pairing removes
 * the seed's own variation (initialisation and data order are shared by both runs of a pair).
 */
export function pairedDifferences(results: RunResult[]): Paired[] {
  const key = (r: RunResult) => `${r.setting}|${r.metrics.prototypes}|${r.data}|${r.method}`;
  const out: Paired[] = [];
  const seen = new Set<string>();
  for (const kp of results.filter((r) => r.koleoProto > 0)) {
    // One entry per cell and KoLeo-proto weight, built from the first of its runs.
    if (seen.has(`${key(kp)}|${kp.koleoProto}`)) continue;
    seen.add(`${key(kp)}|${kp.koleoProto}`);
    const withKp = results.filter((r) => key(r) === key(kp) && r.koleoProto === kp.koleoProto);
    const pairs = withKp
      .map((a) => [a, results.find((b) => key(b) === key(a) && b.koleoProto === 0 && b.seed === a.seed)] as const)
      .filter((p): p is readonly [RunResult, RunResult] => p[1] !== undefined)
      .sort((x, y) => x[0].seed - y[0].seed);
    if (pairs.length === 0) continue;
    const diffs = pairedDiffs(pairs);
    out.push({
      setting: kp.setting,
      prototypes: kp.metrics.prototypes,
      data: kp.data,
      method: kp.method,
      koleoProto: kp.koleoProto,
      seeds: pairs.map(([a]) => a.seed),
      diffs,
    });
  }
  return out.sort(
    (a, b) =>
      a.setting.localeCompare(b.setting) ||
      a.prototypes - b.prototypes ||
      a.data.localeCompare(b.data) ||
      a.method.localeCompare(b.method),
  );
}

export function fmtDiff(d: PairedDiff | undefined, pct: boolean): string {
  if (!d) return '–';
  const k = pct ? 100 : 1,
    digits = pct ? 1 : 0;
  const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(k * x).toFixed(digits)}`;
  return d.ci95 === null ? sign(d.mean) : `${sign(d.mean)} ± ${(k * d.ci95).toFixed(digits)}`;
}

/** The Δ cells both paired tables share: unique at ε = 0.025 and 0.1, k-NN, linear, 5-way 5-shot, tail k-NN. */
export function diffCells(d: Paired['diffs']): string {
  return (
    `| ${fmtDiff(d['unique@0.025'], false)} | ${fmtDiff(d['unique@0.1'], false)} | ${fmtDiff(d.knnTop1, true)} ` +
    `| ${fmtDiff(d.linearTop1, true)} | ${fmtDiff(d.fewShot5way5shot, true)} | ${fmtDiff(d.knnTail, true)} `
  );
}

/** The paired differences as a Markdown table: mean ± 95% half-interval, in points for accuracies. */
export function pairedTable(paired: Paired[]): string {
  const lines = [
    '| setting | K | data | method | n | Δ unique ε=0.025 | Δ unique ε=0.1 | Δ k-NN | Δ linear | Δ 5-way 5-shot | Δ tail k-NN | Δ tail linear |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of paired) {
    const d = p.diffs;
    lines.push(
      `| ${p.setting} | ${p.prototypes} | ${dataLabel(p.data)} | ${METHOD_LABEL[p.method]} | ${p.seeds.length} ` +
        `${diffCells(d)}| ${fmtDiff(d.linearTail, true)} |`,
    );
  }
  return lines.join('\n');
}

/** Unique prototypes over training (mean over seeds) of the frozen groups, as a Markdown table. */
export function curveTable(groups: Group[], setting: Setting, data: DataKind, prototypes?: number): string {
  const gs = groups
    .filter(
      (g) =>
        g.setting === setting &&
        g.data === data &&
        (g.method === 'dino' || g.method === 'sinkhorn') &&
        (prototypes === undefined || g.prototypes === prototypes),
    )
    .sort((a, b) => a.method.localeCompare(b.method) || a.koleoProto - b.koleoProto);
  if (gs.length === 0) return '';
  const steps = [...new Set(gs.flatMap((g) => g.curve.map((c) => c.step)))].sort((a, b) => a - b);
  const head = `| step | ${gs.map((g) => `${METHOD_LABEL[g.method]}${g.koleoProto > 0 ? ' + KP' : ''}`).join(' | ')} |`;
  const lines = [head, `|---|${gs.map(() => '---').join('|')}|`];
  for (const step of steps) {
    lines.push(
      `| ${step} | ${gs
        .map((g) => {
          const c = g.curve.find((p) => p.step === step);
          return c ? `${fmt(c.unique['0.025'], false)} / ${fmt(c.unique['0.1'], false)}` : '–';
        })
        .join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
