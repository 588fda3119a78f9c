// protodino report: compares run directories side by side in one self-contained HTML file, with each
// plot also written as an SVG file next to it (<out without .html>.<plot>.svg).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { createBackend } from '../backend/index.js';
import { loadRuns, type RunData } from './runs.js';
import { analyzeRun, type AnalysisOptions, type RunAnalysis } from './analysis.js';
import { renderPlots } from './plots.js';
import { renderHtml } from './html.js';

export {
  loadRun,
  loadRuns,
  parseEpochRecord,
  configDifferences,
  activeAlarms,
  type RunData,
  type StepPoint,
  type EpochPoint,
  type AlarmPoint,
} from './runs.js';
export type { RunAnalysis, AnalysisOptions } from './analysis.js';
export { renderSpec } from './plots.js';

export interface ReportOptions extends AnalysisOptions {
  out: string;
  /** Runs on this backend (default: a new wasm backend, destroyed at the end). */
  backend?: Backend;
}

export interface ReportResult {
  html: string;
  svgs: string[];
  runs: RunData[];
  analyses: RunAnalysis[];
}

export async function generateReport(dirs: string[], opts: ReportOptions): Promise<ReportResult> {
  if (dirs.length === 0) throw new Error('report: give at least one run directory');
  const runs = loadRuns(dirs);
  const be = opts.backend ?? (await createBackend({ kind: 'wasm' }));
  let analyses: RunAnalysis[];
  try {
    analyses = [];
    for (const r of runs) analyses.push(await analyzeRun(r, be, opts));
  } finally {
    if (!opts.backend) be.destroy();
  }
  const plots = await renderPlots(runs, analyses);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, renderHtml(runs, analyses, plots));
  const base = opts.out.replace(/\.html?$/i, '');
  const svgs: string[] = [];
  for (const p of Object.values(plots)) {
    if (!p) continue;
    const path = `${base}.${p.id}.svg`;
    writeFileSync(path, `<?xml version="1.0" encoding="UTF-8"?>\n${p.svg}\n`);
    svgs.push(path);
  }
  return { html: opts.out, svgs, runs, analyses };
}
