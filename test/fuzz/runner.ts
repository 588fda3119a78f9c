// The fuzz loop for one target: builds each case, runs the parser, and judges the outcome. Runs in a
// worker (worker.ts) under the harness's watchdog, or in-process to replay one case.
import { Fuzz } from './mutate.js';
import type { FuzzCase, FuzzTarget } from './target.js';

/** A case must finish within this; slower is reported as a hang (the watchdog kills a stuck one). */
export const HANG_MS = 2000;

export type FailureKind = 'crash' | 'inconsistent' | 'unnamed' | 'memory' | 'hang';

export interface Failure {
  kind: FailureKind;
  index: number;
  detail: string;
  log: string[];
}

export interface Stats {
  target: string;
  errorName: string;
  seed: number;
  cases: number;
  accepted: number;
  rejected: number;
  count: Record<FailureKind, number>;
  /** The first few failures, in full. */
  failures: Failure[];
  errorKinds: number;
  slowestMs: number;
  slowestIndex: number;
  maxGrowth: number;
  ms: number;
}

const KEEP_FAILURES = 5;

export function emptyStats(t: FuzzTarget, seed: number): Stats {
  return {
    target: t.name,
    errorName: t.errorName,
    seed,
    cases: 0,
    accepted: 0,
    rejected: 0,
    count: { crash: 0, inconsistent: 0, unnamed: 0, memory: 0, hang: 0 },
    failures: [],
    errorKinds: 0,
    slowestMs: 0,
    slowestIndex: -1,
    maxGrowth: 0,
    ms: 0,
  };
}

export function addFailure(s: Stats, f: Failure): void {
  s.count[f.kind]++;
  if (s.failures.length < KEEP_FAILURES) s.failures.push(f);
}

/** The case `index` of a run seeded with `seed`, rebuilt from scratch. */
export function makeCase(t: FuzzTarget, seed: number, index: number): { c: FuzzCase; log: string[] } {
  const f = new Fuzz(seed, index);
  const c = t.make(f);
  return { c, log: f.log };
}

function describeThrown(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : `non-Error thrown: ${String(e)}`;
}

/** Error messages with numbers, quoted names and the source blanked, to count distinct checks reached. */
function normalize(msg: string, source: string | undefined): string {
  let m = source ? msg.split(source).join('SRC') : msg;
  m = m
    .replace(/"[^"]*"/g, 'S')
    .replace(/'[^']*'/g, 'S')
    .replace(/0x[0-9a-f]+/gi, 'N')
    .replace(/[0-9]+/g, 'N');
  return m.slice(0, 60);
}

export interface Progress {
  /** Called with the index before each case and after it (done = true). */
  (index: number, done: boolean): void;
}

/** Runs cases [from, from + count) and returns what happened. */
export async function runCases(
  t: FuzzTarget,
  seed: number,
  from: number,
  count: number,
  progress?: Progress,
): Promise<Stats> {
  const s = emptyStats(t, seed);
  const kinds = new Set<string>();
  const t0 = performance.now();
  for (let index = from; index < from + count; index++) {
    let made: ReturnType<typeof makeCase>;
    try {
      made = makeCase(t, seed, index);
    } catch (e) {
      s.cases++;
      addFailure(s, {
        kind: 'crash',
        index,
        detail: `the fuzz target could not build this case (a bug in the test): ${describeThrown(e)}`,
        log: [],
      });
      continue;
    }
    const { c, log } = made;
    progress?.(index, false);
    const mem0 = process.memoryUsage().arrayBuffers;
    const c0 = performance.now();
    let result: unknown;
    let thrown: unknown;
    let ok = false;
    try {
      result = t.run(c);
      if (result instanceof Promise) result = await result;
      ok = true;
    } catch (e) {
      thrown = e;
    }
    const took = performance.now() - c0;
    const growth = process.memoryUsage().arrayBuffers - mem0;
    progress?.(index, true);
    s.cases++;
    if (took > s.slowestMs) {
      s.slowestMs = took;
      s.slowestIndex = index;
    }
    s.maxGrowth = Math.max(s.maxGrowth, growth);
    if (took > HANG_MS)
      addFailure(s, { kind: 'hang', index, detail: `took ${took.toFixed(0)} ms (limit ${HANG_MS})`, log });
    const limit = t.memLimit(c);
    if (growth > limit) {
      addFailure(s, {
        kind: 'memory',
        index,
        detail: `ArrayBuffer memory grew by ${mib(growth)} MiB, over the ${mib(limit)} MiB this ${c.bytes}-byte input allows`,
        log,
      });
    }
    if (ok) {
      try {
        t.check(result, c);
        s.accepted++;
      } catch (e) {
        addFailure(s, {
          kind: 'inconsistent',
          index,
          detail: `accepted but inconsistent: ${(e as Error).message}`,
          log,
        });
      }
    } else if (!t.isOwnError(thrown) || !(thrown as Error).message) {
      addFailure(s, { kind: 'crash', index, detail: describeThrown(thrown), log });
    } else {
      const msg = (thrown as Error).message;
      const name = t.mustName?.(c);
      if (name !== undefined && !msg.includes(name)) {
        addFailure(s, {
          kind: 'unnamed',
          index,
          detail: `${t.errorName} does not name ${JSON.stringify(name)}: ${msg}`,
          log,
        });
      } else {
        s.rejected++;
        kinds.add(normalize(msg, name));
      }
    }
    result = undefined;
  }
  s.errorKinds = kinds.size;
  s.ms = performance.now() - t0;
  return s;
}

export function mib(n: number): string {
  return (n / 2 ** 20).toFixed(1);
}
