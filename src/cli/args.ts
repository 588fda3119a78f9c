// Flag helpers every subcommand shares, so a flag means the same thing and fails the same way
// wherever it appears. --backend takes the training flag's choices and default (src/train/flags.ts).
import { FLAGS } from '../train/flags.js';
import { parseTuneSpec } from '../backend/wasm/tuning.js';

export type BackendKind = (typeof FLAGS.backend.choices)[number];

/** The parseArgs option of --backend; no default here, so backendKind applies the one default. */
export const BACKEND_OPTION = { backend: { type: 'string' } } as const;

/** --backend's value, or the default (auto: a hardware GPU when there is one, else wasm). */
export function backendKind(cmd: string, v: string | undefined): BackendKind {
  if (v === undefined) return FLAGS.backend.default;
  const choices: readonly string[] = FLAGS.backend.choices;
  if (!choices.includes(v)) throw new Error(`${cmd}: --backend must be ${choices.join(', ')}, got '${v}'`);
  return v as BackendKind;
}

/** A non-negative integer flag (0 allowed only where `min` is 0). */
export function intFlag(cmd: string, name: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min)
    throw new Error(`${cmd}: --${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

/**
 * Takes `--tune VALUE` / `--tune=VALUE` out of argv (every command accepts it) and sets
 * PROTODINO_TUNE, which the wasm backend reads when it is created (src/backend/wasm/tuner.ts): the
 * flag wins over the variable, the variable over `fallback` ('auto' for the commands that train or
 * benchmark, so they measure the host once and cache it; 'off' elsewhere). The value is checked
 * here, so a typo fails before any work starts. Returns argv without the flag.
 */
export function takeTuneFlag(argv: string[], fallback: 'auto' | 'off'): string[] {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--tune') {
      if (i + 1 >= argv.length) throw new Error('--tune needs a value: off, auto, a file, or family.param=value,...');
      value = argv[++i];
    } else if (a.startsWith('--tune=')) value = a.slice('--tune='.length);
    else rest.push(a);
  }
  const spec = value ?? process.env.PROTODINO_TUNE ?? fallback;
  parseTuneSpec(spec);
  process.env.PROTODINO_TUNE = spec;
  return rest;
}
