// One-at-a-time sweeps of training flags (`protodino experiments --sweep FLAG=v1,v2`): parsing against
// the flag table, the cells' name suffixes, and the table of the swept values beside what they changed
// (unique prototypes in both readings of ε, prototypes used, k-NN).
import { DEFAULTS, parseFlagValue, type TrainConfig } from '../train/config.js';
import { FLAG_NAMES, RUN_ONLY, type FlagName } from '../train/flags.js';
import type { DataKind, Method, Setting } from './grid.js';
import { dataLabel, fmt, METHOD_LABEL, stat, type Stat } from './aggregate.js';
import type { RunResult } from './run.js';

export type SweepValue = TrainConfig[FlagName];

export interface Sweep {
  flag: FlagName;
  values: SweepValue[];
}

/**
 * Flags the grid sets per cell itself (seeds, methods through METHOD_CONFIG, --koleo_proto, the data
 * columns) or that name a run rather than change it: a sweep over them would collide with the grid's own cells.
 */
export const SWEEP_REFUSED: readonly FlagName[] = [
  'preset',
  'seed',
  'prototypes',
  'centering',
  'vmf',
  'ibot',
  'koleo_proto',
  'dataset',
  'long_tail',
  'subset',
  ...RUN_ONLY,
];

/** `FLAG=v1,v2,...` with each value parsed (and its choices checked) by the training flag table. */
export function parseSweep(spec: string): Sweep {
  const m = /^([a-z0-9_]+)=(.+)$/.exec(spec.trim());
  if (!m) throw new Error(`experiments: --sweep takes FLAG=v1,v2,... (a training flag), got '${spec}'`);
  const flag = m[1];
  if (!FLAG_NAMES.includes(flag as FlagName))
    throw new Error(`experiments: --sweep: '${flag}' is not a training flag (see protodino train --help)`);
  if (SWEEP_REFUSED.includes(flag as FlagName))
    throw new Error(
      `experiments: --sweep: --${flag} cannot be swept (the grid sets it per cell, or it does not change results); ` +
        `refused: ${SWEEP_REFUSED.join(', ')}`,
    );
  const raw = m[2]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (raw.length === 0) throw new Error(`experiments: --sweep ${flag}= has no values`);
  const values = raw.map((v) => {
    try {
      return parseFlagValue(flag as FlagName, v);
    } catch (e) {
      throw new Error(`experiments: --sweep ${flag}: ${(e as Error).message}`);
    }
  });
  const seen = new Set(values.map((v) => JSON.stringify(v)));
  if (seen.size !== values.length) throw new Error(`experiments: --sweep ${flag}: a value is given twice`);
  return { flag: flag as FlagName, values };
}

/** A flag as it appears in cell names: without its method's prefix (em_eta → eta for em). */
export function sweepLabel(flag: FlagName, method: Method): string {
  return flag.startsWith(`${method}_`) ? flag.slice(method.length + 1) : flag;
}

/** The part of a cell name that says its swept values, e.g. '-eta0.005'; '' for a cell without one. */
export function sweepSuffix(sweep: Partial<Record<FlagName, SweepValue>> | undefined, method: Method): string {
  if (!sweep) return '';
  return Object.entries(sweep)
    .map(([f, v]) => `-${sweepLabel(f as FlagName, method)}${Array.isArray(v) ? v.join('_') : String(v)}`)
    .join('');
}

/** The value a cell trains with: its config's, or the trainer's default when the config leaves it. */
export function effectiveValue(config: Partial<TrainConfig>, flag: FlagName): SweepValue {
  return (config[flag] ?? DEFAULTS[flag]) as SweepValue;
}

export interface SweepRow {
  setting: Setting;
  data: DataKind;
  method: Method;
  prototypes: number;
  /** The swept flags' values in this row's runs; null for a method no sweep cell ran (a reference). */
  values: Partial<Record<FlagName, SweepValue | null>>;
  seeds: number[];
  runs: string[];
  unique: Record<'euclidean' | 'cosine', Record<'0.025' | '0.1', Stat | null>>;
  usageUsed: Stat | null;
  knnTop1: Stat | null;
}

/**
 * One row per setting, data, head size, method and swept values, over seeds; KoLeo-proto cells are
 * left out (a sweep is read against its own method's plain cells).
 */
export function sweepRows(results: RunResult[], sweeps: readonly Sweep[]): SweepRow[] {
  const flags = sweeps.map((s) => s.flag);
  const swept = new Set(results.filter((r) => r.sweep).map((r) => r.method));
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    if (r.koleoProto > 0 || r.method === 'init') continue;
    const values = flags.map((f) => (swept.has(r.method) ? effectiveValue(r.config, f) : null));
    const key = JSON.stringify([r.setting, r.data, r.metrics.prototypes, r.method, values]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  const uniq = (rs: RunResult[], metric: 'euclidean' | 'cosine', eps: '0.025' | '0.1') =>
    stat(rs.map((r) => r.metrics.uniqueSweep?.[metric]?.[eps] ?? NaN));
  const rows = [...groups.values()].map((rs): SweepRow => {
    rs.sort((a, b) => a.seed - b.seed);
    const r0 = rs[0];
    return {
      setting: r0.setting,
      data: r0.data,
      method: r0.method,
      prototypes: r0.metrics.prototypes,
      values: Object.fromEntries(flags.map((f) => [f, swept.has(r0.method) ? effectiveValue(r0.config, f) : null])),
      seeds: rs.map((r) => r.seed),
      runs: rs.map((r) => r.name),
      unique: {
        euclidean: { '0.025': uniq(rs, 'euclidean', '0.025'), '0.1': uniq(rs, 'euclidean', '0.1') },
        cosine: { '0.025': uniq(rs, 'cosine', '0.025'), '0.1': uniq(rs, 'cosine', '0.1') },
      },
      usageUsed: stat(rs.map((r) => r.metrics.usageUsed)),
      knnTop1: stat(rs.map((r) => r.metrics.knnTop1)),
    };
  });
  const cmp = (a: SweepValue | null | undefined, b: SweepValue | null | undefined) =>
    typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
  return rows.sort(
    (a, b) =>
      a.setting.localeCompare(b.setting) ||
      a.prototypes - b.prototypes ||
      a.data.localeCompare(b.data) ||
      a.method.localeCompare(b.method) ||
      flags.reduce((c, f) => c || cmp(a.values[f], b.values[f]), 0),
  );
}

/** The sweep as Markdown: the swept values, then unique prototypes, prototypes used and k-NN (mean ± std over seeds). */
export function sweepTable(rows: SweepRow[], sweeps: readonly Sweep[]): string {
  const flags = sweeps.map((s) => s.flag);
  const show = (v: SweepValue | null | undefined) => (v === null || v === undefined ? '–' : String(v));
  const u = (s: Stat | null) => fmt(s ?? undefined, false);
  const lines = [
    `| setting | data | method | ${flags.map((f) => `--${f}`).join(' | ')} | n | unique ‖Δ‖<0.025 | unique ‖Δ‖<0.1 | unique 1−cos<0.025 | unique 1−cos<0.1 | prototypes used | k-NN top-1 % |`,
    `|---|---|---|${flags.map(() => '---').join('|')}|---|---|---|---|---|---|---|`,
  ];
  for (const r of rows) {
    const K = r.prototypes;
    lines.push(
      `| ${r.setting} | ${dataLabel(r.data)} | ${METHOD_LABEL[r.method]} | ${flags.map((f) => show(r.values[f])).join(' | ')} | ${r.seeds.length} ` +
        `| ${u(r.unique.euclidean['0.025'])} / ${K} | ${u(r.unique.euclidean['0.1'])} / ${K} ` +
        `| ${u(r.unique.cosine['0.025'])} / ${K} | ${u(r.unique.cosine['0.1'])} / ${K} ` +
        `| ${u(r.usageUsed)} | ${fmt(r.knnTop1 ?? undefined, true)} |`,
    );
  }
  return lines.join('\n');
}
