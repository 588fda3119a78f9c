// The report page: one self-contained HTML file (inline CSS, inline SVG plots, images as data URIs;
// no script and no external reference, so it opens offline and archives as a single file).
import type { RunData } from './runs.js';
import { activeAlarms, configDifferences } from './runs.js';
import type { RunAnalysis } from './analysis.js';
import type { GalleryGroup } from './gallery.js';
import type { Plot, PlotSet } from './plots.js';
import { alarmLabel, flagLabel, formatMetric, formatSetting, formatValue, metricLabel } from './labels.js';

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:24px auto;padding:0 24px;color:#222;max-width:1100px}
h1{margin-bottom:4px} .sub{color:#666;margin-top:0;overflow-wrap:anywhere}
section{margin:28px 0} h2{border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;max-width:100%;margin:8px 0 4px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4;font-weight:600;max-width:9em} td{font-variant-numeric:tabular-nums}
td.l,th.l{text-align:left} td.wide{max-width:36em} th.group{text-align:center}
td.wide,code{overflow-wrap:anywhere} .note{color:#777;font-style:italic}
.plot svg{max-width:100%;height:auto}
.run{margin:16px 0 28px} .group{border:1px solid #e3e3e3;border-radius:6px;padding:8px 10px;margin:8px 0}
.group.collapsed{border-color:#e0a060;background:#fffaf3}
.proto{display:flex;align-items:center;gap:10px;margin:4px 0} .proto .id{flex:0 0 190px;font-size:12px;color:#444}
.thumbs{display:flex;flex-wrap:wrap;gap:3px} .thumbs img{width:56px;height:56px;image-rendering:pixelated;border:1px solid #ccc}
code{background:#f4f4f4;padding:0 3px}
.alarm{display:inline-block;background:#c62828;color:#fff;border-radius:3px;padding:0 5px;margin:2px 0 0 6px;font-size:11px;font-weight:600}
.alarm.cleared{background:#e0e0e0;color:#555;font-weight:400}
tr.alarmed td:first-child{border-left:4px solid #c62828}
`;

/**
 * Value columns per table: more are split into further tables of even size, each repeating the run
 * column. Eight columns of at most 9em (the header's wrap width) and a run name fit the 1100 px page.
 */
const MAX_VALUE_COLUMNS = 8;

interface Column {
  head: string;
  /** A header spanning several columns (one per ε), above their own heads. */
  group?: string;
  cells: string[];
}

/** Rows of runs under grouped, wrapping headers; the first column is the run. */
function table(id: string, runCells: string[], cols: Column[], rowClass: (i: number) => string = () => ''): string {
  const grouped = cols.some((c) => c.group);
  let top = `<th class="l"${grouped ? ' rowspan="2"' : ''}>run</th>`,
    second = '';
  for (let i = 0; i < cols.length;) {
    const g = cols[i].group;
    let n = 1;
    while (g && cols[i + n]?.group === g) n++;
    if (g) {
      top += `<th class="group" colspan="${n}">${esc(g)}</th>`;
      for (let j = i; j < i + n; j++) second += `<th>${esc(cols[j].head)}</th>`;
    } else top += `<th${grouped ? ' rowspan="2"' : ''}>${esc(cols[i].head)}</th>`;
    i += n;
  }
  const head = `<tr>${top}</tr>${grouped ? `<tr>${second}</tr>` : ''}`;
  const body = runCells.map(
    (run, r) => `<tr${rowClass(r)}>${run}${cols.map((c) => `<td>${c.cells[r]}</td>`).join('')}</tr>`,
  );
  return `<table id="${id}"><thead>${head}</thead>\n<tbody>${body.join('\n')}</tbody></table>`;
}

/** The same rows split into tables of at most MAX_VALUE_COLUMNS columns, so none is wider than the page. */
function splitTables(id: string, runCells: string[], cols: Column[]): string {
  const parts = Math.ceil(cols.length / MAX_VALUE_COLUMNS),
    per = Math.ceil(cols.length / parts);
  const out: string[] = [];
  for (let p = 0; p < parts; p++)
    out.push(table(p === 0 ? id : `${id}-${p + 1}`, runCells, cols.slice(p * per, (p + 1) * per)));
  return out.join('\n');
}

function resultsTable(runs: RunData[], an: RunAnalysis[]): string {
  const epsCols = [...new Set(an.flatMap((a) => a.unique?.perEps.map((p) => p.eps) ?? []))].sort((a, b) => a - b);
  const metric = an.find((a) => a.unique)?.unique?.metric ?? 'euclidean';
  const epsHead = (e: number) => `ε ${e}${metric === 'cosine' ? ' (1 − cos)' : ''}`;
  const per = (i: number, e: number) => an[i].unique?.perEps.find((p) => p.eps === e);
  const knn = (r: RunData) => [...r.epochs].reverse().find((e) => e.knnTop1 !== undefined)?.knnTop1;
  const col = (key: string, value: (r: RunData, i: number) => number | undefined, head = metricLabel(key).label) => ({
    head,
    cells: runs.map((r, i) => formatMetric(key, value(r, i))),
  });
  const cols: Column[] = [
    col('steps', (_, i) => an[i].step),
    col('epochs', (r) => r.epochs.at(-1)?.epoch ?? r.checkpoint?.meta.epoch),
    col('final_loss', (r) => r.steps.at(-1)?.loss),
    col('prototypes', (r, i) => an[i].unique?.prototypes ?? r.epochs.at(-1)?.extra.prototypes),
    ...epsCols.map((e) => ({
      group: 'unique prototypes',
      head: epsHead(e),
      cells: runs.map((_, i) => formatValue(per(i, e)?.unique, 'count')),
    })),
    ...epsCols.map((e) => ({
      group: 'largest group (prototypes)',
      head: epsHead(e),
      cells: runs.map((_, i) => formatValue(per(i, e)?.largestGroup, 'count')),
    })),
    col('knn_top1', (r) => knn(r)),
  ];
  const runCells = runs.map(
    (r) =>
      `<td class="l">${esc(r.name)}${r.truncated ? ' <span class="note">(log cut off)</span>' : ''}${alarmBadges(r)}</td>`,
  );
  const notes = runs.flatMap((r, i) => an[i].notes.map((n) => `<li>${esc(r.name)}: ${esc(n)}</li>`));
  const epsNote = `<p class="note" id="eps-metric">ε metric: ${metric === 'cosine' ? 'cosine (ε = 1 − cos between prototypes)' : 'Euclidean (ε = distance between unit prototypes, cos > 1 − ε²/2)'}.</p>`;
  return `${epsNote}${table('results-table', runCells, cols, (i) => (activeAlarms(runs[i]).length ? ' class="alarmed"' : ''))}
<p class="note">Unique prototypes: greedy rule on the final checkpoint's teacher head; k-NN: the last epoch record of the log.</p>
${notes.length ? `<ul class="note">${notes.join('')}</ul>` : ''}${detailsTables(runs)}${settingsTable(runs)}`;
}

/** Epoch-record keys the results table already shows. */
const IN_RESULTS = new Set(['prototypes']);

/** The other numbers of each run's last epoch record (usage, evaluation sizes and time…). */
function detailsTables(runs: RunData[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.epochs.at(-1)?.extra ?? {})))]
    .filter((k) => !IN_RESULTS.has(k))
    .sort((a, b) => metricLabel(a).label.localeCompare(metricLabel(b).label) || a.localeCompare(b));
  if (keys.length === 0) return '';
  const cols = keys.map((k) => ({
    head: metricLabel(k).label,
    cells: runs.map((r) => formatMetric(k, r.epochs.at(-1)?.extra[k])),
  }));
  return `<h3>Last epoch's diagnostics</h3>${splitTables(
    'details-table',
    runs.map((r) => `<td class="l">${esc(r.name)}</td>`),
    cols,
  )}`;
}

/** The settings in which the runs differ, one wrapping cell per run (the flag in each tooltip). */
function settingsTable(runs: RunData[]): string {
  const diffs = configDifferences(runs);
  if (runs.length < 2) return '';
  const rows = runs.map((r) => {
    const parts = diffs.map(
      (k) => `<span title="--${esc(k)}">${esc(flagLabel(k))} <b>${esc(formatSetting(r.config[k]))}</b></span>`,
    );
    return `<tr><td class="l">${esc(r.name)}</td><td class="l wide">${parts.join('; ') || '<span class="note">none</span>'}</td></tr>`;
  });
  return `<h3>Settings that differ</h3><table id="settings-table"><thead><tr><th class="l">run</th><th class="l">settings</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

/** One badge per alarm kind the run raised: red while it stands at the end, grey once cleared. */
function alarmBadges(r: RunData): string {
  const active = new Set(activeAlarms(r));
  const kinds = [...new Set(r.alarms.filter((a) => !a.cleared).map((a) => a.kind))];
  return kinds
    .map((k) => {
      const first = r.alarms.find((a) => a.kind === k && !a.cleared)!;
      return ` <span class="alarm${active.has(k) ? '' : ' cleared'}" title="${esc(first.message)}">ALARM: ${esc(alarmLabel(k))} (step ${first.step})${active.has(k) ? '' : ', cleared'}</span>`;
    })
    .join('');
}

function alarmSection(runs: RunData[]): string {
  const rows = runs.flatMap((r) =>
    r.alarms.map(
      (a) =>
        `<tr${a.cleared ? '' : ' class="alarmed"'}><td class="l">${esc(r.name)}</td><td>${a.step}</td><td>${a.epoch}</td>` +
        `<td class="l">${a.cleared ? 'cleared' : '<b>raised</b>'}</td><td class="l">${esc(alarmLabel(a.kind))}</td><td class="l wide">${esc(a.message)}</td></tr>`,
    ),
  );
  return `<section id="alarms"><h2>Collapse alarms</h2>
${
  rows.length
    ? `<table id="alarms-table"><thead><tr><th class="l">run</th><th>step</th><th>epoch</th><th class="l">event</th><th class="l">kind</th><th class="l">message</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p class="note">Each event is also marked on the plots over steps: a red dashed line where an alarm was raised, a grey one where it cleared.</p>`
    : '<p class="note">No collapse alarm in these logs (uniform: loss at ln K; usage: the teacher\'s argmax on too few prototypes; partial: unique prototypes below half their highest).</p>'
}</section>`;
}

function plotSection(id: string, title: string, plot: Plot | null, caption: string, missing: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>
${plot ? `<div class="plot">${plot.svg}</div><p class="note">${esc(caption)}</p>` : `<p class="note">${esc(missing)}</p>`}</section>`;
}

function groupHtml(g: GalleryGroup): string {
  const head =
    g.kind === 'group'
      ? `<b>collapsed group of ${g.size} prototypes</b> (representative #${g.representative}; ${g.assigned} images go to its members${g.hiddenMembers ? `; ${g.hiddenMembers} more members not shown` : ''})`
      : `<b>prototype #${g.representative}</b> (${g.assigned} images)`;
  const members = g.members
    .map(
      (m) =>
        `<div class="proto"><div class="id">#${m.prototype}: ${m.assigned} image${m.assigned === 1 ? '' : 's'}</div><div class="thumbs">${
          m.images.length
            ? m.images
                .map((im) => `<img src="${im.src}" alt="${esc(im.label)}" title="image ${im.index}: ${esc(im.label)}">`)
                .join('')
            : '<span class="note">no image has this prototype as argmax</span>'
        }</div></div>`,
    )
    .join('');
  return `<div class="group${g.kind === 'group' ? ' collapsed' : ''}">${head}${members}</div>`;
}

function gallerySection(runs: RunData[], an: RunAnalysis[]): string {
  const parts = runs.map((r, i) => {
    const g = an[i].gallery;
    if (!g) return `<div class="run"><h3>${esc(r.name)}</h3><p class="note">no gallery for this run</p></div>`;
    const groups = g.groups.filter((x) => x.kind === 'group'),
      singles = g.groups.filter((x) => x.kind === 'single');
    return `<div class="run"><h3>${esc(r.name)}</h3>
<p>The final teacher assigns ${g.images} evaluation images to ${g.used} distinct prototypes (argmax); groups are at ε ${g.eps}.</p>
${groups.length ? `<h4>Largest collapsed groups</h4>${groups.map(groupHtml).join('\n')}` : `<p class="note">no collapsed group at ε ${g.eps}</p>`}
${singles.length ? `<h4>Busiest prototypes without a twin</h4>${singles.map(groupHtml).join('\n')}` : ''}</div>`;
  });
  return `<section id="gallery"><h2>Prototype gallery</h2>
<p class="note">Up to 8 images per prototype, highest teacher score first. Members of a collapsed group are near-identical vectors: the images of the group land on them.</p>
${parts.join('\n')}</section>`;
}

export function renderHtml(runs: RunData[], an: RunAnalysis[], plots: PlotSet, generated = new Date()): string {
  const marks = runs.some((r) => r.alarms.length)
    ? ' Dashed vertical lines: alarm events at their step (red: raised, grey: cleared).'
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>protodino report: ${esc(runs.map((r) => r.name).join(', '))}</title>
<style>${CSS}</style></head><body>
<h1>protodino report</h1>
<p class="sub">${runs.length} run${runs.length === 1 ? '' : 's'}: ${runs.map((r) => `<b>${esc(r.name)}</b> (<code>${esc(r.dir)}</code>)`).join(', ')} · generated ${esc(generated.toISOString())}</p>
<section id="results"><h2>Results</h2>${resultsTable(runs, an)}</section>
${alarmSection(runs)}
${plotSection('loss', 'Training loss', plots.loss, `Training loss of each logged step.${marks}`, 'no step records in these logs')}
${plotSection('unique', 'Unique prototypes over training', plots.unique, `Lines: unique prototypes from the epoch records (dash = ε); filled marks: the final checkpoint, counted here.${marks}`, 'no unique-prototype counts in the logs and no checkpoint')}
${plotSection('sweep', 'Unique prototypes against ε', plots.sweep, 'Final teacher heads, greedy rule, ε ∈ {0.025, 0.05, 0.1, 0.25, 0.5} in both conventions: solid = Euclidean distance between unit prototypes (cos > 1 − ε²/2), dashed = 1 − cos (cos > 1 − ε). The same ε is a much looser threshold as 1 − cos.', 'no checkpoint to measure')}
${plotSection('knn', 'k-NN over training', plots.knn, `Weighted k-NN top-1 from the epoch records, in %.${marks}`, 'no k-NN records in these logs')}
${plotSection('nn', 'Nearest-neighbour similarity', plots.nn, 'Per run: cosine of each prototype of the final teacher head to its nearest other prototype. Mass at 1 is collapse.', 'no checkpoint to measure')}
${plotSection('spread', 'Prototype spread', plots.spread, "Per run, the final teacher head's prototypes, L2-normalised. Left: on their top two principal axes (centred on their mean), binned on a square grid, with the axes' range and the colour scale (prototypes per cell, log scale) shared by the runs. A tight group of prototypes is one dark cell; prototypes spread over many dimensions make a pale cloud, each axis holding little of their variance. Right: the angles between every pair of prototypes, as a share of the K(K − 1)/2 pairs. Pairs inside a collapsed group pile up near 0°; in many dimensions, spread prototypes sit near 90° of each other.", 'no checkpoint to measure')}
${gallerySection(runs, an)}
</body></html>
`;
}
