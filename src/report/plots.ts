// Plots as static SVG: Vega-Lite specs compiled to Vega and rendered headlessly (renderer 'none'
// needs no canvas or DOM), so the report is one file with no script and no network.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { RunData } from './runs.js';
import type { RunAnalysis } from './analysis.js';

export interface Plot {
  id: string;
  title: string;
  svg: string;
}

type Row = Record<string, string | number | null>;

const WIDTH = 520,
  HEIGHT = 260;
const CONFIG = { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelLimit: 240 } };

export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function color(runs: RunData[]) {
  return { field: 'run', type: 'nominal' as const, title: 'run', scale: { domain: runs.map((r) => r.name) } };
}

/** Non-finite losses (a diverged run) are left out of the curve rather than breaking the scale. */
function lossSpec(runs: RunData[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.steps.filter((s) => Number.isFinite(s.loss)).map((s) => ({ run: r.name, step: s.step, loss: s.loss })),
  );
  return {
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values },
    mark: { type: 'line', point: values.length < 200, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'DINO loss', scale: { zero: false } },
      color: color(runs),
    },
  };
}

/** Epoch records' counts, plus the final checkpoint's count at its step (marked 'checkpoint'). */
function uniqueSpec(runs: RunData[], analyses: RunAnalysis[]): TopLevelSpec {
  const values: Row[] = [];
  runs.forEach((r, i) => {
    for (const e of r.epochs)
      for (const [eps, n] of Object.entries(e.unique))
        values.push({ run: r.name, step: e.step, eps: `ε ${eps}`, unique: n, source: 'epoch log' });
    const a = analyses[i];
    if (a.unique)
      for (const u of a.unique.perEps)
        values.push({ run: r.name, step: a.step, eps: `ε ${u.eps}`, unique: u.unique, source: 'final checkpoint' });
  });
  return {
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1.5 },
        transform: [{ filter: "datum.source === 'epoch log'" }],
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'unique', type: 'quantitative' },
          color: color(runs),
          strokeDash: { field: 'eps', type: 'nominal', title: 'ε' },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          // From 0, so a report of final checkpoints alone (one step) still has a readable axis.
          x: { field: 'step', type: 'quantitative', title: 'step', scale: { domainMin: 0 }, axis: { format: 'd' } },
          y: { field: 'unique', type: 'quantitative', title: 'unique prototypes' },
          color: color(runs),
          shape: { field: 'source', type: 'nominal', title: 'from' },
        },
      },
    ],
  };
}

/** Final-checkpoint unique counts against ε, one line per run and convention (dash = convention). */
function sweepSpec(runs: RunData[], analyses: RunAnalysis[]): TopLevelSpec {
  const values: Row[] = [];
  runs.forEach((r, i) => {
    for (const p of analyses[i].unique?.sweep ?? [])
      values.push({
        run: r.name,
        eps: p.eps,
        unique: p.unique,
        metric: p.metric === 'cosine' ? '1 − cos' : 'Euclidean',
      });
  });
  return {
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'eps', type: 'quantitative', title: 'ε', scale: { type: 'log' } },
      y: { field: 'unique', type: 'quantitative', title: 'unique prototypes (greedy)', scale: { zero: true } },
      color: color(runs),
      strokeDash: { field: 'metric', type: 'nominal', title: 'ε is' },
      detail: { field: 'metric', type: 'nominal' },
    },
  };
}

function knnSpec(runs: RunData[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.epochs
      .filter((e) => e.knnTop1 !== undefined && Number.isFinite(e.knnTop1))
      .map((e) => ({ run: r.name, step: e.step, knn: e.knnTop1! })),
  );
  return {
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'knn', type: 'quantitative', title: 'k-NN top-1', scale: { zero: false } },
      color: color(runs),
    },
  };
}

/** One panel per run, bars over the cosine bins (only bins from the lowest non-empty one, so mass near 1 is visible). */
function nnSpec(runs: RunData[], analyses: RunAnalysis[]): TopLevelSpec {
  const values: Row[] = [];
  let lo = 1;
  analyses.forEach((a) => {
    if (!a.unique) return;
    const { edges, counts } = a.unique.nearest;
    counts.forEach((c, b) => {
      if (c > 0) lo = Math.min(lo, edges[b]);
    });
  });
  lo = Math.max(-1, Math.floor(lo * 10) / 10);
  analyses.forEach((a, i) => {
    if (!a.unique) return;
    const { edges, counts } = a.unique.nearest;
    counts.forEach((c, b) => {
      if (edges[b + 1] > lo) values.push({ run: runs[i].name, lo: edges[b], hi: edges[b + 1], count: c });
    });
  });
  return {
    config: CONFIG,
    data: { values },
    facet: { row: { field: 'run', type: 'nominal', title: null, sort: runs.map((r) => r.name) } },
    spec: {
      width: WIDTH,
      height: 110,
      mark: { type: 'rect', tooltip: false },
      encoding: {
        x: {
          field: 'lo',
          type: 'quantitative',
          title: 'cosine to nearest other prototype',
          scale: { domain: [lo, 1] },
        },
        x2: { field: 'hi' },
        y: { field: 'count', type: 'quantitative', title: 'prototypes' },
        y2: { datum: 0 },
        color: color(runs),
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

export interface PlotSet {
  loss: Plot | null;
  unique: Plot | null;
  sweep: Plot | null;
  knn: Plot | null;
  nn: Plot | null;
}

/** Each plot, or null where no run has the data for it. */
export async function renderPlots(runs: RunData[], analyses: RunAnalysis[]): Promise<PlotSet> {
  const has = {
    loss: runs.some((r) => r.steps.some((s) => Number.isFinite(s.loss))),
    unique: runs.some((r) => r.epochs.some((e) => Object.keys(e.unique).length > 0)) || analyses.some((a) => a.unique),
    knn: runs.some((r) => r.epochs.some((e) => e.knnTop1 !== undefined && Number.isFinite(e.knnTop1))),
    nn: analyses.some((a) => a.unique),
    sweep: analyses.some((a) => a.unique?.sweep.length),
  };
  return {
    loss: has.loss ? { id: 'loss', title: 'Training loss', svg: await renderSpec(lossSpec(runs)) } : null,
    unique: has.unique
      ? { id: 'unique', title: 'Unique prototypes', svg: await renderSpec(uniqueSpec(runs, analyses)) }
      : null,
    sweep: has.sweep
      ? { id: 'sweep', title: 'Unique prototypes against ε', svg: await renderSpec(sweepSpec(runs, analyses)) }
      : null,
    knn: has.knn ? { id: 'knn', title: 'k-NN top-1', svg: await renderSpec(knnSpec(runs)) } : null,
    nn: has.nn
      ? { id: 'nn', title: 'Nearest-neighbour similarity', svg: await renderSpec(nnSpec(runs, analyses)) }
      : null,
  };
}
