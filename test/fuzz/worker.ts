// Worker side of the harness: runs one target's cases and posts the Stats back. The case in progress
// is published through shared memory so the harness can name it if it never finishes.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTarget } from './targets/index.js';
import { runCases } from './runner.js';

const { target, seed, from, count, heartbeat } = workerData as {
  target: string;
  seed: number;
  from: number;
  count: number;
  heartbeat: SharedArrayBuffer;
};
const hb = new Int32Array(heartbeat);
const t = await loadTarget(target);
const stats = await runCases(t, seed, from, count, (index, done) => Atomics.store(hb, done ? 1 : 0, index));
parentPort!.postMessage(stats);
