// Every training flag, declared once: its kind, default, choices and one line of help, and whether it
// changes what a run computes. TrainConfig, DEFAULTS, the parser's kinds and choices, `train --help`
// and the list of flags a resume may change freely are all derived from this table, so a new flag is
// one line here (plus its validation rule in config.ts when it has one beyond kind and choices).
// DINO's flag names wherever the concept is the same.

export type Kind = 'int' | 'float' | 'bool' | 'string' | 'pair';

interface Flag {
  kind: Kind;
  default: unknown;
  choices?: readonly string[];
  help: string;
  /** Section of `train --help`. */
  group: 'model' | 'loss' | 'optimisation' | 'augmentation' | 'data' | 'run' | 'diagnostics';
  /** False for flags that do not change what is computed (where it runs, how it logs, when it stops). */
  results?: false;
}

export const FLAGS = {
  preset: {
    kind: 'string',
    default: '',
    group: 'run',
    help: "the named recipe the other values started from ('' for the defaults)",
  },
  arch: {
    kind: 'string',
    default: 'vit_cpu',
    choices: ['vit_cpu', 'vit_tiny', 'vit_small', 'resnet_cpu', 'resnet18', 'resnet50', 'pca'],
    group: 'model',
    help: 'backbone; pca is a frozen PCA projection (prototypes-only experiments)',
  },
  patch_size: { kind: 'int', default: 4, group: 'model', help: 'ViT patch size in pixels' },
  out_dim: { kind: 'int', default: 1024, group: 'model', help: 'K, the number of prototypes of the DINO head' },
  hidden_dim: { kind: 'int', default: 256, group: 'model', help: "width of the head's hidden layers" },
  bottleneck_dim: { kind: 'int', default: 64, group: 'model', help: 'dimension the prototypes live in' },
  head_layers: { kind: 'int', default: 3, group: 'model', help: 'MLP layers of the head before the prototypes' },
  norm_last_layer: {
    kind: 'bool',
    default: true,
    group: 'model',
    help: 'weight-normalised prototypes with the norm fixed at 1 (DINO)',
  },
  use_bn_in_head: {
    kind: 'bool',
    default: false,
    group: 'model',
    help: "BatchNorm in the head's hidden layers (DINO's ResNet recipe)",
  },
  drop_path_rate: { kind: 'float', default: 0, group: 'model', help: 'stochastic depth of the ViT blocks' },
  freeze_backbone: { kind: 'bool', default: false, group: 'model', help: 'train the head only, on a frozen backbone' },
  prototypes_only: {
    kind: 'bool',
    default: false,
    group: 'model',
    help: 'the head is the prototype matrix alone, on the normalised backbone features (no MLP); with --freeze_backbone or --arch pca only the prototypes train',
  },
  pca_dim: { kind: 'int', default: 64, group: 'model', help: 'feature dimension of --arch pca' },
  prototypes: {
    kind: 'string',
    default: 'gradient',
    choices: ['gradient', 'em'],
    group: 'model',
    help: "how the prototypes learn: by gradient (DINO), or as the means of a Gaussian mixture fitted by online EM to the teacher's bottleneck features (docs/em-prototypes.md)",
  },
  em_eta: {
    kind: 'float',
    default: 0.02,
    group: 'model',
    help: "--prototypes em: forgetting per sample of a component's statistics, (1 - eta)^(its soft count this step)",
  },
  em_var_floor: {
    kind: 'float',
    default: 1e-4,
    group: 'model',
    help: '--prototypes em: floor of every per-dimension variance of the mixture',
  },
  em_beta_start: {
    kind: 'float',
    default: 0.2,
    group: 'model',
    help: '--prototypes em: annealing inverse temperature of the E-step at step 0, rising linearly to 1',
  },
  em_beta_warmup: {
    kind: 'int',
    default: 500,
    group: 'model',
    help: '--prototypes em: steps over which the E-step annealing rises to 1 (0: no annealing)',
  },
  em_target: {
    kind: 'string',
    default: 'softmax',
    choices: ['softmax', 'responsibilities'],
    group: 'loss',
    help: "--prototypes em: the teacher target, its softmax over the fitted prototypes (centred as --centering says) or the mixture's responsibilities",
  },
  momentum_teacher: {
    kind: 'float',
    default: 0.996,
    group: 'loss',
    help: 'teacher EMA momentum at the start (cosine to 1)',
  },
  warmup_teacher_temp: {
    kind: 'float',
    default: 0.04,
    group: 'loss',
    help: 'teacher temperature at the start of its warm-up',
  },
  teacher_temp: { kind: 'float', default: 0.04, group: 'loss', help: 'teacher temperature after its warm-up' },
  warmup_teacher_temp_epochs: {
    kind: 'int',
    default: 0,
    group: 'loss',
    help: "epochs of the teacher temperature's linear warm-up",
  },
  student_temp: { kind: 'float', default: 0.1, group: 'loss', help: 'student temperature' },
  center_momentum: { kind: 'float', default: 0.9, group: 'loss', help: "momentum of the teacher output's centre" },
  centering: {
    kind: 'string',
    default: 'centering',
    choices: ['centering', 'sinkhorn', 'memax'],
    group: 'loss',
    help: "what keeps the teacher from collapsing: DINO's centring, Sinkhorn-Knopp or a mean-entropy bonus",
  },
  koleo_proto: {
    kind: 'float',
    default: 0,
    group: 'loss',
    help: 'weight of KoLeo-proto, the Kozachenko-Leonenko entropy of the prototypes',
  },
  koleo_proto_exact_every: {
    kind: 'int',
    default: 0,
    group: 'loss',
    help: "KoLeo-proto's candidate cache: an exact neighbour search every N steps, the cached candidates between (0 or 1: off)",
  },
  koleo_proto_candidates: {
    kind: 'int',
    default: 16,
    group: 'loss',
    help: 'neighbour candidates each prototype keeps between exact searches',
  },
  koleo_features: {
    kind: 'float',
    default: 0,
    group: 'loss',
    help: "weight of KoLeo on the student's features (DINOv2)",
  },
  vmf: {
    kind: 'bool',
    default: false,
    group: 'loss',
    help: 'DINO-vMF: unnormalised prototypes with the vMF log-normaliser (needs --norm_last_layer false)',
  },
  ibot: {
    kind: 'bool',
    default: false,
    group: 'loss',
    help: "iBOT's masked patch loss on the student's global crops (ViT only)",
  },
  ibot_loss_weight: { kind: 'float', default: 1, group: 'loss', help: 'weight of the iBOT patch loss' },
  ibot_mask_ratio: {
    kind: 'pair',
    default: [0.1, 0.5],
    group: 'loss',
    help: 'range of the masked fraction of patches in a masked crop',
  },
  ibot_mask_prob: {
    kind: 'float',
    default: 0.5,
    group: 'loss',
    help: 'probability that a global crop is masked at all',
  },
  ibot_teacher_patch_temp: {
    kind: 'float',
    default: 0.07,
    group: 'loss',
    help: 'teacher temperature of the patch loss',
  },
  ibot_student_patch_temp: {
    kind: 'float',
    default: 0.1,
    group: 'loss',
    help: 'student temperature of the patch loss',
  },
  lr: {
    kind: 'float',
    default: 0.0005,
    group: 'optimisation',
    help: 'peak learning rate at batch 256 (scaled by batch_size / 256)',
  },
  min_lr: {
    kind: 'float',
    default: 1e-6,
    group: 'optimisation',
    help: 'learning rate at the end of the cosine schedule',
  },
  warmup_epochs: { kind: 'int', default: 0, group: 'optimisation', help: 'epochs of linear learning-rate warm-up' },
  weight_decay: {
    kind: 'float',
    default: 0.04,
    group: 'optimisation',
    help: 'AdamW weight decay at the start (cosine to weight_decay_end)',
  },
  weight_decay_end: { kind: 'float', default: 0.4, group: 'optimisation', help: 'weight decay at the end' },
  clip_grad: { kind: 'float', default: 3.0, group: 'optimisation', help: 'per-parameter gradient norm clip (0: off)' },
  batch_size: { kind: 'int', default: 64, group: 'optimisation', help: 'images per step' },
  accum_steps: {
    kind: 'int',
    default: 1,
    group: 'optimisation',
    help: 'micro-batches whose gradients accumulate into one optimizer step',
  },
  epochs: { kind: 'int', default: 1, group: 'optimisation', help: 'epochs the schedules span' },
  freeze_last_layer: {
    kind: 'int',
    default: 1,
    group: 'optimisation',
    help: 'epochs during which the prototypes do not train',
  },
  max_steps: {
    kind: 'int',
    default: 0,
    group: 'run',
    results: false,
    help: 'stop after this many steps in total (0: every epoch); the schedules still span --epochs',
  },
  global_crops_size: {
    kind: 'int',
    default: 28,
    group: 'augmentation',
    help: 'side of the two global crops in pixels',
  },
  local_crops_size: { kind: 'int', default: 12, group: 'augmentation', help: 'side of the local crops in pixels' },
  global_crops_scale: { kind: 'pair', default: [0.4, 1], group: 'augmentation', help: 'area range of a global crop' },
  local_crops_number: { kind: 'int', default: 6, group: 'augmentation', help: 'local crops per image' },
  local_crops_scale: { kind: 'pair', default: [0.05, 0.4], group: 'augmentation', help: 'area range of a local crop' },
  color_jitter_prob: {
    kind: 'float',
    default: 0.8,
    group: 'augmentation',
    help: 'probability of colour jitter on each crop (DINO 0.8)',
  },
  global_blur_prob: {
    kind: 'pair',
    default: [1, 0.1],
    group: 'augmentation',
    help: 'Gaussian blur probability of global crop 1 and 2 (DINO 1.0 0.1)',
  },
  local_blur_prob: {
    kind: 'float',
    default: 0.5,
    group: 'augmentation',
    help: 'Gaussian blur probability of each local crop (DINO 0.5)',
  },
  blur_sigma: { kind: 'pair', default: [0.1, 2], group: 'augmentation', help: 'blur sigma range in output pixels' },
  solarize_prob: {
    kind: 'float',
    default: 0.2,
    group: 'augmentation',
    help: 'solarization probability of global crop 2 (DINO 0.2)',
  },
  dataset: {
    kind: 'string',
    default: 'fashion-mnist',
    choices: ['fashion-mnist', 'idx', 'cifar10', 'folder'],
    group: 'data',
    help: 'training data',
  },
  data_path: {
    kind: 'string',
    default: '',
    group: 'data',
    results: false,
    help: 'files of --dataset idx, cifar10 or folder',
  },
  long_tail: {
    kind: 'float',
    default: 1,
    group: 'data',
    help: 'imbalance ratio of a long-tailed subsample (1: balanced)',
  },
  subset: { kind: 'int', default: 0, group: 'data', help: 'train on the first N images only (0: all)' },
  seed: { kind: 'int', default: 0, group: 'run', help: 'seed of initialisation, data order and augmentation' },
  backend: {
    kind: 'string',
    default: 'auto',
    choices: ['wasm', 'webgpu', 'auto'],
    group: 'run',
    results: false,
    help: 'where kernels run (auto: WebGPU if an adapter exists)',
  },
  threads: { kind: 'int', default: 0, group: 'run', results: false, help: 'wasm worker threads (0: all cores)' },
  output_dir: {
    kind: 'string',
    default: 'runs/dino',
    group: 'run',
    results: false,
    help: 'run directory (checkpoint, log.jsonl)',
  },
  log_every: { kind: 'int', default: 10, group: 'run', results: false, help: 'steps between log records' },
  save_every: {
    kind: 'int',
    default: 0,
    group: 'run',
    results: false,
    help: 'also save the checkpoint every N steps (0: at the end of each epoch)',
  },
  resume: {
    kind: 'bool',
    default: false,
    group: 'run',
    results: false,
    help: 'continue from the checkpoint in --output_dir',
  },
  init_from: {
    kind: 'string',
    default: '',
    group: 'run',
    help: "start from weights trained elsewhere: DINO's checkpoint.pth or a protodino checkpoint (training continues), or a backbone state dict (.pth / .safetensors; fresh head). A checkpoint in --output_dir with --resume takes precedence",
  },
  on_nan: {
    kind: 'string',
    default: 'stop',
    choices: ['stop', 'skip'],
    group: 'run',
    results: false,
    help: "a non-finite loss or gradient: 'stop' naming the step and tensor, or 'skip' the update (stops after 10 in a row)",
  },
  quiet: { kind: 'bool', default: false, group: 'run', results: false, help: 'no progress line' },
  profile: {
    kind: 'bool',
    default: false,
    group: 'run',
    results: false,
    help: 'time every kernel by family and print the table at the end',
  },
  collapse_window: {
    kind: 'int',
    default: 200,
    group: 'diagnostics',
    results: false,
    help: 'steps with the loss within 1% of ln K before the uniform-collapse alarm (0: off)',
  },
  eps_metric: {
    kind: 'string',
    default: 'euclidean',
    choices: ['euclidean', 'cosine'],
    group: 'diagnostics',
    results: false,
    help: 'the unique-prototype threshold ε: Euclidean distance between unit prototypes, or 1 - cosine (logged as eps_metric)',
  },
  eval_every_epoch: {
    kind: 'bool',
    default: true,
    group: 'diagnostics',
    results: false,
    help: 'unique prototypes, usage and k-NN after each epoch',
  },
  eval_train_max: {
    kind: 'int',
    default: 5000,
    group: 'diagnostics',
    results: false,
    help: 'size of the per-epoch k-NN bank (first N training images)',
  },
  eval_test_max: {
    kind: 'int',
    default: 1000,
    group: 'diagnostics',
    results: false,
    help: 'held-out images of the per-epoch k-NN and usage',
  },
} as const satisfies Record<string, Flag>;

type Spec = (typeof FLAGS)[keyof typeof FLAGS];
type ValueOf<S> = S extends { choices: readonly (infer C)[] }
  ? C
  : S extends { kind: 'int' | 'float' }
    ? number
    : S extends { kind: 'bool' }
      ? boolean
      : S extends { kind: 'pair' }
        ? [number, number]
        : string;

export type FlagName = keyof typeof FLAGS;
export type FlagValues = { -readonly [K in FlagName]: ValueOf<(typeof FLAGS)[K]> };

export const FLAG_NAMES = Object.keys(FLAGS) as FlagName[];

export function flagSpec(name: FlagName): Spec & Flag {
  return FLAGS[name];
}

/** Flags that do not change what a run computes: a resume may change them without a warning. */
export const RUN_ONLY: readonly FlagName[] = FLAG_NAMES.filter((k) => (FLAGS[k] as Flag).results === false);

/** Every default, fresh (pairs copied, so callers may not change the table through them). */
export function flagDefaults(): FlagValues {
  return Object.fromEntries(
    FLAG_NAMES.map((k) => {
      const d = FLAGS[k].default as unknown;
      return [k, Array.isArray(d) ? [...d] : d];
    }),
  ) as FlagValues;
}

const GROUP_TITLE: Record<Flag['group'], string> = {
  model: 'model',
  loss: 'DINO loss and regularisers',
  optimisation: 'optimisation',
  augmentation: 'multi-crop augmentation',
  data: 'data',
  run: 'run',
  diagnostics: 'diagnostics during training',
};

/** The flag section of `train --help`: grouped, each flag with its default, choices and help. */
export function flagHelp(): string {
  const show = (v: unknown) => (Array.isArray(v) ? v.join(' ') : v === '' ? "''" : String(v));
  const out: string[] = [];
  for (const group of Object.keys(GROUP_TITLE) as Flag['group'][]) {
    out.push(`${GROUP_TITLE[group]}:`);
    for (const k of FLAG_NAMES) {
      const f = FLAGS[k] as Flag;
      if (f.group !== group) continue;
      const head = `  --${k} ${f.choices ? f.choices.join('|') : `<${f.kind}>`}`;
      out.push(`${head.padEnd(44)} ${f.help} (default ${show(f.default)})`);
    }
    out.push('');
  }
  return out.join('\n');
}
