// Training configuration: DINO's flag names where the concept is the same, defaults for this CPU,
// and up-front validation that names the flag and the allowed values.
import { PRESETS, presetNames } from './presets.js';

export type Arch = 'vit_cpu' | 'vit_tiny' | 'vit_small' | 'resnet_cpu' | 'resnet18' | 'resnet50' | 'pca';
export type Regulariser = 'centering' | 'sinkhorn' | 'memax';

export interface TrainConfig {
  /** The named recipe (src/train/presets.ts) the other values started from; '' for the defaults. */
  preset: string;
  // model
  arch: Arch;
  patch_size: number;
  out_dim: number;
  hidden_dim: number;
  bottleneck_dim: number;
  head_layers: number;
  norm_last_layer: boolean;
  /** BatchNorm in the head's hidden layers (DINO's --use_bn_in_head, used in its ResNet recipe). */
  use_bn_in_head: boolean;
  drop_path_rate: number;
  /** Train the head only, on a frozen backbone (random init or --arch pca). */
  freeze_backbone: boolean;
  /** Train the prototype matrix alone on the L2-normalised frozen features (no MLP). */
  prototypes_only: boolean;
  /** Feature dimension of --arch pca. */
  pca_dim: number;
  // DINO loss
  momentum_teacher: number;
  warmup_teacher_temp: number;
  teacher_temp: number;
  warmup_teacher_temp_epochs: number;
  student_temp: number;
  center_momentum: number;
  centering: Regulariser;
  koleo_proto: number;
  /** KoLeo-proto's candidate cache: an exact neighbour search every N steps, in between each
   *  prototype searches only its --koleo_proto_candidates nearest from the last one; 0 or 1 = off. */
  koleo_proto_exact_every: number;
  koleo_proto_candidates: number;
  koleo_features: number;
  /** DINO-vMF (Govindarajan et al., ICLR 2023): unnormalised prototypes with the vMF log-normaliser per logit. */
  vmf: boolean;
  /** iBOT's masked patch loss on the student's global crops (ViT only). */
  ibot: boolean;
  ibot_loss_weight: number;
  /** Range of the masked fraction of patches in a masked crop. */
  ibot_mask_ratio: [number, number];
  /** Probability that a global crop is masked at all. */
  ibot_mask_prob: number;
  ibot_teacher_patch_temp: number;
  ibot_student_patch_temp: number;
  // optimisation
  lr: number;
  min_lr: number;
  warmup_epochs: number;
  weight_decay: number;
  weight_decay_end: number;
  clip_grad: number;
  batch_size: number;
  /** Micro-batches (of batch_size) whose gradients accumulate into one optimizer step. */
  accum_steps: number;
  epochs: number;
  freeze_last_layer: number;
  /** Stop after this many steps in total (0: run every epoch). */
  max_steps: number;
  // multi-crop
  global_crops_size: number;
  local_crops_size: number;
  global_crops_scale: [number, number];
  local_crops_number: number;
  local_crops_scale: [number, number];
  /** Probability of ColorJitter (brightness/contrast/saturation/hue) on each crop (DINO 0.8). */
  color_jitter_prob: number;
  /** Gaussian blur probability of global crop 1 and global crop 2 (DINO 1.0 0.1). */
  global_blur_prob: [number, number];
  /** Gaussian blur probability of each local crop (DINO 0.5). */
  local_blur_prob: number;
  /** Gaussian blur sigma range in output pixels (DINO's 0.1–2 is for 224-pixel crops). */
  blur_sigma: [number, number];
  /** Solarization probability of global crop 2 (DINO 0.2). */
  solarize_prob: number;
  // data
  dataset: 'fashion-mnist' | 'idx' | 'cifar10' | 'folder';
  data_path: string;
  long_tail: number;
  /** Train on the first N images only (0: all); for quick runs and tests. */
  subset: number;
  // run
  seed: number;
  backend: 'wasm' | 'webgpu' | 'auto';
  threads: number;
  output_dir: string;
  log_every: number;
  /** Also save the checkpoint every N steps (0: only at the end of each epoch), so a killed run loses little. */
  save_every: number;
  resume: boolean;
  /**
   * When the loss or a gradient is not finite: 'stop' (DivergenceError naming the step and tensor)
   * or 'skip' the step's update (logged; stops after 10 skipped steps in a row).
   */
  on_nan: 'stop' | 'skip';
  quiet: boolean;
  /** Time every kernel of each step by kernel family and print the table at the end (slows WebGPU: kernels run one at a time). */
  profile: boolean;
  /**
   * Steps in a row with the DINO loss within 1% of ln K before the uniform-collapse alarm fires
   * (0: that alarm is off). The usage and partial alarms follow the per-epoch diagnostics.
   */
  collapse_window: number;
  // diagnostics after each epoch (unique prototypes, usage and k-NN on held-out images)
  eval_every_epoch: boolean;
  /** k-NN bank size (first N training images) and held-out query / usage size (first N test images). */
  eval_train_max: number;
  eval_test_max: number;
}

export const DEFAULTS: TrainConfig = {
  preset: '',
  arch: 'vit_cpu',
  patch_size: 4,
  out_dim: 1024,
  hidden_dim: 256,
  bottleneck_dim: 64,
  head_layers: 3,
  norm_last_layer: true,
  use_bn_in_head: false,
  drop_path_rate: 0,
  freeze_backbone: false,
  prototypes_only: false,
  pca_dim: 64,
  momentum_teacher: 0.996,
  warmup_teacher_temp: 0.04,
  teacher_temp: 0.04,
  warmup_teacher_temp_epochs: 0,
  student_temp: 0.1,
  center_momentum: 0.9,
  centering: 'centering',
  koleo_proto: 0,
  koleo_proto_exact_every: 0,
  koleo_proto_candidates: 16,
  koleo_features: 0,
  vmf: false,
  ibot: false,
  ibot_loss_weight: 1,
  ibot_mask_ratio: [0.1, 0.5],
  ibot_mask_prob: 0.5,
  ibot_teacher_patch_temp: 0.07,
  ibot_student_patch_temp: 0.1,
  lr: 0.0005,
  min_lr: 1e-6,
  warmup_epochs: 0,
  weight_decay: 0.04,
  weight_decay_end: 0.4,
  clip_grad: 3.0,
  batch_size: 64,
  accum_steps: 1,
  epochs: 1,
  freeze_last_layer: 1,
  max_steps: 0,
  global_crops_size: 28,
  local_crops_size: 12,
  global_crops_scale: [0.4, 1],
  local_crops_number: 6,
  local_crops_scale: [0.05, 0.4],
  color_jitter_prob: 0.8,
  global_blur_prob: [1, 0.1],
  local_blur_prob: 0.5,
  blur_sigma: [0.1, 2],
  solarize_prob: 0.2,
  dataset: 'fashion-mnist',
  data_path: '',
  long_tail: 1,
  subset: 0,
  seed: 0,
  backend: 'auto',
  threads: 0,
  output_dir: 'runs/dino',
  log_every: 10,
  save_every: 0,
  resume: false,
  on_nan: 'stop',
  quiet: false,
  profile: false,
  collapse_window: 200,
  eval_every_epoch: true,
  eval_train_max: 5000,
  eval_test_max: 1000,
};

export class ConfigError extends Error {
  constructor(flag: string, message: string) {
    super(`--${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Kind = 'int' | 'float' | 'bool' | 'string' | 'pair';
const KINDS: Record<keyof TrainConfig, Kind> = {
  preset: 'string',
  arch: 'string', patch_size: 'int', out_dim: 'int', hidden_dim: 'int', bottleneck_dim: 'int', head_layers: 'int',
  norm_last_layer: 'bool', use_bn_in_head: 'bool', drop_path_rate: 'float', freeze_backbone: 'bool', prototypes_only: 'bool', pca_dim: 'int',
  momentum_teacher: 'float', warmup_teacher_temp: 'float', teacher_temp: 'float', warmup_teacher_temp_epochs: 'int',
  student_temp: 'float', center_momentum: 'float', centering: 'string', koleo_proto: 'float', koleo_features: 'float',
  koleo_proto_exact_every: 'int', koleo_proto_candidates: 'int',
  vmf: 'bool', ibot: 'bool', ibot_loss_weight: 'float', ibot_mask_ratio: 'pair', ibot_mask_prob: 'float',
  ibot_teacher_patch_temp: 'float', ibot_student_patch_temp: 'float',
  lr: 'float', min_lr: 'float', warmup_epochs: 'int', weight_decay: 'float', weight_decay_end: 'float', clip_grad: 'float',
  batch_size: 'int', accum_steps: 'int', epochs: 'int', freeze_last_layer: 'int', max_steps: 'int', global_crops_size: 'int',
  local_crops_size: 'int', global_crops_scale: 'pair', local_crops_number: 'int', local_crops_scale: 'pair',
  color_jitter_prob: 'float', global_blur_prob: 'pair', local_blur_prob: 'float', blur_sigma: 'pair', solarize_prob: 'float',
  dataset: 'string', data_path: 'string', long_tail: 'float', subset: 'int', seed: 'int', backend: 'string', threads: 'int',
  output_dir: 'string', log_every: 'int', save_every: 'int', resume: 'bool', on_nan: 'string', quiet: 'bool', profile: 'bool', collapse_window: 'int',
  eval_every_epoch: 'bool', eval_train_max: 'int', eval_test_max: 'int',
};

const CHOICES: Partial<Record<keyof TrainConfig, readonly string[]>> = {
  arch: ['vit_cpu', 'vit_tiny', 'vit_small', 'resnet_cpu', 'resnet18', 'resnet50', 'pca'],
  centering: ['centering', 'sinkhorn', 'memax'],
  dataset: ['fashion-mnist', 'idx', 'cifar10', 'folder'],
  backend: ['wasm', 'webgpu', 'auto'],
  on_nan: ['stop', 'skip'],
};

/** The config a named preset starts from (DEFAULTS overridden by the preset), with `preset` set. */
export function presetConfig(name: string, base: TrainConfig = DEFAULTS): TrainConfig {
  const p = PRESETS[name];
  if (!p) throw new ConfigError('preset', `unknown preset '${name}'; known presets: ${presetNames().join(', ')}`);
  return { ...base, ...p.config, preset: name };
}

/**
 * Parses `--flag value` / `--flag=value` / `--bool_flag` / `--no-bool_flag` into a full config.
 * `--preset NAME` (anywhere on the line) replaces the base before the other flags apply, so flags
 * always override the preset whatever their order.
 */
export function parseTrainArgs(argv: string[], base: TrainConfig = DEFAULTS): TrainConfig {
  const presetName = findPreset(argv);
  const cfg: Record<string, unknown> = presetName !== null ? { ...presetConfig(presetName, base) } : { ...base };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(arg, `unexpected argument '${arg}' (flags start with --)`);
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    let negate = false;
    if (name.startsWith('no-') && KINDS[name.slice(3) as keyof TrainConfig] === 'bool') {
      name = name.slice(3);
      negate = true;
    }
    const kind = KINDS[name as keyof TrainConfig];
    if (name === 'preset') {
      if (value === undefined) i++;
      continue;
    }
    if (!kind) throw new ConfigError(name, `unknown flag; known flags: ${Object.keys(KINDS).map((k) => `--${k}`).join(' ')}`);
    if (kind === 'bool') {
      if (value === undefined && !negate && i + 1 < argv.length && /^(true|false)$/i.test(argv[i + 1])) value = argv[++i];
      cfg[name] = negate ? false : value === undefined ? true : parseBool(name, value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new ConfigError(name, 'needs a value');
      value = argv[++i];
      if (kind === 'pair' && i + 1 < argv.length && !argv[i + 1].startsWith('--')) value += ` ${argv[++i]}`;
    }
    cfg[name] = parseValue(name, kind, value);
  }
  return validate(cfg as unknown as TrainConfig);
}

function findPreset(argv: string[]): string | null {
  let found: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--preset(?:=(.*))?$/s.exec(argv[i]);
    if (!m) continue;
    const name = m[1] ?? argv[i + 1];
    if (name === undefined || (m[1] === undefined && name.startsWith('--'))) throw new ConfigError('preset', `needs a name; known presets: ${presetNames().join(', ')}`);
    if (found !== null && found !== name) throw new ConfigError('preset', `given twice ('${found}' and '${name}'); a run starts from one recipe`);
    found = name;
  }
  return found;
}

function parseBool(name: string, v: string): boolean {
  if (/^true$/i.test(v)) return true;
  if (/^false$/i.test(v)) return false;
  throw new ConfigError(name, `expects true or false, got '${v}'`);
}

function parseValue(name: string, kind: Kind, v: string): unknown {
  switch (kind) {
    case 'int': {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new ConfigError(name, `expects an integer, got '${v}'`);
      return n;
    }
    case 'float': {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new ConfigError(name, `expects a finite number, got '${v}'`);
      return n;
    }
    case 'pair': {
      const parts = v.split(/[\s,]+/).filter((s) => s.length > 0).map(Number);
      if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x))) throw new ConfigError(name, `expects two numbers (e.g. 0.4 1.0), got '${v}'`);
      return parts as [number, number];
    }
    default:
      return v;
  }
}

function range(cfg: TrainConfig, name: keyof TrainConfig, lo: number, hi: number, what = `in [${lo}, ${hi}]`): void {
  const v = cfg[name] as number;
  if (!(v >= lo && v <= hi)) throw new ConfigError(name, `must be ${what}, got ${v}`);
}

/** Checks types, ranges and combinations; returns the config unchanged when valid. */
export function validate(cfg: TrainConfig): TrainConfig {
  if (cfg.preset !== '' && !PRESETS[cfg.preset]) throw new ConfigError('preset', `unknown preset '${cfg.preset}'; known presets: ${presetNames().join(', ')}`);
  for (const [name, choices] of Object.entries(CHOICES)) {
    const v = cfg[name as keyof TrainConfig] as string;
    if (!choices!.includes(v)) throw new ConfigError(name, `must be one of ${choices!.join(', ')}, got '${v}'`);
  }
  const positive: (keyof TrainConfig)[] = ['patch_size', 'out_dim', 'hidden_dim', 'bottleneck_dim', 'head_layers', 'pca_dim',
    'batch_size', 'accum_steps', 'epochs', 'global_crops_size', 'local_crops_size', 'log_every', 'eval_train_max', 'eval_test_max'];
  for (const k of positive) range(cfg, k, 1, 1 << 30, 'a positive integer');
  range(cfg, 'out_dim', 2, 1 << 20, 'at least 2 (prototypes)');
  range(cfg, 'batch_size', 2, 1 << 20, 'at least 2');
  range(cfg, 'drop_path_rate', 0, 0.99);
  range(cfg, 'momentum_teacher', 0, 1);
  range(cfg, 'center_momentum', 0, 1);
  for (const k of ['warmup_teacher_temp', 'teacher_temp', 'student_temp', 'ibot_teacher_patch_temp', 'ibot_student_patch_temp'] as const) range(cfg, k, 1e-4, 100, 'in (0, 100]');
  for (const k of ['koleo_proto', 'koleo_features', 'ibot_loss_weight', 'lr', 'min_lr', 'weight_decay', 'weight_decay_end', 'clip_grad'] as const) {
    range(cfg, k, 0, 1e6, 'non-negative');
  }
  for (const k of ['warmup_epochs', 'warmup_teacher_temp_epochs', 'freeze_last_layer', 'max_steps', 'local_crops_number', 'seed', 'threads', 'subset', 'save_every', 'collapse_window'] as const) {
    range(cfg, k, 0, 2 ** 31, 'a non-negative integer');
  }
  range(cfg, 'koleo_proto_exact_every', 0, 2 ** 31, 'a non-negative integer (0 or 1: no candidate cache)');
  range(cfg, 'koleo_proto_candidates', 1, 4096, 'an integer in [1, 4096]');
  if (cfg.koleo_proto_exact_every > 1 && !(cfg.koleo_proto > 0)) {
    throw new ConfigError('koleo_proto_exact_every', `(${cfg.koleo_proto_exact_every}) caches KoLeo-proto's neighbours: it needs --koleo_proto > 0`);
  }
  if (cfg.koleo_proto_exact_every > 1 && cfg.koleo_proto_candidates >= cfg.out_dim) {
    throw new ConfigError('koleo_proto_candidates', `(${cfg.koleo_proto_candidates}) must be below --out_dim (${cfg.out_dim}): a prototype has ${cfg.out_dim - 1} others`);
  }
  if (cfg.warmup_epochs > cfg.epochs) throw new ConfigError('warmup_epochs', `(${cfg.warmup_epochs}) cannot exceed --epochs (${cfg.epochs})`);
  if (cfg.warmup_teacher_temp_epochs > cfg.epochs) {
    throw new ConfigError('warmup_teacher_temp_epochs', `(${cfg.warmup_teacher_temp_epochs}) cannot exceed --epochs (${cfg.epochs})`);
  }
  for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
    const [a, b] = cfg[k];
    if (!(a > 0 && a <= b && b <= 1)) throw new ConfigError(k, `must be two numbers 0 < min ≤ max ≤ 1, got ${a} ${b}`);
  }
  if (cfg.subset > 0 && cfg.subset < cfg.batch_size) throw new ConfigError('subset', `(${cfg.subset}) is smaller than --batch_size (${cfg.batch_size}): no full batch`);
  if (cfg.subset > 0 && cfg.subset < cfg.batch_size * cfg.accum_steps) {
    throw new ConfigError('accum_steps', `(${cfg.accum_steps}) × --batch_size (${cfg.batch_size}) exceeds --subset (${cfg.subset}): no full optimizer step per epoch`);
  }
  range(cfg, 'ibot_mask_prob', 0, 1);
  for (const k of ['color_jitter_prob', 'local_blur_prob', 'solarize_prob'] as const) range(cfg, k, 0, 1, 'a probability in [0, 1]');
  if (!cfg.global_blur_prob.every((p) => p >= 0 && p <= 1)) throw new ConfigError('global_blur_prob', `must be two probabilities in [0, 1], got ${cfg.global_blur_prob.join(' ')}`);
  if (!(cfg.blur_sigma[0] > 0 && cfg.blur_sigma[0] <= cfg.blur_sigma[1])) throw new ConfigError('blur_sigma', `must be two numbers 0 < min ≤ max, got ${cfg.blur_sigma.join(' ')}`);
  {
    const [a, b] = cfg.ibot_mask_ratio;
    if (!(a >= 0 && a <= b && b < 1)) throw new ConfigError('ibot_mask_ratio', `must be two numbers 0 ≤ min ≤ max < 1, got ${a} ${b}`);
  }
  if (!(cfg.long_tail >= 1)) throw new ConfigError('long_tail', `is an imbalance ratio ≥ 1 (1 = balanced), got ${cfg.long_tail}`);
  const vit = cfg.arch.startsWith('vit');
  if (vit && cfg.global_crops_size % cfg.patch_size !== 0) {
    throw new ConfigError('global_crops_size', `(${cfg.global_crops_size}) must be a multiple of --patch_size (${cfg.patch_size})`);
  }
  if (vit && cfg.local_crops_number > 0 && cfg.local_crops_size % cfg.patch_size !== 0) {
    throw new ConfigError('local_crops_size', `(${cfg.local_crops_size}) must be a multiple of --patch_size (${cfg.patch_size})`);
  }
  if (cfg.ibot && !vit) throw new ConfigError('ibot', `masks patch tokens and needs a ViT --arch (vit_cpu, vit_tiny, vit_small), got '${cfg.arch}'`);
  if (cfg.ibot && cfg.freeze_backbone) throw new ConfigError('ibot', 'trains the mask token and the backbone; it cannot be combined with --freeze_backbone');
  if (cfg.ibot && cfg.prototypes_only) throw new ConfigError('ibot', 'needs the DINO head on patch tokens; it cannot be combined with --prototypes_only');
  if (cfg.vmf && cfg.norm_last_layer) {
    throw new ConfigError('vmf', 'learns the prototype norms κ_k = ‖w_k‖: add --norm_last_layer false');
  }
  // p, the dimension of the unit vectors the prototypes score: the head's bottleneck, or with
  // --prototypes_only the backbone features (ViT and ResNet features have ≥ 64 dimensions).
  const vmfDim = !cfg.prototypes_only ? cfg.bottleneck_dim : cfg.arch === 'pca' ? cfg.pca_dim : Infinity;
  if (cfg.vmf && vmfDim < 8) {
    throw new ConfigError('vmf', 'needs an embedding dimension p ≥ 8 for its log-normaliser approximation (--bottleneck_dim / --pca_dim)');
  }
  if (cfg.prototypes_only && !cfg.freeze_backbone && cfg.arch !== 'pca') {
    throw new ConfigError('prototypes_only', 'trains the prototypes on frozen features: add --freeze_backbone or use --arch pca');
  }
  if (cfg.dataset !== 'fashion-mnist' && cfg.data_path === '') throw new ConfigError('data_path', `is required for --dataset ${cfg.dataset}`);
  return cfg;
}
