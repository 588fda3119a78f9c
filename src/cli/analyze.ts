// protodino analyze <checkpoint>: how many of the K prototypes are really distinct. Reads protodino
// safetensors checkpoints and PyTorch DINO/iBOT .pth files (never executing their pickles). With
// --dataset (protodino checkpoints only: their config rebuilds the network) it also reports usage:
// how many prototypes are ever the teacher's argmax on un-augmented images, and the entropy of the
// marginal latent-class distribution at the teacher temperature.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { createBackend } from '../backend/index.js';
import { readSafetensors } from '../io/safetensors.js';
import { findDinoHead, readPth } from '../io/pth/index.js';
import {
  countUniquePrototypes,
  EPS_METRICS,
  type EpsMetric,
  type PrototypeUsage,
  type UniquePrototypesResult,
} from '../eval/index.js';
import { embedDataset } from '../train/evaluate.js';
import { checkpointStats, evalData, networkFromCheckpoint, readRunCheckpoint } from '../train/run-data.js';
import { headUsage, usageJson } from '../train/diagnostics.js';
import { BACKEND_OPTION, backendKind, intFlag } from './args.js';
import type { Backend } from '../backend/backend.js';

export interface DatasetUsage {
  dataset: string;
  split: 'train' | 'test';
  network: 'teacher' | 'student';
  temperature: number;
  usage: PrototypeUsage;
}

/** Usage of a protodino checkpoint's prototypes over the first `max` images of a split. */
export async function datasetUsage(
  path: string,
  be: Backend,
  opts: { dataset: string; split: 'train' | 'test'; max: number; which: 'teacher' | 'student' },
): Promise<DatasetUsage> {
  const run = readRunCheckpoint('analyze', path);
  const { ck, cfg } = run;
  if (opts.dataset !== cfg.dataset && opts.dataset !== 'fashion-mnist') {
    throw new Error(
      `analyze: --dataset must be fashion-mnist or the run's own dataset (${cfg.dataset}), got '${opts.dataset}'`,
    );
  }
  // On its own dataset the network sees its inputs normalised as in training. Fashion-MNIST beside
  // another run's dataset is normalised with its own whole training split's statistics: the run's
  // belong to other images (and maybe another channel count).
  const own = opts.dataset === cfg.dataset;
  const data = own
    ? await evalData(cfg, { longTail: 1, stats: checkpointStats(ck) })
    : await evalData({ ...cfg, dataset: 'fashion-mnist', data_path: '', long_tail: 1, subset: 0 }, { longTail: 1 });
  const ds = opts.split === 'train' ? data.train : data.test;
  const net = networkFromCheckpoint(run, be, ds.channels, opts.which);
  try {
    const e = await embedDataset(net, ds, { max: opts.max, mean: data.mean, std: data.std });
    const usage = await headUsage(net, e.features, cfg.teacher_temp);
    return {
      dataset: ds.name ?? opts.dataset,
      split: opts.split,
      network: opts.which,
      temperature: cfg.teacher_temp,
      usage,
    };
  } finally {
    net.dispose();
  }
}

export function formatUsage(u: DatasetUsage): string {
  const r = u.usage;
  return (
    `usage over ${r.samples} images of ${u.dataset} (${u.network}, softmax at T ${u.temperature}): ` +
    `${r.used} of ${r.prototypes} prototypes are ever the argmax; marginal entropy ${r.entropy.toFixed(4)} nats ` +
    `(${(100 * r.entropyFraction).toFixed(1)}% of log K, perplexity ${r.perplexity.toFixed(1)})`
  );
}

export interface LoadedPrototypes {
  data: Float32Array;
  shape: [number, number];
  source: string;
}

/** The head's last-layer rows (weight_v, or weight for heads saved without weight norm). */
export function loadPrototypes(path: string, prefer: 'teacher' | 'student' = 'teacher'): LoadedPrototypes {
  const head = new Uint8Array(readFileSync(path).subarray(0, 4));
  const isZip = head[0] === 0x50 && head[1] === 0x4b; // "PK": torch.save's zip format
  if (isZip || /\.(pth|pt)$/.test(path)) {
    const found = findDinoHead(readPth(path), { prefer });
    const t = found.kind === 'weight_norm' ? found.weight_v : found.weight;
    if (t.shape.length !== 2) throw new Error(`${path}: ${found.source} has shape [${t.shape}], expected [K, D]`);
    return {
      data: Float32Array.from(t.data as ArrayLike<number>),
      shape: [t.shape[0], t.shape[1]],
      source: found.source,
    };
  }
  const file = readSafetensors(path, { verify: true });
  const names = [
    `${prefer}.head.last_layer.weight_v`,
    `${prefer === 'teacher' ? 'student' : 'teacher'}.head.last_layer.weight_v`,
    'head.last_layer.weight_v',
    'last_layer.weight_v',
  ];
  for (const n of names) {
    const t = file.tensors.get(n);
    if (!t) continue;
    if (t.dtype !== 'F32' || t.shape.length !== 2)
      throw new Error(`${path}: '${n}' is ${t.dtype} [${t.shape}], expected F32 [K, D]`);
    return { data: t.data as Float32Array, shape: [t.shape[0], t.shape[1]], source: n };
  }
  throw new Error(`${path}: no prototypes found (looked for ${names.join(', ')})`);
}

/** Says which convention the ε in the lines that follow are in. */
export function epsMetricLine(metric: EpsMetric): string {
  return metric === 'cosine'
    ? 'eps metric: cosine (eps = 1 - cos between prototypes)'
    : 'eps metric: euclidean (eps = distance between unit prototypes, cos > 1 - eps^2/2)';
}

export function formatReport(r: UniquePrototypesResult, source: string): string {
  const lines = [`prototypes: ${r.prototypes} x ${r.dim} (${source})`, `  ${epsMetricLine(r.metric)}`];
  for (const e of r.perEps) {
    const parts = [`eps ${e.eps}:`];
    if (e.greedy) parts.push(`greedy ${e.greedy.unique} unique`);
    if (e.components) parts.push(`components ${e.components.unique} unique`);
    const g = e.greedy ?? e.components!;
    const top = Array.from(g.groupSizes.subarray(0, 5)).join(', ');
    parts.push(`(largest groups: ${top})`);
    lines.push('  ' + parts.join(' '));
  }
  let min = Infinity,
    max = -Infinity,
    sum = 0;
  for (const n of r.norms) {
    min = Math.min(min, n);
    max = Math.max(max, n);
    sum += n;
  }
  lines.push(`  norms: min ${min.toFixed(4)} mean ${(sum / r.norms.length).toFixed(4)} max ${max.toFixed(4)}`);
  lines.push('  nearest-neighbour cosine histogram:');
  const { edges, counts } = r.nearest;
  const peak = Math.max(1, ...counts);
  for (let b = 0; b < counts.length; b++) {
    if (counts[b] === 0) continue;
    lines.push(
      `    [${edges[b].toFixed(2).padStart(5)}, ${edges[b + 1].toFixed(2).padStart(5)}) ${String(counts[b]).padStart(7)} ${'#'.repeat(Math.ceil((40 * counts[b]) / peak))}`,
    );
  }
  return lines.join('\n');
}

export async function analyze(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      eps: { type: 'string', default: '0.025' },
      rule: { type: 'string', default: 'both' },
      eps_metric: { type: 'string', default: 'euclidean' },
      json: { type: 'boolean', default: false },
      student: { type: 'boolean', default: false },
      ...BACKEND_OPTION,
      dataset: { type: 'string' },
      split: { type: 'string', default: 'train' },
      max: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new Error('analyze: give exactly one checkpoint (.safetensors or .pth)');
  const eps = values.eps!.split(',').map(Number);
  if (eps.some((e) => !(e > 0 && e <= 2)))
    throw new Error(`analyze: --eps takes numbers in (0, 2], got '${values.eps}'`);
  const metric = values.eps_metric as EpsMetric;
  if (!EPS_METRICS.includes(metric))
    throw new Error(`analyze: --eps_metric must be ${EPS_METRICS.join(' or ')}, got '${values.eps_metric}'`);
  if (!['greedy', 'components', 'both'].includes(values.rule!))
    throw new Error(`analyze: --rule must be greedy, components or both, got '${values.rule}'`);
  if (values.dataset === undefined && (values.max !== undefined || values.split !== 'train')) {
    throw new Error('analyze: --max and --split go with --dataset (prototype usage over a dataset)');
  }
  if (values.split !== 'train' && values.split !== 'test')
    throw new Error(`analyze: --split must be train or test, got '${values.split}'`);
  const max = intFlag('analyze', 'max', values.max, 10000);
  const which = values.student ? 'student' : 'teacher';
  // Refuse a .pth (or any non-protodino file) before the slow work: it cannot be rebuilt for usage.
  if (values.dataset !== undefined) readRunCheckpoint('analyze', positionals[0]);
  const protos = loadPrototypes(positionals[0], which);
  const be = await createBackend({ kind: backendKind('analyze', values.backend) });
  try {
    const r = await countUniquePrototypes(
      { data: protos.data, shape: protos.shape },
      { eps, metric, rule: values.rule as 'both', backend: be },
    );
    const usage =
      values.dataset === undefined
        ? null
        : await datasetUsage(positionals[0], be, {
            dataset: values.dataset,
            split: values.split as 'train',
            max,
            which,
          });
    if (values.json) {
      console.log(
        JSON.stringify({
          source: protos.source,
          prototypes: r.prototypes,
          dim: r.dim,
          epsMetric: r.metric,
          perEps: r.perEps.map((e) => ({
            eps: e.eps,
            ...(e.greedy ? { greedy: e.greedy.unique, greedyGroupSizes: Array.from(e.greedy.groupSizes) } : {}),
            ...(e.components
              ? { components: e.components.unique, componentGroupSizes: Array.from(e.components.groupSizes) }
              : {}),
          })),
          norms: Array.from(r.norms),
          nearestHistogram: { edges: Array.from(r.nearest.edges), counts: Array.from(r.nearest.counts) },
          ...(usage
            ? {
                usage: {
                  dataset: usage.dataset,
                  split: usage.split,
                  network: usage.network,
                  ...usageJson(usage.usage, usage.temperature),
                  argmaxCounts: Array.from(usage.usage.argmaxCounts),
                },
              }
            : {}),
        }),
      );
    } else {
      console.log(formatReport(r, protos.source));
      if (usage) console.log(formatUsage(usage));
    }
  } finally {
    be.destroy();
  }
}
