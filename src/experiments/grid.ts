// The experiment grid: which runs the paper's comparison needs (settings, data, methods, KoLeo-proto,
// seeds, head sizes) and the training config of each, from the named presets.
import { longTailCounts } from '../data/index.js';
import { validate, DEFAULTS, type TrainConfig } from '../train/config.js';
import { presetValues } from '../train/presets.js';
import { frozenBackboneConfig } from './frozen-backbone.js';
import { effectiveValue, sweepSuffix, type Sweep, type SweepValue } from './sweep.js';
import type { FlagName } from '../train/flags.js';

export type Setting = 'frozen' | 'full';
export type DataKind = 'balanced' | 'longtail';
/** 'init': the full-training network at random initialisation, evaluated without training (the baseline). */
/**
 * 'em': prototypes fitted by online EM (--prototypes em), without KoLeo-proto (no gradient reaches
 * them). In the frozen setting EM fits the prototypes over the fixed PCA-64 features and nothing
 * trains by gradient. Through `--methods dino,em` / `--frozen_methods dino,em`; in no default grid's
 * cell list, so a running grid keeps its cells.
 */
export type Method = 'dino' | 'sinkhorn' | 'memax' | 'vmf' | 'ibot' | 'init' | 'em';
export type Tier = 'main' | 'variant';

export const LONG_TAIL_RATIO = 100;
export const KOLEO_PROTO = 0.1;
/** Images in long-tailed Fashion-MNIST at ratio 100 (6000 · 100^(−c/9) per class c). */
export const LONG_TAIL_IMAGES = longTailCounts(6000, 10, LONG_TAIL_RATIO).reduce((a, b) => a + b, 0);

export interface ExperimentRun {
  name: string;
  setting: Setting;
  /** Prototypes of the head (out_dim); absent in results written before grids had several. */
  prototypes?: number;
  data: DataKind;
  method: Method;
  koleoProto: number;
  seed: number;
  tier: Tier;
  config: Partial<TrainConfig>;
  /** The values a `--sweep` cell changes from its method's plain cell (absent for plain cells). */
  sweep?: Partial<Record<FlagName, SweepValue>>;
}

export interface EvalSizes {
  trainMax: number;
  testMax: number;
  linearEpochs: number;
  episodes: number;
}

export interface GridOptions {
  /** Seeds of the main comparison (DINO and Sinkhorn frozen, DINO full; each ± KoLeo-proto). */
  seeds: number;
  /** Seeds of the variants (me-max, vMF, and in full training also Sinkhorn and iBOT). */
  variantSeeds: number;
  quick: boolean;
  /** Steps of a frozen / full run (default: 2000, the demo's, / the recipe's FULL_RECIPES steps). */
  frozenSteps?: number;
  fullSteps?: number;
  /** The preset full training starts from (default fmnist-resnet). */
  fullRecipe?: string;
  /** Head sizes of the full main comparison (default: the recipe's); the variants run at the first. */
  fullKs?: number[];
  /**
   * A backbone file (`protodino export --to backbone`) the frozen setting trains its prototypes on,
   * instead of the PCA-64 features: learned features, frozen, with everything else unchanged.
   */
  frozenBackbone?: string;
  /**
   * Methods of the full main comparison (default: DINO alone), each ± KoLeo-proto at every seed and
   * head size; 'em' runs without it (no gradient reaches its prototypes).
   */
  fullMethods?: Method[];
  /** Methods of the frozen main comparison (default: DINO and Sinkhorn-Knopp), each ± KoLeo-proto. */
  frozenMethods?: Method[];
  /** Data columns (default both). */
  data?: DataKind[];
  /** KoLeo-proto weights each method runs at (default 0 and KOLEO_PROTO; 'em' at 0 only). */
  koleoProtos?: number[];
  /**
   * One-at-a-time sweeps: each of `sweepMethods`' cells once more for every value of each swept flag
   * that differs from the cell's own (other flags as in the cell), so sweeps around the defaults share
   * their centre, the plain cell.
   */
  sweeps?: Sweep[];
  /** Methods the sweeps apply to (default: every trained method of the grid). */
  sweepMethods?: Method[];
}

/** Methods a full main comparison can hold (the untrained baseline is always in it). */
export const FULL_METHODS: readonly Method[] = ['dino', 'sinkhorn', 'memax', 'vmf', 'ibot', 'em'];
/** The frozen setting has no patch tokens (iBOT); EM fits its prototypes over the PCA-64 features. */
export const FROZEN_METHODS: readonly Method[] = ['dino', 'sinkhorn', 'memax', 'vmf', 'em'];

const METHOD_CONFIG: Record<Method, Partial<TrainConfig>> = {
  dino: { centering: 'centering' },
  sinkhorn: { centering: 'sinkhorn' },
  memax: { centering: 'memax' },
  vmf: { centering: 'centering', vmf: true, norm_last_layer: false },
  ibot: { centering: 'centering', ibot: true },
  init: { centering: 'centering' },
  em: { centering: 'centering', prototypes: 'em' },
};

const MAIN: Record<Setting, Method[]> = { frozen: ['dino', 'sinkhorn'], full: ['dino'] };
// iBOT masks patch tokens, so it has no frozen-PCA form.
const VARIANTS: Record<Setting, Method[]> = { frozen: ['memax', 'vmf'], full: ['sinkhorn', 'memax', 'vmf', 'ibot'] };

export function quickEvalSizes(): EvalSizes {
  return { trainMax: 400, testMax: 300, linearEpochs: 3, episodes: 100 };
}

/** The final evaluation's sizes; a ViT bank of 5000 images, since embedding costs as much as training there. */
export function fullEvalSizes(setting: Setting): EvalSizes {
  return { trainMax: setting === 'frozen' ? 10000 : 5000, testMax: 2000, linearEpochs: 20, episodes: 600 };
}

/**
 * The presets full training can start from, with the grid's schedule for each: the epochs its cosine
 * schedules span, the steps a run stops at and the head sizes of the main comparison. Balanced and
 * long-tailed runs train on LONG_TAIL_IMAGES images (232 steps of 64 an epoch).
 * - fmnist-resnet: the full-training recipe (docs/experiments/full-training.md) with its schedules
 *   over 4 epochs, run to their end (928 steps, about 13 minutes a run on one core of a busy 2-core
 *   machine), at K = 1024 and 4096. Cut at 2 epochs (462 steps), seed 0 gave 71.9% k-NN, no better
 *   than the untrained network (about 72%): a comparison of regularisers means little there.
 * - grid-full-v1: the first published grid (vit_cpu, K = 1024, 300 steps), kept so it reproduces.
 */
export const FULL_RECIPES: Record<string, { epochs: number; steps: number; ks: number[] }> = {
  'fmnist-resnet': { epochs: 4, steps: 928, ks: [1024, 4096] },
  'grid-full-v1': { epochs: 4, steps: 300, ks: [1024] },
};
export const DEFAULT_FULL_RECIPE = 'fmnist-resnet';
const FROZEN = presetValues('demo-frozen');

function fullRecipe(opts: Pick<GridOptions, 'fullRecipe'>): string {
  const name = opts.fullRecipe ?? DEFAULT_FULL_RECIPE;
  if (!FULL_RECIPES[name])
    throw new Error(`experiments: --full_recipe takes one of ${Object.keys(FULL_RECIPES).join(', ')}, got '${name}'`);
  return name;
}

/** Head sizes of the full main comparison. */
export function fullKs(opts: Pick<GridOptions, 'fullRecipe' | 'fullKs'>): number[] {
  return opts.fullKs ?? FULL_RECIPES[fullRecipe(opts)].ks;
}

/**
 * Training config of one cell. Balanced runs train on the first LONG_TAIL_IMAGES training images, as
 * many as the long-tailed set holds, so both see the same number of images and epochs have the same
 * length (232 steps of 64): epochs are the evaluation points of the curves over training. Full runs
 * keep their recipe's cosine schedules over FULL_RECIPES' epochs, cut at max_steps. iBOT masks patch
 * tokens, so under a ResNet recipe its runs train vit_cpu with the recipe's head and schedules.
 */
export function runConfig(
  setting: Setting,
  data: DataKind,
  method: Method,
  koleoProto: number,
  seed: number,
  opts: Pick<GridOptions, 'quick' | 'frozenSteps' | 'fullSteps' | 'fullRecipe' | 'frozenBackbone'>,
  prototypes?: number,
  sweep?: Partial<Record<FlagName, SweepValue>>,
): Partial<TrainConfig> {
  let base: Partial<TrainConfig>;
  if (setting === 'frozen') {
    base = { ...FROZEN, epochs: 12, max_steps: opts.frozenSteps ?? FROZEN.max_steps };
    if (opts.frozenBackbone !== undefined) Object.assign(base, frozenBackboneConfig(opts.frozenBackbone));
  } else {
    const name = fullRecipe(opts),
      r = FULL_RECIPES[name];
    // max_steps 0 would run the recipe's own 9370 steps over epochs that no longer match them.
    base = { ...presetValues(name), epochs: r.epochs, max_steps: opts.fullSteps ?? r.steps, eval_test_max: 2000 };
    if (method === 'ibot' && !String(base.arch).startsWith('vit')) base.arch = 'vit_cpu';
  }
  if (prototypes !== undefined) base.out_dim = prototypes;
  const cfg: Partial<TrainConfig> = {
    ...base,
    ...METHOD_CONFIG[method],
    koleo_proto: koleoProto,
    seed,
    dataset: 'fashion-mnist',
    long_tail: data === 'longtail' ? LONG_TAIL_RATIO : 1,
    subset: data === 'balanced' ? LONG_TAIL_IMAGES : 0,
    eval_every_epoch: true,
    log_every: 25,
    quiet: true,
    // The per-epoch k-NN: a smaller bank, as the final evaluation repeats it in full.
    ...(setting === 'full' ? { eval_train_max: 2000 } : {}),
  };
  if (opts.quick) {
    // Seconds per run: 256 images, batch 32 (8 steps an epoch, two epochs), a small head (1/16 of K).
    Object.assign(cfg, {
      subset: 256,
      batch_size: 32,
      out_dim: prototypes !== undefined ? Math.max(16, prototypes >> 4) : 64,
      epochs: 2,
      max_steps: opts[setting === 'frozen' ? 'frozenSteps' : 'fullSteps'] ?? 16,
      local_crops_number: 2,
      log_every: 4,
      eval_train_max: 256,
      eval_test_max: 128,
      ...(setting === 'full' ? { hidden_dim: 32, bottleneck_dim: 16 } : {}),
    });
  }
  // Last, so a swept value holds even where quick mode shrinks the run.
  if (sweep) Object.assign(cfg, sweep);
  validate({ ...DEFAULTS, ...cfg });
  return cfg;
}

/** Full runs name their head size: one grid holds several. */
export function runName(
  setting: Setting,
  data: DataKind,
  method: Method,
  koleoProto: number,
  seed: number,
  prototypes?: number,
  sweep?: Partial<Record<FlagName, SweepValue>>,
): string {
  return `${setting}-${prototypes !== undefined ? `k${prototypes}-` : ''}${data}-${method}${koleoProto > 0 ? '-kp' : ''}${sweepSuffix(sweep, method)}-s${seed}`;
}

/** The grid in the order it runs: the main comparison seed by seed, then the variants. */
export function experimentGrid(opts: GridOptions): ExperimentRun[] {
  const runs: ExperimentRun[] = [];
  const ks = fullKs(opts);
  const names = new Set<string>();
  const cell = (
    tier: Tier,
    setting: Setting,
    data: DataKind,
    method: Method,
    kp: number,
    seed: number,
    k: number | undefined,
    sweep?: Partial<Record<FlagName, SweepValue>>,
  ) => {
    let config;
    try {
      config = runConfig(setting, data, method, kp, seed, opts, k, sweep);
    } catch (e) {
      if (!sweep) throw e;
      const [f, v] = Object.entries(sweep)[0];
      throw new Error(
        `experiments: --sweep ${f}=${String(v)} on ${setting} ${method}: ${(e as Error).message} (--sweep_methods chooses the methods a sweep applies to)`,
      );
    }
    const prototypes = config.out_dim ?? DEFAULTS.out_dim;
    const name = runName(setting, data, method, kp, seed, k === undefined ? undefined : prototypes, sweep);
    if (names.has(name)) return;
    names.add(name);
    runs.push({
      name,
      setting,
      prototypes,
      data,
      method,
      koleoProto: kp,
      seed,
      tier,
      config,
      ...(sweep ? { sweep } : {}),
    });
  };
  const push = (tier: Tier, setting: Setting, data: DataKind, method: Method, kp: number, seed: number, k?: number) => {
    cell(tier, setting, data, method, kp, seed, k);
    if (method === 'init' || (opts.sweepMethods && !opts.sweepMethods.includes(method))) return;
    const plain = runConfig(setting, data, method, kp, seed, opts, k);
    for (const sw of opts.sweeps ?? [])
      for (const v of sw.values)
        if (JSON.stringify(v) !== JSON.stringify(effectiveValue(plain, sw.flag)))
          cell(tier, setting, data, method, kp, seed, k, { [sw.flag]: v });
  };
  const dataKinds = opts.data ?? (['balanced', 'longtail'] as const);
  const kps = opts.koleoProtos ?? [0, KOLEO_PROTO];
  const add = (tier: Tier, setting: Setting, methods: Method[], seeds: number, k?: number) => {
    for (let seed = 0; seed < seeds; seed++) {
      for (const data of dataKinds) {
        for (const method of methods)
          for (const kp of method === 'em' ? [0] : kps) push(tier, setting, data, method, kp, seed, k);
      }
    }
  };
  // Frozen runs are fast; the main comparison of both settings comes before any variant, and the
  // first head size's seeds before a larger one's.
  for (const m of opts.frozenMethods ?? [])
    if (!FROZEN_METHODS.includes(m))
      throw new Error(`experiments: --frozen_methods takes ${FROZEN_METHODS.join(', ')}, got '${m}'`);
  const frozenMain = opts.frozenMethods ?? MAIN.frozen;
  add('main', 'frozen', frozenMain, opts.seeds);
  // The untrained baselines first: they take a minute and every trained cell is read against them.
  for (let seed = 0; seed < opts.seeds; seed++) {
    for (const data of dataKinds) push('main', 'full', data, 'init', 0, seed, ks[0]);
  }
  for (const m of opts.fullMethods ?? [])
    if (!FULL_METHODS.includes(m))
      throw new Error(`experiments: --methods takes ${FULL_METHODS.join(', ')}, got '${m}'`);
  for (const k of ks) add('main', 'full', opts.fullMethods ?? MAIN.full, opts.seeds, k);
  add(
    'variant',
    'frozen',
    VARIANTS.frozen.filter((m) => !frozenMain.includes(m)),
    opts.variantSeeds,
  );
  // A variant promoted into the main comparison by --methods runs there only.
  const main = opts.fullMethods ?? MAIN.full;
  add(
    'variant',
    'full',
    VARIANTS.full.filter((m) => !main.includes(m)),
    opts.variantSeeds,
    ks[0],
  );
  return runs;
}
