// Runs a fuzz target in a worker thread under a watchdog, so a case that never returns (a hang in
// synchronous parser code) is stopped and named instead of stalling the suite, and reports one
// summary line per target. Counts and seed come from the environment:
//   PROTODINO_FUZZ_CASES (default 10000), PROTODINO_FUZZ_SEED (default 1).
// Longer runs and single-case replays: node scripts/fuzz.mjs (see its header).
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadTarget } from './targets/index.js';
import { addFailure, emptyStats, HANG_MS, makeCase, mib, type Failure, type Stats } from './runner.js';

export const DEFAULT_CASES = 10_000;

export function envCases(): number {
  const v = process.env.PROTODINO_FUZZ_CASES;
  if (v === undefined || v === '') return DEFAULT_CASES;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`PROTODINO_FUZZ_CASES must be a positive integer, got '${v}'`);
  return n;
}

export function envSeed(): number {
  const v = process.env.PROTODINO_FUZZ_SEED;
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff)
    throw new Error(`PROTODINO_FUZZ_SEED must be an integer in [0, 2^32), got '${v}'`);
  return n;
}

/** How often the watchdog looks at the worker's current case. */
const POLL_MS = 100;

/** Runs cases [from, from + count) of `target` in a worker; a stuck case is killed after HANG_MS. */
export async function fuzzTarget(target: string, seed: number, count: number, from = 0): Promise<Stats> {
  const t = await loadTarget(target); // also checks the name before a worker starts
  const heartbeat = new SharedArrayBuffer(8);
  const hb = new Int32Array(heartbeat);
  hb[0] = -1;
  hb[1] = -1;
  const t0 = performance.now();
  const worker = new Worker(new URL('./worker.js', import.meta.url), {
    workerData: { target, seed, from, count, heartbeat },
  });
  return new Promise<Stats>((resolve) => {
    let watching = -1;
    let since = 0;
    let settled = false;
    const finish = (s: Stats): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      resolve(s);
    };
    const dead = (kind: Failure['kind'], detail: string): void => {
      const index = Atomics.load(hb, 0);
      const s = emptyStats(t, seed);
      s.cases = Math.max(0, index - from);
      s.ms = performance.now() - t0;
      const log = index >= 0 ? makeCase(t, seed, index).log : [];
      addFailure(s, { kind, index, detail, log });
      finish(s);
    };
    const timer = setInterval(() => {
      const current = Atomics.load(hb, 0);
      if (current < 0 || current === Atomics.load(hb, 1)) {
        watching = -1;
        return;
      }
      if (current !== watching) {
        watching = current;
        since = performance.now();
      } else if (performance.now() - since > HANG_MS) {
        dead('hang', `still running after ${HANG_MS} ms: stopped`);
        void worker.terminate();
      }
    }, POLL_MS);
    worker.on('message', (s: Stats) => finish(s));
    worker.on('error', (e) => dead('crash', `the worker died: ${e.stack ?? e.message}`));
    worker.on('exit', (code) => {
      if (code !== 0) dead('crash', `the worker exited with code ${code} (out of memory?)`);
    });
  });
}

/** The one-line summary CI logs show. */
export function summary(s: Stats): string {
  const crashes = s.count.crash + s.count.inconsistent + s.count.unnamed;
  return (
    `fuzz ${s.target}: ${s.cases} cases (seed ${s.seed}), ${crashes} crashes, ${s.count.hang} hangs, ${s.count.memory} over the memory bound, ` +
    `${s.rejected} rejected with ${s.errorName}, ${s.accepted} accepted, ${(s.ms / 1000).toFixed(1)} s` +
    (s.slowestIndex < 0
      ? ''
      : ` (slowest case ${s.slowestMs.toFixed(0)} ms: #${s.slowestIndex}, largest +${mib(s.maxGrowth)} MiB, ${s.errorKinds} kinds of error)`)
  );
}

/** Each kept failure with how to replay it. */
export function failureReport(s: Stats): string {
  return s.failures
    .map((f) =>
      [
        `  ${f.kind} in case ${f.index} (replay: node scripts/fuzz.mjs ${s.target} --seed ${s.seed} --case ${f.index})`,
        `    mutations: ${f.log.join('; ') || '(none)'}`,
        ...f.detail
          .split('\n')
          .slice(0, 12)
          .map((l) => `    ${l}`),
      ].join('\n'),
    )
    .join('\n');
}

/**
 * The uvu test for one target: every case must be accepted with a self-consistent result or
 * rejected with the parser's own error naming the input; none may hang or allocate past its bound;
 * and both outcomes, with a spread of error messages, show the fuzz gets past the first check.
 */
export function fuzzSuite(target: string): void {
  test(`fuzz ${target}: accepted results are consistent, rejections are the parser's own errors, no hang, bounded memory`, async () => {
    const cases = envCases();
    const s = await fuzzTarget(target, envSeed(), cases);
    console.log(summary(s));
    const failed = s.failures.length > 0;
    if (failed) console.log(failureReport(s));
    assert.ok(
      !failed,
      `fuzz ${target}: ${s.failures.length} failure(s), first: ${s.failures[0]?.kind} in case ${s.failures[0]?.index}`,
    );
    assert.is(s.cases, cases, 'every case ran');
    const t = await loadTarget(target);
    if (cases >= 1000) {
      assert.ok(
        s.accepted > 0 && s.rejected > 0,
        `both outcomes occur (accepted ${s.accepted}, rejected ${s.rejected})`,
      );
      assert.ok(
        s.errorKinds >= t.minErrorKinds,
        `the fuzz reaches many checks: ${s.errorKinds} kinds of error, expected ≥ ${t.minErrorKinds}`,
      );
    }
  });
  test.run();
}
