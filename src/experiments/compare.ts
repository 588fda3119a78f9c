// The remedies side by side: every trained method of a comparison, and DINO + KoLeo-proto, against
// plain DINO at the same seed, head size and data, as paired differences with 95% intervals, their
// step time and peak memory relative to DINO's, and unique prototypes over ε in both readings of ε.
// Pairing by seed removes what the seed alone does (initialisation and data order are shared within
// a pair).
import type { DataKind, Method, Setting } from './grid.js';
import {
  dataLabel,
  diffCells,
  fmt,
  METHOD_LABEL,
  pairedDiff,
  pairedDiffs,
  stat,
  type Paired,
  type PairedDiff,
} from './aggregate.js';
import { EPS_METRICS, SWEEP_EPS } from '../eval/unique.js';
import type { RunResult } from './run.js';

export interface RemedyComparison {
  setting: Setting;
  prototypes: number;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seeds: number[];
  /** The remedy minus plain DINO. */
  diffs: Paired['diffs'];
  /**
   * Median seconds per training step over DINO's at the same seed. The grid's runs share a machine
   * with whatever else runs, so this is a rough cost, not a benchmark.
   */
  stepTimeRatio: PairedDiff | null;
  /**
   * 'step': from the logged step times (RunResult.stepSeconds). 'train': a pair's results predate
   * them, so the whole row divides training seconds by steps, epoch evaluation included.
   */
  stepTimeFrom: 'step' | 'train';
  /** Peak live bytes while training over DINO's at the same seed; null where a pair predates it. */
  memoryRatio: PairedDiff | null;
}

const cell = (r: RunResult) => `${r.setting}|${r.metrics.prototypes}|${r.data}`;
const isBase = (r: RunResult) => r.method === 'dino' && r.koleoProto === 0;

export function compareToDino(results: RunResult[], setting: Setting = 'full'): RemedyComparison[] {
  const rs = results.filter((r) => r.setting === setting && r.method !== 'init' && r.steps > 0);
  const remedies = new Map<string, RunResult[]>();
  for (const r of rs.filter((r) => !isBase(r))) {
    const k = `${cell(r)}|${r.method}|${r.koleoProto}`;
    if (!remedies.has(k)) remedies.set(k, []);
    remedies.get(k)!.push(r);
  }
  const out: RemedyComparison[] = [];
  for (const group of remedies.values()) {
    const pairs = group
      .map((a) => [a, rs.find((b) => isBase(b) && cell(b) === cell(a) && b.seed === a.seed)] as const)
      .filter((p): p is readonly [RunResult, RunResult] => p[1] !== undefined)
      .sort((x, y) => x[0].seed - y[0].seed);
    if (pairs.length === 0) continue;
    const a0 = pairs[0][0];
    const logged = pairs.every(([a, b]) => a.stepSeconds !== undefined && b.stepSeconds !== undefined);
    const perStep = (r: RunResult) => (logged ? r.stepSeconds! : r.trainSeconds / r.steps);
    out.push({
      setting,
      prototypes: a0.metrics.prototypes,
      data: a0.data,
      method: a0.method,
      koleoProto: a0.koleoProto,
      seeds: pairs.map(([a]) => a.seed),
      diffs: pairedDiffs(pairs),
      stepTimeRatio: pairedDiff(pairs.map(([a, b]) => perStep(a) / perStep(b))),
      stepTimeFrom: logged ? 'step' : 'train',
      memoryRatio: pairedDiff(pairs.map(([a, b]) => (a.peakBytes ?? NaN) / (b.peakBytes ?? NaN))),
    });
  }
  return out.sort(
    (a, b) =>
      a.prototypes - b.prototypes ||
      a.data.localeCompare(b.data) ||
      a.method.localeCompare(b.method) ||
      a.koleoProto - b.koleoProto,
  );
}

const sweptValues = (r: RunResult) =>
  r.sweep
    ? ` (${Object.entries(r.sweep)
        .map(([f, v]) => `${f}=${String(v)}`)
        .join(', ')})`
    : '';
const remedyLabel = (method: Method, kp: number) =>
  method === 'dino' && kp > 0 ? 'DINO + KoLeo-proto' : `${METHOD_LABEL[method]}${kp > 0 ? ' + KoLeo-proto' : ''}`;

const fmtRatio = (t: PairedDiff | null) =>
  t ? `${t.mean.toFixed(2)}${t.ci95 !== null ? ` ± ${t.ci95.toFixed(2)}` : ''}` : '–';

/** Marks a step-time ratio of whole training time (results from before step times were logged). */
const TRAIN_TIME_MARK = '†';

/**
 * The comparison as Markdown: Δ against DINO (mean ± 95% half-interval; accuracies in points), step
 * time and peak memory as ratios to DINO's.
 */
export function remedyTable(rows: RemedyComparison[]): string {
  const lines = [
    '| K | data | remedy | n | Δ unique ε=0.025 | Δ unique ε=0.1 | Δ k-NN | Δ linear | Δ 5-way 5-shot | Δ tail k-NN | step time ÷ DINO | memory ÷ DINO |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const d = r.diffs;
    const time = fmtRatio(r.stepTimeRatio) + (r.stepTimeRatio && r.stepTimeFrom === 'train' ? TRAIN_TIME_MARK : '');
    lines.push(
      `| ${r.prototypes} | ${dataLabel(r.data)} | ${remedyLabel(r.method, r.koleoProto)} | ${r.seeds.length} ` +
        `${diffCells(d)}| ${time} | ${fmtRatio(r.memoryRatio)} |`,
    );
  }
  const notes = [
    'Step time: median seconds per training step; memory: the most bytes the backend held live while training.',
  ];
  if (rows.some((r) => r.stepTimeRatio && r.stepTimeFrom === 'train'))
    notes.push(
      `${TRAIN_TIME_MARK} Training seconds per step, epoch evaluation included: results written before step times were logged.`,
    );
  if (rows.some((r) => !r.memoryRatio)) notes.push('– in memory: results written before peak memory was recorded.');
  return `${lines.join('\n')}\n\n${notes.join('\n')}`;
}

/**
 * Unique prototypes (greedy) over SWEEP_EPS, mean ± std over seeds, one table per reading of ε
 * (Euclidean distance between unit prototypes; 1 − cosine). Runs evaluated before the sweep existed
 * are left out; `--sweep` cells are rows of their own, their values after the method.
 */
export function uniqueSweepTables(results: RunResult[], setting: Setting = 'full'): string {
  const rs = results.filter((r) => r.setting === setting && r.metrics.uniqueSweep);
  const groups = new Map<string, RunResult[]>();
  for (const r of rs) {
    const k = `${r.metrics.prototypes}|${r.data}|${r.method}|${r.koleoProto}|${JSON.stringify(r.sweep ?? null)}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  if (groups.size === 0) return '';
  const order = [...groups.values()].sort(
    (a, b) =>
      a[0].metrics.prototypes - b[0].metrics.prototypes ||
      a[0].data.localeCompare(b[0].data) ||
      a[0].method.localeCompare(b[0].method) ||
      a[0].koleoProto - b[0].koleoProto ||
      JSON.stringify(a[0].sweep ?? '').localeCompare(JSON.stringify(b[0].sweep ?? '')),
  );
  const tables: string[] = [];
  for (const metric of EPS_METRICS) {
    const title = metric === 'euclidean' ? '‖a − b‖ < ε (unit prototypes)' : '1 − cos < ε';
    const lines = [
      `Unique prototypes, ${title}:`,
      '',
      `| K | data | method | n | ${SWEEP_EPS.map((e) => `ε=${e}`).join(' | ')} |`,
      `|---|---|---|---|${SWEEP_EPS.map(() => '---').join('|')}|`,
    ];
    for (const g of order) {
      const r0 = g[0];
      const cells = SWEEP_EPS.map((e) =>
        fmt(stat(g.map((r) => r.metrics.uniqueSweep![metric][String(e)])) ?? undefined, false),
      );
      lines.push(
        `| ${r0.metrics.prototypes} | ${dataLabel(r0.data)} | ${remedyLabel(r0.method, r0.koleoProto)}${sweptValues(r0)} | ${g.length} | ${cells.join(' | ')} |`,
      );
    }
    tables.push(lines.join('\n'));
  }
  return tables.join('\n\n');
}
