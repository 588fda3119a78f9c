// A wasm worker: the kernel module instantiated on the shared memory, waiting on the control block
// for its slice of each parallel kernel call (see WasmRuntime.run).
import { parentPort, workerData } from 'node:worker_threads';
import { threadRange } from './runtime.js';

const CTRL_GEN = 0,
  CTRL_REMAINING = 1,
  CTRL_FN = 2,
  CTRL_NARGS = 3,
  CTRL_TOTAL = 4,
  CTRL_THREADS = 5,
  CTRL_STOP = 6,
  CTRL_ERROR = 7;

// How long an idle worker spins on the control block before it parks in Atomics.wait. The gaps
// between parallel kernels of a training step (autograd and table building on the main thread) are
// mostly under a millisecond, and waking a parked thread costs tens of microseconds more than a
// spinning one sees the new generation: spinning 2 ms instead of 20000 loads (about 0.1 ms) took
// resnet_cpu's 2-thread DINO step from 175-184 to 185-187 img/s (batch 64, idle 2-core host,
// 3 interleaved runs each).
const SPIN_MS = 2;
const {
  module,
  memory,
  ctrl: sab,
  fnNames,
  index,
} = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: SharedArrayBuffer;
  fnNames: string[];
  index: number;
};
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort: () => {
      throw new Error('abort called from wasm');
    },
    seed: () => 0,
  },
});
const exports = instance.exports as Record<string, (...a: number[]) => void>;
const fns = fnNames.map((n) => exports[n]);
const ctrl = new Int32Array(sab, 0, 8);
const args = new Float64Array(sab, 32, 32);
// Read the generation before announcing readiness: the main thread may start a job right after.
let seen = Atomics.load(ctrl, CTRL_GEN);
parentPort!.postMessage('ready');
for (;;) {
  let spins = 0;
  const idleSince = performance.now();
  while (Atomics.load(ctrl, CTRL_GEN) === seen) {
    if ((++spins & 1023) !== 0 || performance.now() - idleSince < SPIN_MS) continue;
    Atomics.wait(ctrl, CTRL_GEN, seen, 1000);
  }
  seen = Atomics.load(ctrl, CTRL_GEN);
  if (Atomics.load(ctrl, CTRL_STOP)) break;
  const threads = ctrl[CTRL_THREADS];
  if (index < threads) {
    const n = ctrl[CTRL_NARGS];
    const a: number[] = [];
    for (let i = 0; i < n; i++) a.push(args[i]);
    const [start, end] = threadRange(ctrl[CTRL_TOTAL], threads, index);
    try {
      if (end > start) fns[ctrl[CTRL_FN]](...a, start, end);
    } catch {
      Atomics.store(ctrl, CTRL_ERROR, 1);
    }
  }
  // The last worker out wakes the main thread, which may be parked in Atomics.wait.
  if (Atomics.sub(ctrl, CTRL_REMAINING, 1) === 1) Atomics.notify(ctrl, CTRL_REMAINING);
}
