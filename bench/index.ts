// Runs the benchmark suites: `node dist/bench/index.js [suite ...] [--quick] [--profile]`. Each suite's results
// go to bench/results/<suite>.json and a markdown table is printed. Adding a suite is one line in
// SUITES: its name and a lazy import of a function returning benny summaries or a SuiteReport
// (lazy, so running one suite loads only its own dependencies).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Summary } from 'benny/lib/internal/common-types.js';
import { takeTuneFlag } from '../src/cli/args.js';
import { packagePath } from '../src/util/paths.js';
import { summaryTable, type Suite, type SuiteReport } from './harness.js';

const SUITES: Record<string, () => Promise<Suite>> = {
  matmul: async () => (await import('./matmul.js')).matmulSuite,
  neighbours: async () => (await import('./neighbours.js')).neighboursSuite,
  'koleo-large-k': async () => (await import('./koleo-large-k.js')).koleoLargeKSuite,
  'koleo-self-webgpu': async () => (await import('./koleo-large-k.js')).koleoSelfWebgpuSuite,
  'softmax-norm': async () => (await import('./softmax-norm.js')).softmaxNormSuite,
  fusions: async () => (await import('./fusions.js')).fusionsSuite,
  'dino-step': async () => (await import('./dino-step.js')).dinoStepSuite,
  'resnet-step': async () => (await import('./resnet-step.js')).resnetStepSuite,
  'conv-layers': async () => (await import('./conv-layers.js')).convLayersSuite,
  'remedy-step': async () => (await import('./remedy-step.js')).remedyStepSuite,
  soak: async () => (await import('./soak.js')).soakSuite,
  'soak-webgpu': async () => (await import('./soak.js')).soakWebgpuSuite,
  gpu: async () => (await import('./gpu.js')).gpuSuite,
  tune: async () => (await import('./tune.js')).tuneSuite,
};
/** Run only when named: each soak trains for most of an hour; gpu is for a machine with a GPU (scripts/gpu-check.sh); tune re-measures the host tuning (docs/performance.md); koleo-self-webgpu takes minutes on a software adapter. */
const ON_REQUEST = new Set(['soak', 'soak-webgpu', 'gpu', 'tune', 'koleo-self-webgpu']);

function normalize(r: Summary[] | SuiteReport): SuiteReport {
  return Array.isArray(r) ? { summaries: r } : r;
}

/** Runs the named suites (all but ON_REQUEST when none), e.g. main(['matmul', '--quick']). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(
      `usage: protodino bench [suite ...] [--quick] [--profile] [--tune off|auto|FILE|family.param=value,...]\n\n` +
        `suites: ${Object.keys(SUITES).join(', ')} ` +
        `(all but ${[...ON_REQUEST].join(', ')} when none is named)\nresults: bench/results/<suite>.json\n` +
        "--tune: the wasm kernels measure the host once and cache the choice (auto, the default), or use today's " +
        'constants (off) or given values',
    );
    return;
  }
  // the wasm backends the suites create read it (src/backend/wasm/tuner.ts)
  const args = takeTuneFlag(argv, 'auto');
  const flags = args.filter((a) => a.startsWith('--'));
  const badFlag = flags.find((f) => f !== '--quick' && f !== '--profile');
  if (badFlag) throw new Error(`bench: unknown flag ${badFlag}; flags: --quick --profile --tune`);
  if (args.includes('--quick')) process.env.PROTODINO_BENCH_QUICK = '1';
  if (args.includes('--profile')) process.env.PROTODINO_BENCH_PROFILE = '1';
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length > 0) {
    throw new Error(`unknown suite(s) ${unknown.join(', ')}; available: ${Object.keys(SUITES).join(', ')}`);
  }
  const selected = names.length > 0 ? names : Object.keys(SUITES).filter((n) => !ON_REQUEST.has(n));
  const dir = packagePath('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const tables: string[] = [];
  for (const name of selected) {
    console.log(`\n## ${name}\n`);
    const suite = await SUITES[name]();
    const report = normalize(await suite());
    const file = `${dir}/${name}.json`;
    writeFileSync(
      file,
      JSON.stringify(
        {
          suite: name,
          date: new Date().toISOString(),
          quick: process.env.PROTODINO_BENCH_QUICK === '1',
          machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
          details: report.details,
          summaries: report.summaries.map((s) => ({
            name: s.name,
            results: s.results.map((r) => ({
              name: r.name,
              ops: r.ops,
              margin: r.margin,
              samples: r.samples,
              medianSeconds: r.details.median,
              minSeconds: r.details.min,
            })),
          })),
        },
        null,
        2,
      ),
    );
    const table = report.table ?? summaryTable(report.summaries);
    tables.push(`### ${name}\n\n${table}\n`);
    console.log(`\n${table}\n\nwritten to ${file}`);
  }
  if (tables.length > 1) console.log(`\n${tables.join('\n')}`);
}

// Run when executed directly (npm run bench); `protodino bench` imports main instead.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
