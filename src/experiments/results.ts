// results.json: every finished run of the grid, their aggregation over seeds, KoLeo-proto's paired
// differences and each remedy against plain DINO, rewritten after every run.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { KOLEO_PROTO, LONG_TAIL_IMAGES, LONG_TAIL_RATIO, type ExperimentRun, type GridOptions } from './grid.js';
import type { RunResult } from './run.js';
import { aggregate, pairedDifferences, type Group } from './aggregate.js';
import { compareToDino } from './compare.js';
import { sweepRows } from './sweep.js';

export function collectResults(outDir: string, runs: ExperimentRun[]): RunResult[] {
  const out: RunResult[] = [];
  for (const r of runs) {
    const p = join(outDir, r.name, 'result.json');
    if (existsSync(p)) out.push(JSON.parse(readFileSync(p, 'utf8')) as RunResult);
  }
  return out;
}

export function writeResults(outDir: string, opts: GridOptions, grid: ExperimentRun[], results: RunResult[]): Group[] {
  const groups = aggregate(results);
  const plain = results.filter((r) => !r.sweep);
  const missing = grid.filter((r) => !results.some((x) => x.name === r.name)).map((r) => r.name);
  writeFileSync(
    join(outDir, 'results.json'),
    JSON.stringify(
      {
        written: new Date().toISOString(),
        grid: { ...opts, longTailRatio: LONG_TAIL_RATIO, koleoProto: KOLEO_PROTO, balancedImages: LONG_TAIL_IMAGES },
        groups,
        // Sweep cells differ from their setting's cell in a swept flag: they pair with nothing.
        paired: pairedDifferences(plain),
        remedies: { frozen: compareToDino(plain, 'frozen'), full: compareToDino(plain, 'full') },
        ...(opts.sweeps?.length ? { sweep: sweepRows(results, opts.sweeps) } : {}),
        missing,
        runs: results,
      },
      null,
      1,
    ),
  );
  return groups;
}
