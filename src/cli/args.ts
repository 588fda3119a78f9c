// Flag helpers every subcommand shares, so a flag means the same thing and fails the same way
// wherever it appears. --backend takes the training flag's choices and default (src/train/flags.ts).
import { FLAGS } from '../train/flags.js';

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
