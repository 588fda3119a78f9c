// The report's plots, static SVG through the shared chart pieces (chart.ts): every axis from niceTicks,
// every title from labels.ts, and the runs' alarm events marked on the plots over steps.
import type { TopLevelSpec } from 'vega-lite';
import type { RunData } from './runs.js';
import type { RunAnalysis } from './analysis.js';
import { SWEEP_EPS } from './analysis.js';
import {
  CHART_CONFIG,
  CHART_WIDTH,
  CHART_HEIGHT,
  alarmLayers,
  lineChart,
  logAxis,
  niceAxis,
  renderSpec,
  type AlarmMark,
  type Row,
} from './chart.js';
import { alarmLabel, metricLabel } from './labels.js';
import { formatTick, niceTicks, tickFormat } from './ticks.js';
import type { PrototypeSpread } from '../eval/index.js';

export { renderSpec } from './chart.js';

export interface Plot {
  id: string;
  title: string;
  svg: string;
}

function color(runs: RunData[]) {
  return { field: 'run', type: 'nominal' as const, title: 'run', scale: { domain: runs.map((r) => r.name) } };
}

/** Every alarm event of the runs, labelled with the run's name when there is more than one run. */
export function alarmMarks(runs: RunData[]): AlarmMark[] {
  return runs.flatMap((r) =>
    r.alarms.map((a) => ({
      step: a.step,
      cleared: a.cleared,
      label: `${alarmLabel(a.kind)}${a.cleared ? ' cleared' : ''}${runs.length > 1 ? ` (${r.name})` : ''}`,
    })),
  );
}

/** The step axis of a plot: its data's steps and the alarms' steps, from 0. */
function stepAxis(steps: number[], alarms: AlarmMark[]) {
  return {
    field: 'step',
    ...niceAxis([0, ...steps, ...alarms.map((a) => a.step)], metricLabel('step').label, { integer: true }),
  };
}

/** Non-finite losses (a diverged run) are left out of the curve rather than breaking the scale. */
function lossSpec(runs: RunData[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.steps.filter((s) => Number.isFinite(s.loss)).map((s) => ({ run: r.name, step: s.step, loss: s.loss })),
  );
  return stepChart(runs, values, 'loss', metricLabel('loss').label, false);
}

/** One line per run of `field` over training steps, the collapse alarms marked at theirs. */
function stepChart(runs: RunData[], values: Row[], field: string, title: string, points: boolean): TopLevelSpec {
  const alarms = alarmMarks(runs);
  return lineChart({
    values,
    x: stepAxis(
      values.map((v) => v.step as number),
      alarms,
    ),
    y: {
      field,
      ...niceAxis(
        values.map((v) => v[field] as number),
        title,
      ),
    },
    encoding: { color: color(runs) },
    ...(points ? { points } : {}),
    alarms,
  });
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
  const alarms = alarmMarks(runs);
  const x = stepAxis(
    values.map((v) => v.step as number),
    alarms,
  );
  const y = {
    field: 'unique',
    ...niceAxis(
      values.map((v) => v.unique as number),
      'unique prototypes',
      { integer: true, zero: true },
    ),
  };
  return {
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    config: CHART_CONFIG,
    layer: [
      {
        data: { values: values.filter((v) => v.source === 'epoch log') },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: { x, y, color: color(runs), strokeDash: { field: 'eps', type: 'nominal', title: 'ε' } },
      },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { x, y, color: color(runs), shape: { field: 'source', type: 'nominal', title: 'from' } },
      },
      ...alarmLayers(alarms, x),
    ],
  } as TopLevelSpec;
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
  return lineChart({
    values,
    x: { field: 'eps', ...logAxis([...SWEEP_EPS], 'ε (log scale)') },
    y: {
      field: 'unique',
      ...niceAxis(
        values.map((v) => v.unique as number),
        'unique prototypes (greedy)',
        { integer: true, zero: true },
      ),
    },
    encoding: {
      color: color(runs),
      strokeDash: { field: 'metric', type: 'nominal', title: 'ε is' },
      detail: { field: 'metric', type: 'nominal' },
    },
    points: true,
  });
}

/** k-NN top-1 in percent, as the results table prints it. */
function knnSpec(runs: RunData[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.epochs
      .filter((e) => e.knnTop1 !== undefined && Number.isFinite(e.knnTop1))
      .map((e) => ({ run: r.name, step: e.step, knn: 100 * e.knnTop1! })),
  );
  return stepChart(runs, values, 'knn', metricLabel('knn_top1').label, true);
}

/**
 * One panel per run, bars over the cosine bins (only bins from the lowest non-empty one, so mass near
 * 1 is visible). Panels are stacked charts rather than a facet so that each count axis gets its own
 * nice ticks.
 */
function nnSpec(runs: RunData[], analyses: RunAnalysis[]): TopLevelSpec {
  let lo = 1;
  analyses.forEach((a) => {
    if (!a.unique) return;
    const { edges, counts } = a.unique.nearest;
    counts.forEach((c, b) => {
      if (c > 0) lo = Math.min(lo, edges[b]);
    });
  });
  lo = Math.max(-1, Math.floor(lo * 10) / 10);
  const x = { field: 'lo', ...niceAxis([lo, 1], 'cosine to nearest other prototype') };
  const panels = analyses.flatMap((a, i) => {
    if (!a.unique) return [];
    const { edges, counts } = a.unique.nearest;
    const values: Row[] = [];
    counts.forEach((c, b) => {
      if (edges[b + 1] > lo) values.push({ run: runs[i].name, lo: edges[b], hi: edges[b + 1], count: c });
    });
    return [
      {
        title: { text: runs[i].name, anchor: 'start' as const, fontSize: 12 },
        width: CHART_WIDTH,
        height: 110,
        data: { values },
        mark: { type: 'rect' as const, tooltip: false },
        encoding: {
          x,
          x2: { field: 'hi' },
          y: {
            field: 'count',
            ...niceAxis(
              values.map((v) => v.count as number),
              'prototypes',
              { integer: true, zero: true },
            ),
          },
          y2: { datum: 0 },
          color: { ...color(runs), legend: null },
        },
      },
    ];
  });
  return { config: CHART_CONFIG, vconcat: panels } as TopLevelSpec;
}

/** Cells per side of the projection's grid: fine enough to show a tight group as one spot. */
const SPREAD_CELLS = 32;
/** Pairs closer than this are counted in each panel's title: a collapsed group's pairs land there. */
const NEAR_DEGREES = 10;
const SPREAD_SIZE = 240;

/** The largest coordinate of a projection, either axis. */
function extent(p: PrototypeSpread['projection']): number {
  let m = 0;
  for (let k = 0; k < p.x.length; k++) m = Math.max(m, Math.abs(p.x[k]), Math.abs(p.y[k]));
  return m;
}

/**
 * The projection binned on a square grid over [−m, m] (niced) on both axes, so distances read true;
 * the runs share m, so a head spread over many dimensions shows as the small cloud it is next to one
 * whose few groups span the plane.
 */
export function projectionCells(p: PrototypeSpread['projection'], m: number, cells = SPREAD_CELLS) {
  const t = niceTicks(-m, m);
  const [lo, hi] = t.domain,
    w = (hi - lo) / cells;
  const counts = new Map<number, number>();
  const cell = (v: number) => Math.min(cells - 1, Math.max(0, Math.floor((v - lo) / w)));
  for (let k = 0; k < p.x.length; k++) {
    const key = cell(p.x[k]) * cells + cell(p.y[k]);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const values: Row[] = [...counts].map(([key, count]) => {
    const i = Math.floor(key / cells),
      j = key % cells;
    return { x0: lo + i * w, x1: lo + (i + 1) * w, y0: lo + j * w, y1: lo + (j + 1) * w, count };
  });
  return { ticks: t, values };
}

/** Share of the pairs whose angle is below `deg` (a bin edge). */
export function shareBelow(a: PrototypeSpread['angles'], deg: number): number {
  let n = 0;
  a.counts.forEach((c, b) => {
    if (a.edges[b + 1] <= deg + 1e-9) n += c;
  });
  return a.pairs > 0 ? n / a.pairs : 0;
}

/**
 * One row per run: the prototypes binned on their principal plane (colour: prototypes per cell, on
 * a log scale shared by the runs, so a tight group is one dark cell) and the histogram of the
 * angles between every pair of prototypes.
 */
function spreadSpec(runs: RunData[], analyses: RunAnalysis[]): TopLevelSpec {
  const m = Math.max(...analyses.map((a) => (a.spread ? extent(a.spread.projection) : 0)));
  const grids = analyses.map((a) => (a.spread ? projectionCells(a.spread.projection, m) : null));
  const most = Math.max(2, ...grids.flatMap((g) => g?.values.map((v) => v.count as number) ?? []));
  const color = {
    field: 'count',
    type: 'quantitative' as const,
    title: 'prototypes per cell',
    scale: { type: 'log', domain: [1, most], range: ['#9ecae1', '#08306b'] },
  };
  const angleAxis = {
    field: 'lo',
    type: 'quantitative' as const,
    title: 'angle between two prototypes (°)',
    scale: { domain: [0, 180], nice: false, zero: false },
    axis: { values: [0, 30, 60, 90, 120, 150, 180], format: ',.0f' },
  };
  const rows = analyses.flatMap((a, i) => {
    const g = grids[i];
    if (!a.spread || !g) return [];
    const { projection: p, angles } = a.spread;
    const axis = (n: number) => ({
      type: 'quantitative' as const,
      title: `principal axis ${n + 1} (${(100 * p.explained[n]).toFixed(1)}% of variance)`,
      scale: { domain: g.ticks.domain, nice: false, zero: false },
      axis: { values: g.ticks.values, format: tickFormat(g.ticks) },
    });
    const bars: Row[] = Array.from(angles.counts, (c, b) => ({
      lo: angles.edges[b],
      hi: angles.edges[b + 1],
      share: (100 * c) / angles.pairs,
    }));
    return [
      {
        title: { text: runs[i].name, anchor: 'start' as const, fontSize: 12 },
        hconcat: [
          {
            width: SPREAD_SIZE,
            height: SPREAD_SIZE,
            data: { values: g.values },
            mark: { type: 'rect' as const, tooltip: false },
            encoding: {
              x: { field: 'x0', ...axis(0) },
              x2: { field: 'x1' },
              y: { field: 'y0', ...axis(1) },
              y2: { field: 'y1' },
              color,
            },
          },
          {
            title: {
              text: `${(100 * shareBelow(angles, NEAR_DEGREES)).toFixed(1)}% of ${formatTick(angles.pairs, 0)} pairs within ${NEAR_DEGREES}°`,
              fontSize: 11,
              fontWeight: 'normal' as const,
            },
            width: CHART_WIDTH - SPREAD_SIZE,
            height: SPREAD_SIZE,
            data: { values: bars },
            mark: { type: 'rect' as const, tooltip: false, color: '#4c78a8' },
            encoding: {
              x: angleAxis,
              x2: { field: 'hi' },
              y: {
                field: 'share',
                ...niceAxis(
                  bars.map((v) => v.share as number),
                  'share of prototype pairs (%)',
                  { zero: true },
                ),
              },
              y2: { datum: 0 },
            },
          },
        ],
      },
    ];
  });
  return { config: CHART_CONFIG, vconcat: rows } as TopLevelSpec;
}

export interface PlotSet {
  loss: Plot | null;
  unique: Plot | null;
  sweep: Plot | null;
  knn: Plot | null;
  nn: Plot | null;
  spread: Plot | null;
}

/** Each plot, or null where no run has the data for it. */
export async function renderPlots(runs: RunData[], analyses: RunAnalysis[]): Promise<PlotSet> {
  const has = {
    loss: runs.some((r) => r.steps.some((s) => Number.isFinite(s.loss))),
    unique: runs.some((r) => r.epochs.some((e) => Object.keys(e.unique).length > 0)) || analyses.some((a) => a.unique),
    knn: runs.some((r) => r.epochs.some((e) => e.knnTop1 !== undefined && Number.isFinite(e.knnTop1))),
    nn: analyses.some((a) => a.unique),
    sweep: analyses.some((a) => a.unique?.sweep.length),
    spread: analyses.some((a) => a.spread),
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
    spread: has.spread
      ? { id: 'spread', title: 'Prototype spread', svg: await renderSpec(spreadSpec(runs, analyses)) }
      : null,
  };
}
