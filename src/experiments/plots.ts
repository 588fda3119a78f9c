// Summary plots of the experiments grid (mean ± std over seeds), rendered with the report's Vega-Lite
// chart pieces (src/report/chart.ts: the same look, the same niceTicks axes) to static SVG: unique
// prototypes over training in the frozen setting, and the accuracy of DINO with and without
// KoLeo-proto in every setting.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { CHART_CONFIG, logAxis, niceAxis, renderSpec } from '../report/chart.js';
import { metricLabel } from '../report/labels.js';
import type { Group } from './aggregate.js';

type Row = Record<string, string | number>;

const CONFIG = { ...CHART_CONFIG, legend: { labelLimit: 320 } };
const LABEL: Record<string, string> = {
  dino: 'centering',
  sinkhorn: 'Sinkhorn-Knopp',
  memax: 'me-max',
  vmf: 'DINO-vMF',
  ibot: 'iBOT',
};

function label(g: Group): string {
  return `${LABEL[g.method]}${g.koleoProto > 0 ? ` + KoLeo-proto ${g.koleoProto}` : ''}`;
}

const dataTitle = (g: Group) => (g.data === 'longtail' ? 'long-tailed (ratio 100)' : 'balanced');

/** Frozen setting, centering and Sinkhorn-Knopp ± KoLeo-proto: unique prototypes per evaluation step. */
export function uniqueOverTrainingSpec(groups: Group[]): TopLevelSpec | null {
  const gs = groups.filter((g) => g.setting === 'frozen' && (g.method === 'dino' || g.method === 'sinkhorn'));
  const values: Row[] = [];
  for (const g of gs) {
    for (const c of g.curve) {
      for (const [eps, s] of Object.entries(c.unique)) {
        values.push({
          run: label(g),
          data: dataTitle(g),
          eps: `ε = ${eps}`,
          step: c.step,
          mean: s.mean,
          // A log axis: the band is clamped at one prototype.
          lo: Math.max(1, s.mean - s.std),
          hi: s.mean + s.std,
        });
      }
    }
  }
  if (values.length === 0) return null;
  const color = { field: 'run', type: 'nominal' as const, title: null, sort: [...new Set(gs.map(label))] };
  const x = {
    field: 'step',
    ...niceAxis(
      values.map((v) => v.step as number),
      metricLabel('step').label,
      { integer: true, zero: true },
    ),
  };
  // Counts span 1 to K = 1024: a log axis with a tick at each power of 4.
  const y = logAxis([1, 4, 16, 64, 256, 1024], 'unique prototypes (log scale)');
  return {
    config: CONFIG,
    data: { values },
    facet: {
      column: { field: 'data', type: 'nominal', title: null, sort: ['balanced'] },
      row: { field: 'eps', type: 'nominal', title: null },
    },
    spec: {
      width: 300,
      height: 180,
      layer: [
        {
          mark: { type: 'area', opacity: 0.15 },
          encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
        },
        {
          mark: { type: 'line', point: true, strokeWidth: 1.5 },
          encoding: { x, y: { ...y, field: 'mean' }, color },
        },
      ],
    },
  };
}

const METRICS: [key: keyof Group['metrics'], title: string][] = [
  ['knnTop1', 'k-NN top-1'],
  ['linearTop1', 'linear top-1'],
  ['fewShot5way5shot', '5-way 5-shot'],
  ['knnTail', 'tail k-NN'],
  ['linearTail', 'tail linear'],
];

/**
 * Full training, DINO (centering) with and without KoLeo-proto next to the network at random
 * initialisation: accuracy in % per data, mean ± std. The frozen setting is left out: its backbone
 * is the same fixed PCA with or without KoLeo-proto.
 */
export function accuracySpec(groups: Group[]): TopLevelSpec | null {
  const values: Row[] = [];
  for (const g of groups.filter((x) => (x.method === 'dino' || x.method === 'init') && x.setting === 'full')) {
    for (const [key, title] of METRICS) {
      const s = g.metrics[key];
      if (!s) continue;
      values.push({
        panel: `full training, K = ${g.prototypes}, ${dataTitle(g)}`,
        metric: title,
        kp: g.method === 'init' ? 'random init' : g.koleoProto > 0 ? `KoLeo-proto ${g.koleoProto}` : 'no KoLeo-proto',
        mean: 100 * s.mean,
        lo: 100 * (s.mean - s.std),
        hi: 100 * (s.mean + s.std),
      });
    }
  }
  if (values.length === 0) return null;
  const x = {
    field: 'metric',
    type: 'nominal' as const,
    title: null,
    sort: METRICS.map((m) => m[1]),
    axis: { labelAngle: 0 },
  };
  const KP_ORDER = ['random init', 'no KoLeo-proto'];
  const xOffset = { field: 'kp', type: 'nominal' as const, sort: KP_ORDER };
  return {
    config: CONFIG,
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null },
    columns: 2,
    spec: {
      width: 380,
      height: 170,
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x,
            xOffset,
            y: { field: 'mean', ...niceAxis([0, 100], 'accuracy (%)') },
            color: { field: 'kp', type: 'nominal', title: null, sort: KP_ORDER },
          },
        },
        {
          mark: { type: 'rule', color: 'black' },
          encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
        },
      ],
    },
  };
}

/** Writes experiments-unique.svg and experiments-accuracy.svg into `dir`; returns the paths written. */
export async function writeExperimentPlots(groups: Group[], dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const [name, spec] of [
    ['unique', uniqueOverTrainingSpec(groups)],
    ['accuracy', accuracySpec(groups)],
  ] as const) {
    if (!spec) continue;
    const path = join(dir, `experiments-${name}.svg`);
    writeFileSync(path, `<?xml version="1.0" encoding="UTF-8"?>\n${await renderSpec(spec)}\n`);
    out.push(path);
  }
  return out;
}
