// The report page: one self-contained HTML file (inline CSS, inline SVG plots, images as data URIs;
// no script and no external reference, so it opens offline and archives as a single file).
import type { RunData } from './runs.js';
import { activeAlarms, configDifferences } from './runs.js';
import type { RunAnalysis } from './analysis.js';
import type { GalleryGroup } from './gallery.js';
import type { Plot, PlotSet } from './plots.js';

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined) return '—';
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : v.toPrecision(digits);
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} .sub{color:#666;margin-top:0}
section{margin:28px 0} h2{border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4} td.l,th.l{text-align:left} .note{color:#777;font-style:italic}
.plot svg{max-width:100%;height:auto}
.run{margin:16px 0 28px} .group{border:1px solid #e3e3e3;border-radius:6px;padding:8px 10px;margin:8px 0}
.group.collapsed{border-color:#e0a060;background:#fffaf3}
.proto{display:flex;align-items:center;gap:10px;margin:4px 0} .proto .id{width:190px;font-size:12px;color:#444}
.thumbs img{width:56px;height:56px;image-rendering:pixelated;border:1px solid #ccc;margin-right:3px}
code{background:#f4f4f4;padding:0 3px}
.alarm{display:inline-block;background:#c62828;color:#fff;border-radius:3px;padding:0 5px;margin-left:6px;font-size:11px;font-weight:600}
.alarm.cleared{background:#e0e0e0;color:#555;font-weight:400}
tr.alarmed td:first-child{border-left:4px solid #c62828}
`;

function resultsTable(runs: RunData[], an: RunAnalysis[]): string {
  const epsCols = [...new Set(an.flatMap((a) => a.unique?.perEps.map((p) => p.eps) ?? []))].sort((a, b) => a - b);
  const extraKeys = [...new Set(runs.flatMap((r) => Object.keys(r.epochs.at(-1)?.extra ?? {})))].sort();
  const diffs = configDifferences(runs);
  const metric = an.find((a) => a.unique)?.unique?.metric ?? 'euclidean';
  const metricNote = metric === 'cosine' ? ' (1 − cos)' : '';
  const head = [
    'run',
    'steps',
    'epochs',
    'final loss',
    'prototypes K',
    ...epsCols.map((e) => `unique @ ε ${e}${metricNote}`),
    ...epsCols.map((e) => `largest group @ ε ${e}${metricNote}`),
    'k-NN top-1',
    ...extraKeys,
    'config differences',
  ];
  const rows = runs.map((r, i) => {
    const a = an[i];
    const last = r.epochs.at(-1);
    const knn = [...r.epochs].reverse().find((e) => e.knnTop1 !== undefined)?.knnTop1;
    const per = (e: number) => a.unique?.perEps.find((p) => p.eps === e);
    const cfg = diffs.map((k) => `<code>${esc(k)}=${esc(JSON.stringify(r.config[k]))}</code>`).join(' ');
    const cells = [
      `<td class="l">${esc(r.name)}${r.truncated ? ' <span class="note">(log cut off)</span>' : ''}${alarmBadges(r)}</td>`,
      `<td>${a.step}</td>`,
      `<td>${fmt(r.epochs.at(-1)?.epoch ?? r.checkpoint?.meta.epoch)}</td>`,
      `<td>${fmt(r.steps.at(-1)?.loss)}</td>`,
      `<td>${fmt(a.unique?.prototypes)}</td>`,
      ...epsCols.map((e) => `<td>${fmt(per(e)?.unique)}</td>`),
      ...epsCols.map((e) => `<td>${fmt(per(e)?.largestGroup)}</td>`),
      `<td>${fmt(knn)}</td>`,
      ...extraKeys.map((k) => `<td>${fmt(last?.extra[k])}</td>`),
      `<td class="l">${cfg || '<span class="note">none</span>'}</td>`,
    ];
    return `<tr${activeAlarms(r).length ? ' class="alarmed"' : ''}>${cells.join('')}</tr>`;
  });
  const notes = runs.flatMap((r, i) => an[i].notes.map((n) => `<li>${esc(r.name)}: ${esc(n)}</li>`));
  const epsNote = `<p class="note" id="eps-metric">ε metric: ${metric === 'cosine' ? 'cosine (ε = 1 − cos between prototypes)' : 'Euclidean (ε = distance between unit prototypes, cos > 1 − ε²/2)'}.</p>`;
  return `${epsNote}<table id="results-table"><thead><tr>${head.map((h, i) => `<th${i === 0 || i === head.length - 1 ? ' class="l"' : ''}>${esc(h)}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p class="note">Unique prototypes: greedy rule on the final checkpoint's teacher head; k-NN and the extra columns: the last epoch record of the log.</p>
${notes.length ? `<ul class="note">${notes.join('')}</ul>` : ''}`;
}

const KIND_NAMES: Record<string, string> = {
  uniform: 'uniform collapse',
  usage: 'usage collapse',
  partial: 'partial collapse',
};

/** One badge per alarm kind the run raised: red while it stands at the end, grey once cleared. */
function alarmBadges(r: RunData): string {
  const active = new Set(activeAlarms(r));
  const kinds = [...new Set(r.alarms.filter((a) => !a.cleared).map((a) => a.kind))];
  return kinds
    .map((k) => {
      const first = r.alarms.find((a) => a.kind === k && !a.cleared)!;
      const name = KIND_NAMES[k] ?? `${k} collapse`;
      return ` <span class="alarm${active.has(k) ? '' : ' cleared'}" title="${esc(first.message)}">ALARM: ${esc(name)} (step ${first.step})${active.has(k) ? '' : ', cleared'}</span>`;
    })
    .join('');
}

function alarmSection(runs: RunData[]): string {
  const rows = runs.flatMap((r) =>
    r.alarms.map(
      (a) =>
        `<tr${a.cleared ? '' : ' class="alarmed"'}><td class="l">${esc(r.name)}</td><td>${a.step}</td><td>${a.epoch}</td>` +
        `<td class="l">${a.cleared ? 'cleared' : '<b>raised</b>'}</td><td class="l">${esc(KIND_NAMES[a.kind] ?? a.kind)}</td><td class="l">${esc(a.message)}</td></tr>`,
    ),
  );
  return `<section id="alarms"><h2>Collapse alarms</h2>
${
  rows.length
    ? `<table id="alarms-table"><thead><tr><th class="l">run</th><th>step</th><th>epoch</th><th class="l">event</th><th class="l">kind</th><th class="l">message</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`
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
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>protodino report: ${esc(runs.map((r) => r.name).join(', '))}</title>
<style>${CSS}</style></head><body>
<h1>protodino report</h1>
<p class="sub">${runs.length} run${runs.length === 1 ? '' : 's'}: ${runs.map((r) => `<b>${esc(r.name)}</b> (<code>${esc(r.dir)}</code>)`).join(', ')} · generated ${esc(generated.toISOString())}</p>
<section id="results"><h2>Results</h2>${resultsTable(runs, an)}</section>
${alarmSection(runs)}
${plotSection('loss', 'Training loss', plots.loss, 'DINO loss of each logged step.', 'no step records in these logs')}
${plotSection('unique', 'Unique prototypes over training', plots.unique, 'Lines: unique prototypes from the epoch records (dash = ε); filled marks: the final checkpoint, counted here.', 'no unique-prototype counts in the logs and no checkpoint')}
${plotSection('sweep', 'Unique prototypes against ε', plots.sweep, 'Final teacher heads, greedy rule, ε ∈ {0.025, 0.05, 0.1, 0.25, 0.5} in both conventions: solid = Euclidean distance between unit prototypes (cos > 1 − ε²/2), dashed = 1 − cos (cos > 1 − ε). The same ε is a much looser threshold as 1 − cos.', 'no checkpoint to measure')}
${plotSection('knn', 'k-NN over training', plots.knn, 'Weighted k-NN top-1 from the epoch records.', 'no k-NN records in these logs')}
${plotSection('nn', 'Nearest-neighbour similarity', plots.nn, 'Per run: cosine of each prototype of the final teacher head to its nearest other prototype. Mass at 1 is collapse.', 'no checkpoint to measure')}
${gallerySection(runs, an)}
</body></html>
`;
}
