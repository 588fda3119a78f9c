// The chart pieces the report's plots and the experiments summary share: Vega-Lite compiled to Vega
// and rendered headlessly to static SVG (renderer 'none' needs no canvas or DOM), one look, one way
// of drawing a quantitative axis (niceTicks, so a flat curve still has a readable axis), one line
// chart, and the markers that put collapse alarms on a step axis.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { niceTicks, tickFormat, type TickOptions } from './ticks.js';

export type Row = Record<string, string | number | null>;

export const CHART_CONFIG = {
  font: 'sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelLimit: 240 },
};
export const CHART_WIDTH = 520,
  CHART_HEIGHT = 260;

export async function renderSpec(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A quantitative encoding with its scale and ticks fixed: Vega adds no ticks of its own. */
export interface Axis {
  type: 'quantitative';
  title: string;
  scale: { domain: number[]; nice: false; type?: 'log'; zero?: false };
  axis: { values: number[]; format: string };
}

/** A quantitative encoding's scale and axis: the niceTicks of the values, and nothing else. */
export function niceAxis(values: number[], title: string, opts: TickOptions = {}): Axis {
  const finite = values.filter(Number.isFinite);
  const t = niceTicks(Math.min(...finite), Math.max(...finite), opts);
  return {
    type: 'quantitative',
    title,
    scale: { domain: t.domain, nice: false, zero: false },
    axis: { values: t.values, format: tickFormat(t) },
  };
}

/** A log axis with the given ticks (the data's own thresholds or powers), its domain their span. */
export function logAxis(ticks: number[], title: string): Axis {
  return {
    type: 'quantitative',
    title,
    scale: { type: 'log', domain: [ticks[0], ticks[ticks.length - 1]], nice: false },
    axis: { values: ticks, format: ',~g' },
  };
}

/** An alarm event as a plot marks it: a vertical rule at its step and a short label. */
export interface AlarmMark {
  step: number;
  label: string;
  cleared: boolean;
}

const RAISED = '#c62828',
  CLEARED = '#9e9e9e';

/**
 * Layers for alarm markers on a chart whose x is `step` with encoding `x`. Each label runs down
 * its rule from the top, so labels of nearby steps sit side by side and none runs into the legend.
 */
export function alarmLayers(alarms: AlarmMark[], x: Axis, height = CHART_HEIGHT): object[] {
  const xe = { ...x, field: 'step', axis: null };
  const layers: object[] = [];
  for (const cleared of [false, true]) {
    const color = cleared ? CLEARED : RAISED;
    const values = alarms.filter((a) => a.cleared === cleared);
    if (values.length === 0) continue;
    layers.push(
      {
        data: { values },
        mark: { type: 'rule', color, strokeDash: [5, 3], strokeWidth: 1.5 },
        encoding: { x: xe },
      },
      {
        data: { values },
        mark: {
          type: 'text',
          color,
          angle: 270,
          align: 'right',
          baseline: 'top',
          dy: 3,
          fontSize: 10,
          // Headless Vega estimates text at 0.8 × font size per character, ~1.45× what sans-serif
          // takes: this limit truncates at about the plot's height in real pixels.
          limit: Math.round((height - 8) * 1.45),
        },
        encoding: { x: xe, y: { value: 4 }, text: { field: 'label' } },
      },
    );
  }
  return layers;
}

export interface LineChart {
  values: Row[];
  x: Axis & { field: string };
  y: Axis & { field: string };
  /** Further encodings of the line (color, strokeDash, detail). */
  encoding: Record<string, unknown>;
  points?: boolean;
  alarms?: AlarmMark[];
  width?: number;
  height?: number;
}

/** One line per series, points where they stay readable, alarm markers over it. */
export function lineChart(c: LineChart): TopLevelSpec {
  return {
    width: c.width ?? CHART_WIDTH,
    height: c.height ?? CHART_HEIGHT,
    config: CHART_CONFIG,
    layer: [
      {
        data: { values: c.values },
        mark: { type: 'line', point: c.points ?? c.values.length < 200, strokeWidth: 1.5 },
        encoding: { x: c.x, y: c.y, ...c.encoding },
      },
      ...alarmLayers(c.alarms ?? [], c.x, c.height),
    ],
  } as TopLevelSpec;
}
