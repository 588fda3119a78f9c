// What bench/index.ts needs from a suite, and helpers suites share: quick mode, benny case options,
// markdown tables.
import type { Options, Summary } from 'benny/lib/internal/common-types.js';

/** A suite's result: its benny summaries, plus (optionally) its own table and JSON details. */
export interface SuiteReport {
  summaries: Summary[];
  /** Markdown printed instead of the generic per-case table. */
  table?: string;
  /** Extra structured results written next to the summaries. */
  details?: unknown;
}

export type Suite = () => Promise<Summary[] | SuiteReport>;

/** Quick mode (`--quick` or PROTODINO_BENCH_QUICK=1): fewer, shorter samples for a smoke run. */
export function quickMode(): boolean {
  return process.env.PROTODINO_BENCH_QUICK === '1';
}

/** Profile mode (`--profile` or PROTODINO_BENCH_PROFILE=1): suites that support it add per-kernel-family profiles. */
export function profileMode(): boolean {
  return process.env.PROTODINO_BENCH_PROFILE === '1';
}

/** benny case options for the current mode. */
export function caseOptions(): Options {
  return quickMode() ? { minSamples: 3, minTime: 0.05, maxTime: 0.5 } : { minSamples: 5, minTime: 0.25, maxTime: 1 };
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The generic table: one row per case of every summary. */
export function summaryTable(summaries: Summary[]): string {
  const rows = summaries.flatMap((s) =>
    s.results.map((r) => [
      s.name,
      r.name,
      r.ops >= 100 ? Math.round(r.ops) : r.ops.toPrecision(3),
      (1000 / r.ops).toPrecision(3),
      `±${r.margin}%`,
    ]),
  );
  return markdownTable(['suite', 'case', 'ops/s', 'ms/op', 'margin'], rows);
}
