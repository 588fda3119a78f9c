// A run directory as the report sees it: the JSON-lines log (start / step / epoch records) and the
// final checkpoint's head. Epoch diagnostics are optional and their keys vary by version, so they are
// picked up by pattern (unique_<eps>, knn*, anything numeric) rather than a fixed schema.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readJsonl } from '../train/log.js';
import { readCheckpoint, type LoadedCheckpoint } from '../train/checkpoint.js';
import { readPthRunCheckpoint } from '../train/pth-run.js';

export interface StepPoint {
  step: number;
  epoch: number;
  loss: number;
}

export interface EpochPoint {
  epoch: number;
  step: number;
  loss?: number;
  /** ε (as written in the key) → unique prototypes. */
  unique: Record<string, number>;
  knnTop1?: number;
  /** Every other finite numeric diagnostic of the record, by key. */
  extra: Record<string, number>;
}

/** A collapse alarm of the run (src/train/alarms.ts): raised, or cleared when `cleared`. */
export interface AlarmPoint {
  kind: string;
  step: number;
  epoch: number;
  message: string;
  cleared: boolean;
}

export interface RunData {
  name: string;
  dir: string;
  config: Record<string, unknown>;
  backend?: string;
  steps: StepPoint[];
  epochs: EpochPoint[];
  /** Collapse alarms raised and cleared, in step order. */
  alarms: AlarmPoint[];
  /** Lines cut off at the end of the log (a killed run). */
  truncated: boolean;
  checkpoint: LoadedCheckpoint | null;
  checkpointPath: string | null;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const KNN_KEYS = ['knn_top1', 'knnTop1', 'knn', 'knn_top1_acc'];
// time: the log's wall-clock stamp on every record (Unix seconds), not a diagnostic.
const SKIP_EXTRA = new Set(['epoch', 'step', 'loss', 'time']);

/** Splits an epoch record into the parts the report plots. */
export function parseEpochRecord(r: Record<string, unknown>): EpochPoint {
  const unique: Record<string, number> = {};
  const extra: Record<string, number> = {};
  let knnTop1: number | undefined;
  for (const [k, v] of Object.entries(r)) {
    if (k === 'event' || SKIP_EXTRA.has(k)) continue;
    const m = /^unique[_-]?(?:prototypes[_-]?)?(\d+(?:\.\d+)?(?:e-?\d+)?)$/i.exec(k);
    if (m && typeof v === 'number') unique[String(Number(m[1]))] = v;
    else if ((k === 'unique_prototypes' || k === 'uniquePrototypes') && v && typeof v === 'object') {
      for (const [e, c] of Object.entries(v as Record<string, unknown>))
        if (typeof c === 'number') unique[String(Number(e))] = c;
    } else if (KNN_KEYS.includes(k) && typeof v === 'number') knnTop1 = v;
    else if (typeof v === 'number' && Number.isFinite(v)) extra[k] = v;
  }
  return { epoch: num(r.epoch) ?? 0, step: num(r.step) ?? 0, loss: num(r.loss), unique, knnTop1, extra };
}

/** Reads one run directory; either file may be missing, but not both. */
export function loadRun(dir: string, name = basename(resolve(dir))): RunData {
  const logPath = join(dir, 'log.jsonl');
  // A run of scripts/torch-twin/train_ddp.py keeps DINO's checkpoint.pth, with the config in its args.
  const pthPath = join(dir, 'checkpoint.pth');
  const ckPath =
    existsSync(join(dir, 'checkpoint.safetensors')) || !existsSync(pthPath)
      ? join(dir, 'checkpoint.safetensors')
      : pthPath;
  const hasLog = existsSync(logPath),
    hasCk = existsSync(ckPath);
  if (!hasLog && !hasCk)
    throw new Error(`${dir}: no log.jsonl and no checkpoint.safetensors — not a protodino run directory`);
  const run: RunData = {
    name,
    dir,
    config: {},
    steps: [],
    epochs: [],
    alarms: [],
    truncated: false,
    checkpoint: hasCk ? (ckPath === pthPath ? readPthRunCheckpoint(ckPath) : readCheckpoint(ckPath)) : null,
    checkpointPath: hasCk ? ckPath : null,
  };
  if (hasLog) {
    const { records, truncated } = readJsonl(logPath);
    run.truncated = truncated;
    for (const r of records) {
      if (r.event === 'start') {
        // A resumed or restarted run appends; a fresh start resets the curves.
        if (r.config && typeof r.config === 'object') run.config = r.config as Record<string, unknown>;
        if (typeof r.backend === 'string') run.backend = r.backend;
      } else if (r.event === 'step' && typeof r.step === 'number' && typeof r.loss === 'number') {
        run.steps.push({ step: r.step, epoch: num(r.epoch) ?? 0, loss: r.loss });
      } else if (r.event === 'epoch') run.epochs.push(parseEpochRecord(r));
      else if (
        (r.event === 'alarm' || r.event === 'alarm_cleared') &&
        typeof r.kind === 'string' &&
        typeof r.step === 'number'
      ) {
        run.alarms.push({
          kind: r.kind,
          step: r.step,
          epoch: num(r.epoch) ?? 0,
          message: typeof r.message === 'string' ? r.message : r.kind,
          cleared: r.event === 'alarm_cleared',
        });
      }
    }
  }
  if (Object.keys(run.config).length === 0 && run.checkpoint)
    run.config = (run.checkpoint.meta.config ?? {}) as Record<string, unknown>;
  // A resumed run re-logs steps after the checkpoint: keep the last record of each step.
  run.steps = dedupeBy(run.steps, (s) => s.step);
  run.epochs = dedupeBy(run.epochs, (e) => e.epoch);
  // A resumed run that re-runs the steps after its checkpoint can raise the same alarm again.
  const seen = new Set<string>();
  run.alarms = run.alarms
    .filter((a) => {
      const key = `${a.cleared}:${a.kind}:${a.step}`;
      return !seen.has(key) && (seen.add(key), true);
    })
    .sort((a, b) => a.step - b.step);
  return run;
}

/** The alarm kinds a run ended with: raised and not cleared after. */
export function activeAlarms(run: RunData): string[] {
  const state = new Map<string, boolean>();
  for (const a of run.alarms) state.set(a.kind, !a.cleared);
  return [...state].filter(([, on]) => on).map(([k]) => k);
}

function dedupeBy<T>(xs: T[], key: (x: T) => number): T[] {
  const m = new Map<number, T>();
  for (const x of xs) m.set(key(x), x);
  return [...m.values()].sort((a, b) => key(a) - key(b));
}

/** Names made unique (two dirs both called "run" become "run" and "run (2)"). */
export function loadRuns(dirs: string[]): RunData[] {
  const seen = new Map<string, number>();
  return dirs.map((d) => {
    const base = basename(resolve(d));
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return loadRun(d, n === 1 ? base : `${base} (${n})`);
  });
}

/** Config keys whose values differ between runs (output_dir always does, so it is left out). */
export function configDifferences(runs: RunData[]): string[] {
  if (runs.length < 2) return [];
  const keys = new Set(runs.flatMap((r) => Object.keys(r.config)));
  keys.delete('output_dir');
  return [...keys].filter((k) => new Set(runs.map((r) => JSON.stringify(r.config[k]))).size > 1).sort();
}
