// What a reader sees instead of a log or config key: one table of human labels with units, and the
// number format each unit gets. Every table and plot of the report (and the experiments summary)
// takes its column names and axis titles from here, so a key never reaches the page raw.

/**
 * How a value is shown. fraction: a 0…1 share printed as a percentage with one decimal; count:
 * a whole number; seconds and ms: one decimal (two below 1); number: four significant digits.
 */
export type Unit = 'fraction' | 'count' | 'seconds' | 'ms' | 'number';

export interface Label {
  /** The column name or axis title, unit included ("k-NN top-1 (%)"). */
  label: string;
  unit: Unit;
}

const L = (label: string, unit: Unit = 'number'): Label => ({ label, unit });

/** Log records (step, epoch, per-epoch diagnostics) and their derived values. */
const METRICS: Record<string, Label> = {
  step: L('step', 'count'),
  epoch: L('epoch', 'count'),
  steps: L('steps', 'count'),
  epochs: L('epochs', 'count'),
  loss: L('loss'),
  final_loss: L('final loss'),
  knn_top1: L('k-NN top-1 (%)', 'fraction'),
  knnTop1: L('k-NN top-1 (%)', 'fraction'),
  knn_k: L('k-NN neighbours k', 'count'),
  prototypes: L('prototypes K', 'count'),
  usage_used: L('prototypes used (argmax)', 'count'),
  usage_entropy: L('usage entropy (nats)'),
  usage_entropy_fraction: L('usage entropy (% of max)', 'fraction'),
  eval_train_rows: L('k-NN bank images', 'count'),
  eval_test_rows: L('test images', 'count'),
  eval_seconds: L('evaluation time (s)', 'seconds'),
  lr: L('learning rate'),
  wd: L('weight decay'),
  momentum: L('teacher momentum'),
  teacher_temp: L('teacher temperature'),
  img_per_s: L('throughput (images/s)', 'count'),
  step_ms: L('step time (ms)', 'ms'),
  step_s: L('step time (s)', 'seconds'),
  peak_bytes: L('peak live memory (bytes)', 'count'),
  em_beta: L('EM β'),
  em_split: L('EM splits', 'count'),
};

/** Training flags, for the "settings that differ" table (the flag itself stays in a tooltip). */
const FLAGS: Record<string, string> = {
  arch: 'backbone',
  patch_size: 'patch size',
  out_dim: 'prototypes K',
  hidden_dim: 'head hidden width',
  bottleneck_dim: 'head bottleneck width',
  head_layers: 'head layers',
  norm_last_layer: 'normalised last layer',
  freeze_backbone: 'frozen backbone',
  prototypes_only: 'prototypes only',
  pca_dim: 'PCA dimensions',
  prototypes: 'prototype update',
  momentum_teacher: 'teacher momentum',
  teacher_temp: 'teacher temperature',
  warmup_teacher_temp: 'initial teacher temperature',
  warmup_teacher_temp_epochs: 'teacher temperature warm-up (epochs)',
  student_temp: 'student temperature',
  center_momentum: 'centre momentum',
  centering: 'centering',
  koleo_proto: 'KoLeo-proto weight',
  koleo_features: 'KoLeo weight (features)',
  vmf: 'von Mises-Fisher head',
  ibot: 'iBOT',
  ibot_loss_weight: 'iBOT loss weight',
  lr: 'learning rate',
  min_lr: 'final learning rate',
  warmup_epochs: 'warm-up (epochs)',
  weight_decay: 'weight decay',
  weight_decay_end: 'final weight decay',
  clip_grad: 'gradient clip',
  batch_size: 'batch size',
  accum_steps: 'accumulation steps',
  epochs: 'epochs',
  max_steps: 'step limit',
  freeze_last_layer: 'last layer frozen (epochs)',
  local_crops_number: 'local crops',
  dataset: 'dataset',
  long_tail: 'long-tail ratio',
  subset: 'training images',
  seed: 'seed',
  backend: 'backend',
  threads: 'threads',
  eps_metric: 'ε measured as',
  eval_train_max: 'k-NN bank images',
  eval_test_max: 'test images',
};

/** Collapse and divergence alarm kinds (src/train/alarms.ts, norm-watch.ts). */
const ALARMS: Record<string, string> = {
  uniform: 'uniform collapse',
  usage: 'usage collapse',
  partial: 'partial collapse',
  norm_growth: 'parameter norm growth',
};

/**
 * An unknown key made readable: words split at "_", "-" and camelCase, and a unit suffix turned
 * into the unit ("eval_ms" → "eval (ms)", "img_per_s" → "img/s"), so a new diagnostic still reads.
 */
export function humanize(key: string): string {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[_\-\s]+/)
    .filter(Boolean)
    .map((w) => (/^[A-Z0-9]+$/.test(w) ? w : w.toLowerCase()));
  const last = words.at(-1);
  const unit: Record<string, string> = { s: 's', sec: 's', seconds: 's', ms: 'ms', pct: '%', percent: '%' };
  if (words.length > 2 && words.at(-2) === 'per') return `${words.slice(0, -2).join(' ')}/${last}`;
  if (words.length > 1 && last && unit[last]) return `${words.slice(0, -1).join(' ')} (${unit[last]})`;
  return words.join(' ') || key;
}

function fallbackUnit(key: string): Unit {
  if (/(_|^)(s|sec|seconds)$/.test(key)) return 'seconds';
  if (/(_|^)ms$/.test(key)) return 'ms';
  if (/(fraction|top1|top5|acc|accuracy)$/i.test(key)) return 'fraction';
  if (/(rows|count|images|used|_k)$/i.test(key)) return 'count';
  return 'number';
}

/** The label and unit of a log key. */
export function metricLabel(key: string): Label {
  const known = METRICS[key];
  if (known) return known;
  const unit = fallbackUnit(key);
  const text = humanize(key);
  return { label: unit === 'fraction' && !text.includes('%') ? `${text} (%)` : text, unit };
}

/** The label of a training flag. */
export function flagLabel(key: string): string {
  return FLAGS[key] ?? humanize(key);
}

export function alarmLabel(kind: string): string {
  return ALARMS[kind] ?? `${humanize(kind)} alarm`;
}

/** "−" for negatives, and never "−0.0": a value that rounds to zero prints as zero. */
function signed(v: number, digits: string): string {
  if (Number(digits) === 0) return digits;
  return v < 0 ? `−${digits}` : digits;
}

/** A value in its unit's format; — for a missing value. */
export function formatValue(v: number | undefined, unit: Unit): string {
  if (v === undefined) return '—';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  const a = Math.abs(v);
  switch (unit) {
    case 'fraction':
      return signed(v, (100 * a).toFixed(1));
    case 'count':
      return signed(v, Math.round(a).toString());
    case 'seconds':
    case 'ms':
      // Two decimals below 1, where one would print a quick evaluation as 0.0 s.
      return signed(v, a.toFixed(a < 1 ? 2 : 1));
    case 'number': {
      if (Number.isInteger(v)) return signed(v, a.toString());
      // Four significant digits, without exponent notation down to 1e-6.
      const s = a >= 1e-6 ? String(Number(a.toPrecision(4))) : a.toPrecision(3);
      return signed(v, s.includes('e') ? a.toPrecision(3) : s);
    }
  }
}

/** A log key's value, formatted by its label's unit. */
export function formatMetric(key: string, v: number | undefined): string {
  return formatValue(v, metricLabel(key).unit);
}

/** A config value as a reader would write it: on/off, lists joined, strings bare. */
export function formatSetting(v: unknown): string {
  if (v === true) return 'on';
  if (v === false) return 'off';
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return formatValue(v, 'number');
  if (Array.isArray(v)) return v.map(formatSetting).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
