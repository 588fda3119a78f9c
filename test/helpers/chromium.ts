// Debian's headless Chromium, driven directly (no puppeteer): a page is rendered at a given width and
// measured by a script injected into a copy of it, which writes its findings into the DOM that
// --dump-dom prints. The report itself has no script; only the measured copy does.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

export function chromiumBinary(): string {
  for (const c of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  // scripts/setup.sh installs Debian's chromium: its absence is a broken setup, not a reason to skip.
  throw new Error('chromium is not installed (scripts/setup.sh installs it: apt-get install -y chromium)');
}

export function chromiumFlags(profile: string, width: number, height: number): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--user-data-dir=${profile}`,
    `--window-size=${width},${height}`,
  ];
}

export interface Layout {
  /** window.innerWidth: proves the page was laid out at the width asked for. */
  innerWidth: number;
  scrollWidth: number;
  clientWidth: number;
  /** Elements reaching past the right (or left) edge of the viewport, described. */
  outside: string[];
  /** Tables wider than their container's content box, described. */
  wideTables: string[];
}

// Runs at the end of <body>; reading layout properties forces a synchronous layout.
const MEASURE = `<script>(() => {
  const de = document.documentElement, vw = de.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ').join('.') : '') +
    ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  const outside = [], wideTables = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.id === 'layout-measure' || el.tagName === 'SCRIPT') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) outside.push(name(el) + ' spans ' + r.left.toFixed(0) + '–' + r.right.toFixed(0) + ' px');
  }
  for (const t of document.querySelectorAll('table')) {
    const p = t.parentElement, pr = p.getBoundingClientRect(), cs = getComputedStyle(p);
    const right = pr.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
    const tr = t.getBoundingClientRect().right;
    if (tr > right + 0.5) wideTables.push(name(t) + ' ends at ' + tr.toFixed(0) + ' px, its container at ' + right.toFixed(0));
  }
  const pre = document.createElement('pre');
  pre.id = 'layout-measure';
  pre.textContent = JSON.stringify({ innerWidth: window.innerWidth, scrollWidth: de.scrollWidth, clientWidth: vw, outside, wideTables });
  document.body.appendChild(pre);
})();</script>`;

/** Lays out the HTML page at `width` px in headless Chromium and measures horizontal overflow. */
export function measureLayout(htmlPath: string, width: number, transform: (html: string) => string = (h) => h): Layout {
  const bin = chromiumBinary();
  const html = transform(readFileSync(htmlPath, 'utf8'));
  if (!html.includes('</body>')) throw new Error(`${htmlPath}: no </body> to put the measuring script before`);
  // Next to the original, so relative references (there should be none) would resolve alike.
  const copy = join(dirname(htmlPath), `layout-measure-${process.pid}.html`);
  writeFileSync(copy, html.replace('</body>', `${MEASURE}</body>`));
  const profile = mkdtempSync(join(tmpdir(), 'protodino-chromium-'));
  try {
    const r = spawnSync(bin, [...chromiumFlags(profile, width, 1000), '--dump-dom', `file://${copy}`], {
      encoding: 'utf8',
      timeout: 60000,
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) throw new Error(`chromium --dump-dom failed (${r.status}): ${r.stderr?.slice(-500)}`);
    const m = /<pre id="layout-measure">([^<]*)<\/pre>/.exec(r.stdout);
    if (!m) throw new Error(`the measuring script wrote nothing: ${r.stdout.slice(0, 300)}`);
    return JSON.parse(
      m[1]
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&'),
    );
  } finally {
    rmSync(profile, { recursive: true, force: true });
    rmSync(copy, { force: true });
  }
}

/** Why the layout overflows horizontally, or [] when it fits. */
export function overflowProblems(l: Layout): string[] {
  const out: string[] = [];
  if (l.scrollWidth > l.clientWidth) out.push(`the page scrolls sideways: ${l.scrollWidth} px > ${l.clientWidth} px`);
  return [
    ...out,
    ...l.outside.map((s) => `outside the viewport: ${s}`),
    ...l.wideTables.map((s) => `wide table: ${s}`),
  ];
}
