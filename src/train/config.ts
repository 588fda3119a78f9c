// Training configuration: the flags declared in flags.ts, parsed from the command line and validated
// up front with errors that name the flag and the allowed values.
import { FLAG_NAMES, flagDefaults, flagSpec, type FlagValues, type Kind } from './flags.js';
import { PRESETS, presetNames } from './presets.js';

export type TrainConfig = FlagValues;
export type Arch = TrainConfig['arch'];
export type Regularizer = TrainConfig['centering'];

export const DEFAULTS: TrainConfig = flagDefaults();

export class ConfigError extends Error {
  constructor(flag: string, message: string) {
    super(`--${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

const KINDS = Object.fromEntries(FLAG_NAMES.map((k) => [k, flagSpec(k).kind])) as Record<keyof TrainConfig, Kind>;
const CHOICES = Object.fromEntries(
  FLAG_NAMES.flatMap((k) => {
    const c = (flagSpec(k) as { choices?: readonly string[] }).choices;
    return c ? [[k, c]] : [];
  }),
) as Partial<Record<keyof TrainConfig, readonly string[]>>;

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
    if (!kind)
      throw new ConfigError(
        name,
        `unknown flag; known flags: ${Object.keys(KINDS)
          .map((k) => `--${k}`)
          .join(' ')}`,
      );
    if (kind === 'bool') {
      if (value === undefined && !negate && i + 1 < argv.length && /^(true|false)$/i.test(argv[i + 1]))
        value = argv[++i];
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

/**
 * One flag's value from its text, as the command line would parse it: its kind and choices checked
 * here, ranges and combinations left to validate() on the whole config.
 */
export function parseFlagValue<K extends keyof TrainConfig>(name: K, text: string): TrainConfig[K] {
  const kind = KINDS[name];
  if (!kind) throw new ConfigError(name, 'unknown flag');
  const v = kind === 'bool' ? parseBool(name, text) : parseValue(name, kind, text);
  const choices = CHOICES[name];
  if (choices && !choices.includes(v as string))
    throw new ConfigError(name, `must be one of ${choices.join(', ')}, got '${text}'`);
  return v as TrainConfig[K];
}

function findPreset(argv: string[]): string | null {
  let found: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--preset(?:=(.*))?$/s.exec(argv[i]);
    if (!m) continue;
    const name = m[1] ?? argv[i + 1];
    if (name === undefined || (m[1] === undefined && name.startsWith('--')))
      throw new ConfigError('preset', `needs a name; known presets: ${presetNames().join(', ')}`);
    if (found !== null && found !== name)
      throw new ConfigError('preset', `given twice ('${found}' and '${name}'); a run starts from one recipe`);
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
      const parts = v
        .split(/[\s,]+/)
        .filter((s) => s.length > 0)
        .map(Number);
      if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)))
        throw new ConfigError(name, `expects two numbers (e.g. 0.4 1.0), got '${v}'`);
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
  if (cfg.preset !== '' && !PRESETS[cfg.preset])
    throw new ConfigError('preset', `unknown preset '${cfg.preset}'; known presets: ${presetNames().join(', ')}`);
  for (const [name, choices] of Object.entries(CHOICES)) {
    const v = cfg[name as keyof TrainConfig] as string;
    if (!choices!.includes(v)) throw new ConfigError(name, `must be one of ${choices!.join(', ')}, got '${v}'`);
  }
  const positive: (keyof TrainConfig)[] = [
    'patch_size',
    'out_dim',
    'hidden_dim',
    'bottleneck_dim',
    'head_layers',
    'pca_dim',
    'batch_size',
    'accum_steps',
    'epochs',
    'global_crops_size',
    'local_crops_size',
    'log_every',
    'eval_train_max',
    'eval_test_max',
  ];
  for (const k of positive) range(cfg, k, 1, 1 << 30, 'a positive integer');
  range(cfg, 'out_dim', 2, 1 << 20, 'at least 2 (prototypes)');
  range(cfg, 'batch_size', 2, 1 << 20, 'at least 2');
  range(cfg, 'drop_path_rate', 0, 0.99);
  range(cfg, 'momentum_teacher', 0, 1);
  range(cfg, 'center_momentum', 0, 1);
  for (const k of [
    'warmup_teacher_temp',
    'teacher_temp',
    'student_temp',
    'ibot_teacher_patch_temp',
    'ibot_student_patch_temp',
  ] as const)
    range(cfg, k, 1e-4, 100, 'in (0, 100]');
  for (const k of [
    'koleo_proto',
    'koleo_features',
    'ibot_loss_weight',
    'lr',
    'min_lr',
    'weight_decay',
    'weight_decay_end',
    'clip_grad',
  ] as const) {
    range(cfg, k, 0, 1e6, 'non-negative');
  }
  for (const k of [
    'warmup_epochs',
    'warmup_teacher_temp_epochs',
    'freeze_last_layer',
    'max_steps',
    'local_crops_number',
    'seed',
    'threads',
    'subset',
    'save_every',
    'collapse_window',
  ] as const) {
    range(cfg, k, 0, 2 ** 31, 'a non-negative integer');
  }
  range(cfg, 'koleo_proto_exact_every', 0, 2 ** 31, 'a non-negative integer (0 or 1: no candidate cache)');
  range(cfg, 'koleo_proto_candidates', 1, 4096, 'an integer in [1, 4096]');
  if (cfg.koleo_proto_exact_every > 1 && !(cfg.koleo_proto > 0)) {
    throw new ConfigError(
      'koleo_proto_exact_every',
      `(${cfg.koleo_proto_exact_every}) caches KoLeo-proto's neighbours: it needs --koleo_proto > 0`,
    );
  }
  if (cfg.koleo_proto_exact_every > 1 && cfg.koleo_proto_candidates >= cfg.out_dim) {
    throw new ConfigError(
      'koleo_proto_candidates',
      `(${cfg.koleo_proto_candidates}) must be below --out_dim (${cfg.out_dim}): a prototype has ${cfg.out_dim - 1} others`,
    );
  }
  if (cfg.warmup_epochs > cfg.epochs)
    throw new ConfigError('warmup_epochs', `(${cfg.warmup_epochs}) cannot exceed --epochs (${cfg.epochs})`);
  if (cfg.warmup_teacher_temp_epochs > cfg.epochs) {
    throw new ConfigError(
      'warmup_teacher_temp_epochs',
      `(${cfg.warmup_teacher_temp_epochs}) cannot exceed --epochs (${cfg.epochs})`,
    );
  }
  for (const k of ['global_crops_scale', 'local_crops_scale'] as const) {
    const [a, b] = cfg[k];
    if (!(a > 0 && a <= b && b <= 1)) throw new ConfigError(k, `must be two numbers 0 < min ≤ max ≤ 1, got ${a} ${b}`);
  }
  if (cfg.subset > 0 && cfg.subset < cfg.batch_size)
    throw new ConfigError('subset', `(${cfg.subset}) is smaller than --batch_size (${cfg.batch_size}): no full batch`);
  if (cfg.subset > 0 && cfg.subset < cfg.batch_size * cfg.accum_steps) {
    throw new ConfigError(
      'accum_steps',
      `(${cfg.accum_steps}) × --batch_size (${cfg.batch_size}) exceeds --subset (${cfg.subset}): no full optimizer step per epoch`,
    );
  }
  range(cfg, 'ibot_mask_prob', 0, 1);
  for (const k of ['color_jitter_prob', 'local_blur_prob', 'solarize_prob'] as const)
    range(cfg, k, 0, 1, 'a probability in [0, 1]');
  if (!cfg.global_blur_prob.every((p) => p >= 0 && p <= 1))
    throw new ConfigError(
      'global_blur_prob',
      `must be two probabilities in [0, 1], got ${cfg.global_blur_prob.join(' ')}`,
    );
  if (!(cfg.blur_sigma[0] > 0 && cfg.blur_sigma[0] <= cfg.blur_sigma[1]))
    throw new ConfigError('blur_sigma', `must be two numbers 0 < min ≤ max, got ${cfg.blur_sigma.join(' ')}`);
  {
    const [a, b] = cfg.ibot_mask_ratio;
    if (!(a >= 0 && a <= b && b < 1))
      throw new ConfigError('ibot_mask_ratio', `must be two numbers 0 ≤ min ≤ max < 1, got ${a} ${b}`);
  }
  if (!(cfg.long_tail >= 1))
    throw new ConfigError('long_tail', `is an imbalance ratio ≥ 1 (1 = balanced), got ${cfg.long_tail}`);
  const vit = cfg.arch.startsWith('vit');
  if (vit && cfg.global_crops_size % cfg.patch_size !== 0) {
    throw new ConfigError(
      'global_crops_size',
      `(${cfg.global_crops_size}) must be a multiple of --patch_size (${cfg.patch_size})`,
    );
  }
  if (vit && cfg.local_crops_number > 0 && cfg.local_crops_size % cfg.patch_size !== 0) {
    throw new ConfigError(
      'local_crops_size',
      `(${cfg.local_crops_size}) must be a multiple of --patch_size (${cfg.patch_size})`,
    );
  }
  if (cfg.ibot && !vit)
    throw new ConfigError(
      'ibot',
      `masks patch tokens and needs a ViT --arch (vit_cpu, vit_tiny, vit_small), got '${cfg.arch}'`,
    );
  if (cfg.ibot && cfg.freeze_backbone)
    throw new ConfigError(
      'ibot',
      'trains the mask token and the backbone; it cannot be combined with --freeze_backbone',
    );
  if (cfg.ibot && cfg.prototypes_only)
    throw new ConfigError('ibot', 'needs the DINO head on patch tokens; it cannot be combined with --prototypes_only');
  if (cfg.vmf && cfg.norm_last_layer) {
    throw new ConfigError('vmf', 'learns the prototype norms κ_k = ‖w_k‖: add --norm_last_layer false');
  }
  // p, the dimension of the unit vectors the prototypes score: the head's bottleneck, or with
  // --prototypes_only the backbone features (ViT and ResNet features have ≥ 64 dimensions).
  const vmfDim = !cfg.prototypes_only ? cfg.bottleneck_dim : cfg.arch === 'pca' ? cfg.pca_dim : Infinity;
  if (cfg.vmf && vmfDim < 8) {
    throw new ConfigError(
      'vmf',
      'needs an embedding dimension p ≥ 8 for its log-normaliser approximation (--bottleneck_dim / --pca_dim)',
    );
  }
  validateEm(cfg);
  if (cfg.dataset !== 'fashion-mnist' && cfg.data_path === '')
    throw new ConfigError('data_path', `is required for --dataset ${cfg.dataset}`);
  return cfg;
}

const EM_FLAGS = ['em_eta', 'em_var_floor', 'em_beta_start', 'em_beta_warmup', 'em_target'] as const;

/** --prototypes em and its flags: ranges, and the combinations that have no meaning with it. */
function validateEm(cfg: TrainConfig): void {
  if (cfg.prototypes !== 'em') {
    const set = EM_FLAGS.filter((k) => cfg[k] !== DEFAULTS[k]);
    if (set.length) throw new ConfigError(set[0], `(${String(cfg[set[0]])}) only applies with --prototypes em`);
    return;
  }
  range(cfg, 'em_eta', 1e-9, 1 - 1e-9, 'in (0, 1)');
  range(cfg, 'em_var_floor', 1e-12, 1, 'in (0, 1]');
  range(cfg, 'em_beta_start', 1e-6, 1, 'in (0, 1]');
  range(cfg, 'em_beta_warmup', 0, 2 ** 31, 'a non-negative integer');
  if (cfg.koleo_proto > 0)
    throw new ConfigError(
      'koleo_proto',
      'spreads the prototypes by gradient, but with --prototypes em no gradient reaches them (EM fits them)',
    );
  if (cfg.vmf)
    throw new ConfigError(
      'vmf',
      "learns the prototypes' norms by gradient; with --prototypes em EM fits the prototypes",
    );
  if (cfg.em_target === 'responsibilities' && cfg.centering === 'sinkhorn')
    throw new ConfigError(
      'em_target',
      'responsibilities replaces the teacher target, so --centering sinkhorn would be ignored: use --em_target softmax with it',
    );
}
