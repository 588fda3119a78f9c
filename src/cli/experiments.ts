// protodino experiments: the command line of the paper's comparison (src/experiments/): which
// settings, tiers, seeds, recipe and head sizes to run, then the tables it prints. Every run keeps
// its directory so `protodino report` can render it, and the grid resumes where it stopped.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';
import {
  compareToDino,
  curveTable,
  remedyTable,
  uniqueSweepTables,
  experimentGrid,
  FULL_METHODS,
  FROZEN_METHODS,
  fullKs,
  pairedDifferences,
  pairedTable,
  runExperiments,
  parseSweep,
  sweepRows,
  sweepTable,
  KOLEO_PROTO,
  type ExperimentsOptions,
  type Method,
} from '../experiments/index.js';

function listFlag<T extends string>(cmd: string, name: string, v: string | undefined, all: readonly T[]): T[] {
  if (v === undefined) return [...all];
  const xs = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const x of xs)
    if (!all.includes(x as T)) throw new Error(`${cmd}: --${name} takes a comma list of ${all.join(', ')}, got '${x}'`);
  return xs as T[];
}

const SWEEP_METHODS = [...new Set([...FULL_METHODS, ...FROZEN_METHODS])] as Method[];

/** --koleo_proto 0,0.1: the weights each method runs at; the grid's cells exist at 0 and KOLEO_PROTO. */
function koleoProtos(cmd: string, v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  for (const x of xs)
    if (x !== 0 && x !== KOLEO_PROTO)
      throw new Error(`${cmd}: --koleo_proto takes a comma list of 0 and ${KOLEO_PROTO}, got '${v}'`);
  return [...new Set(xs)];
}

export async function experiments(argv: string[]): Promise<void> {
  const cmd = 'experiments';
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      seeds: { type: 'string' },
      variant_seeds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'runs/experiments' },
      ...BACKEND_OPTION,
      threads: { type: 'string' },
      only: { type: 'string' },
      tier: { type: 'string' },
      frozen_steps: { type: 'string' },
      full_steps: { type: 'string' },
      full_recipe: { type: 'string' },
      ks: { type: 'string' },
      frozen_backbone: { type: 'string' },
      methods: { type: 'string' },
      frozen_methods: { type: 'string' },
      sweep: { type: 'string', multiple: true },
      sweep_methods: { type: 'string' },
      data: { type: 'string' },
      koleo_proto: { type: 'string' },
      aggregate: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      plots: { type: 'string' },
    },
  });
  const quick = values.quick!;
  const opts: ExperimentsOptions = {
    seeds: intFlag(cmd, 'seeds', values.seeds, quick ? 1 : 3),
    variantSeeds: intFlag(cmd, 'variant_seeds', values.variant_seeds, 1, 0),
    quick,
    ...(values.frozen_steps !== undefined ? { frozenSteps: intFlag(cmd, 'frozen_steps', values.frozen_steps, 0) } : {}),
    ...(values.full_steps !== undefined ? { fullSteps: intFlag(cmd, 'full_steps', values.full_steps, 0) } : {}),
    ...(values.full_recipe !== undefined ? { fullRecipe: values.full_recipe } : {}),
    ...(values.ks !== undefined ? { fullKs: values.ks.split(',').map((k) => intFlag(cmd, 'ks', k.trim(), 0, 2)) } : {}),
    ...(values.methods !== undefined ? { fullMethods: listFlag(cmd, 'methods', values.methods, FULL_METHODS) } : {}),
    ...(values.frozen_methods !== undefined
      ? { frozenMethods: listFlag(cmd, 'frozen_methods', values.frozen_methods, FROZEN_METHODS) }
      : {}),
    ...(values.frozen_backbone !== undefined ? { frozenBackbone: values.frozen_backbone } : {}),
    ...(values.data !== undefined
      ? { data: listFlag(cmd, 'data', values.data, ['balanced', 'longtail'] as const) }
      : {}),
    ...(values.koleo_proto !== undefined ? { koleoProtos: koleoProtos(cmd, values.koleo_proto) } : {}),
    ...(values.sweep !== undefined ? { sweeps: values.sweep.map(parseSweep) } : {}),
    ...(values.sweep_methods !== undefined
      ? { sweepMethods: listFlag(cmd, 'sweep_methods', values.sweep_methods, SWEEP_METHODS) }
      : {}),
    out: values.out!,
    backend: backendKind(cmd, values.backend),
    ...(values.threads !== undefined ? { threads: intFlag(cmd, 'threads', values.threads, 0) } : {}),
    settings: listFlag(cmd, 'only', values.only, ['frozen', 'full'] as const),
    tiers: listFlag(cmd, 'tier', values.tier, ['main', 'variant'] as const),
    aggregateOnly: values.aggregate!,
  };
  if (values.list) {
    for (const r of experimentGrid(opts).filter(
      (r) => opts.settings.includes(r.setting) && opts.tiers.includes(r.tier),
    )) {
      console.log(`${r.name}  (${r.tier}, ${r.config.max_steps} steps)`);
    }
    return;
  }
  const s = await runExperiments(opts);
  console.log(`\n${s.table}\n`);
  if (opts.sweeps?.length)
    console.log(
      `Sweep (${opts.sweeps.map((w) => `--${w.flag} ${w.values.join(', ')}`).join('; ')}; mean ± std over seeds; ` +
        `'–': a method the sweep does not apply to):\n\n${sweepTable(sweepRows(s.results, opts.sweeps), opts.sweeps)}\n`,
    );
  // The comparisons below pair cells that differ in one thing; a sweep cell has no such twin.
  const plain = s.results.filter((r) => !r.sweep);
  const paired = pairedDifferences(plain);
  if (paired.length)
    console.log(
      `KoLeo-proto minus none, paired by seed (mean ± 95% interval; accuracies in points):\n\n${pairedTable(paired)}\n`,
    );
  for (const data of ['balanced', 'longtail'] as const) {
    const t = curveTable(s.groups, 'frozen', data);
    if (t)
      console.log(`Unique prototypes over training (frozen, ${data}; ε = 0.025 / ε = 0.1, mean over seeds):\n\n${t}\n`);
  }
  for (const k of opts.settings.includes('full') ? fullKs(opts) : []) {
    for (const data of ['balanced', 'longtail'] as const) {
      const t = curveTable(s.groups, 'full', data, k);
      if (t)
        console.log(
          `Unique prototypes over training (full, K = ${k}, ${data}; ε = 0.025 / ε = 0.1, mean over seeds):\n\n${t}\n`,
        );
    }
  }
  for (const setting of opts.settings) {
    const rows = compareToDino(plain, setting);
    // With DINO ± KoLeo-proto alone the differences repeat the paired table above, but not the cost.
    if (rows.length)
      console.log(
        `Remedies against DINO (${setting}), paired by seed (mean ± 95% interval; accuracies in points; cost as a ratio):\n\n${remedyTable(rows)}\n`,
      );
    const sweep = uniqueSweepTables(s.results, setting);
    if (sweep)
      console.log(`Unique prototypes over ε (${setting}, final teachers, mean ± std over seeds):\n\n${sweep}\n`);
  }
  if (values.plots !== undefined) {
    const { writeExperimentPlots } = await import('../experiments/plots.js');
    for (const p of await writeExperimentPlots(s.groups, values.plots)) console.log(`wrote ${p}`);
  }
  console.log(
    `results: ${join(opts.out, 'results.json')}; ${s.outcomes.filter((o) => o.status !== 'done').length} runs trained or evaluated now, ` +
      `${s.grid.length - s.results.length} missing; ${(s.seconds / 60).toFixed(1)} min`,
  );
}
