// The whole grid in one process: every run in order (skipping finished ones and those another
// process holds), results rewritten after each.
import { mkdirSync } from 'node:fs';
import { createBackend } from '../backend/index.js';

import {
  experimentGrid,
  fullEvalSizes,
  quickEvalSizes,
  type GridOptions,
  type Setting,
  type Tier,
  type ExperimentRun,
} from './grid.js';
import { runExperiment, type RunOutcome, type RunResult } from './run.js';
import { markdownTable, type Group } from './aggregate.js';
import { collectResults, writeResults } from './results.js';

export interface ExperimentsOptions extends GridOptions {
  out: string;
  backend: 'wasm' | 'webgpu' | 'auto';
  threads?: number;
  settings: Setting[];
  tiers: Tier[];
  /** Only aggregate the runs already finished. */
  aggregateOnly: boolean;
  print?: (line: string) => void;
}

export interface ExperimentsSummary {
  grid: ExperimentRun[];
  outcomes: RunOutcome[];
  /** Every finished run of the grid, read once at the end. */
  results: RunResult[];
  groups: Group[];
  table: string;
  seconds: number;
}

/** A trained run's cost as the progress line shows it; empty for results written without it. */
export function costLine(r: RunResult): string {
  const parts = [
    ...(r.stepSeconds !== undefined ? [`${(1000 * r.stepSeconds).toFixed(1)} ms/step`] : []),
    ...(r.peakBytes !== undefined ? [`peak ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB live`] : []),
  ];
  return parts.length ? `; ${parts.join(', ')}` : '';
}

export async function runExperiments(opts: ExperimentsOptions): Promise<ExperimentsSummary> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const grid = experimentGrid(opts).filter((r) => opts.settings.includes(r.setting) && opts.tiers.includes(r.tier));
  mkdirSync(opts.out, { recursive: true });
  const outcomes: RunOutcome[] = [];
  if (!opts.aggregateOnly) {
    const be = await createBackend({ kind: opts.backend, ...(opts.threads ? { threads: opts.threads } : {}) });
    print(`protodino experiments: ${grid.length} runs into ${opts.out} on ${be.description}`);
    try {
      for (const [i, run] of grid.entries()) {
        const t = performance.now();
        const o = await runExperiment(
          run,
          opts.out,
          be,
          opts.quick ? quickEvalSizes() : fullEvalSizes(run.setting),
          print,
        );
        if (!o) {
          print(`[${i + 1}/${grid.length}] ${run.name}: running in another process, skipped`);
          continue;
        }
        outcomes.push(o);
        const m = o.result.metrics;
        print(
          `[${i + 1}/${grid.length}] ${run.name}: ${o.status}${o.status === 'done' ? '' : ` in ${((performance.now() - t) / 1000).toFixed(0)} s`}; ` +
            `unique ${m.unique['0.025']} / ${m.unique['0.1']} of ${m.prototypes}, k-NN ${(100 * m.knnTop1).toFixed(1)}%, linear ${(100 * m.linearTop1).toFixed(1)}%` +
            `${m.knnTail !== undefined ? `, tail k-NN ${(100 * m.knnTail).toFixed(1)}%` : ''}${costLine(o.result)}`,
        );
        // Results after every run, so an interrupted grid still leaves a current table.
        writeResults(opts.out, opts, grid, collectResults(opts.out, grid));
      }
    } finally {
      be.destroy();
    }
  }
  const results = collectResults(opts.out, grid);
  const groups = writeResults(opts.out, opts, grid, results);
  const table = markdownTable(groups);
  return { grid, outcomes, results, groups, table, seconds: (performance.now() - t0) / 1000 };
}
