// Runs the parser fuzzers of test/fuzz for longer than the test suite does, or replays one case.
// Needs a build (dist/, or PROTODINO_DIST=dist-NAME):
//   node scripts/fuzz.mjs [target ...] [--cases N] [--seed S] [--from I]
//       runs cases [I, I + N) of each target (default: all targets, 100000 cases, seed 1, from 0)
//   node scripts/fuzz.mjs TARGET --seed S --case I
//       rebuilds case I in-process and prints its mutations and the parser's outcome in full
// Targets: idx, cifar, image, safetensors, checkpoint, pth. Exit status 1 on any crash, hang,
// inconsistent result or allocation over its bound. The suite's tests (test/fuzz/*.test.ts) run the
// same targets with PROTODINO_FUZZ_CASES cases (default 10000) and PROTODINO_FUZZ_SEED (default 1).
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, process.env.PROTODINO_DIST ?? 'dist');
const load = (p) => import(pathToFileURL(join(dist, 'test', 'fuzz', p)).href);

const args = process.argv.slice(2);
const opts = { cases: 100_000, seed: 1, from: 0, case: undefined };
const names = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const m = /^--(cases|seed|from|case)$/.exec(a);
  if (m) {
    const v = Number(args[++i]);
    if (!Number.isSafeInteger(v) || v < 0) {
      console.error(`fuzz: ${a} needs a non-negative integer, got '${args[i]}'`);
      process.exit(2);
    }
    opts[m[1]] = v;
  } else if (a.startsWith('-')) {
    console.error(`fuzz: unknown option ${a} (have --cases, --seed, --from, --case)`);
    process.exit(2);
  } else names.push(a);
}

const { TARGETS, loadTarget } = await load('targets/index.js');
const { fuzzTarget, summary, failureReport } = await load('harness.js');
const { makeCase } = await load('runner.js');
const targets = names.length ? names : [...TARGETS];

if (opts.case !== undefined) {
  if (targets.length !== 1) {
    console.error('fuzz: --case replays one case of one target: name exactly one');
    process.exit(2);
  }
  const t = await loadTarget(targets[0]);
  const { c, log } = makeCase(t, opts.seed, opts.case);
  console.log(`fuzz ${t.name} seed ${opts.seed} case ${opts.case}: ${c.bytes} input bytes`);
  console.log(`mutations: ${log.join('; ') || '(none)'}`);
  const mem0 = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  try {
    const result = await t.run(c);
    t.check(result, c);
    console.log('accepted, self-consistent');
  } catch (e) {
    console.log(
      t.isOwnError(e)
        ? `rejected with ${t.errorName}: ${e.message}`
        : `CRASH or inconsistent result:\n${e?.stack ?? e}`,
    );
  }
  console.log(
    `${(performance.now() - t0).toFixed(1)} ms, ArrayBuffer memory +${((process.memoryUsage().arrayBuffers - mem0) / 2 ** 20).toFixed(1)} MiB (limit ${(t.memLimit(c) / 2 ** 20).toFixed(1)})`,
  );
  process.exit(0);
}

let bad = 0;
for (const name of targets) {
  const s = await fuzzTarget(name, opts.seed, opts.cases, opts.from);
  console.log(summary(s));
  if (s.failures.length) {
    console.log(failureReport(s));
    bad++;
  }
}
process.exit(bad ? 1 : 0);
